"""Hooks: all access to the King Finance and QicsMilestones APIs goes through these."""
