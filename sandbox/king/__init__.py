"""Emulator of King Finance's Cloudswitch SOAP API (ws1_xml.asmx); see docs/sandbox_king.md."""

from sandbox.king.app import KingEmulator

__all__ = ["KingEmulator"]
