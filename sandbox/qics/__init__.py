"""QicsMilestones REST v3 emulator (OAuth2 + OData); see docs/sandbox_qics.md."""

from sandbox.qics.app import QicsEmulator

__all__ = ["QicsEmulator"]
