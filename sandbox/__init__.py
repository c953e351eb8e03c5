"""Runnable emulators of King Finance Cloudswitch (SOAP) and QicsMilestones REST v3 (OData).

Start both with ``python -m sandbox serve``; see README.md ("Sandboxes") for the options, the
fixture format and the admin API under ``/_sandbox/``.
"""
