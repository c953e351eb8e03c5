"""King Finance Cloudswitch (ws1_xml.asmx, SOAP): the hook and what it is made of.

- ``hook``: KingFinanceHook, the session (Login, KeepSession, Logout) and ``call``; its table reads
  (``tables``) and journal entries and files (``journal``) are mixed in;
- ``soap``: envelopes, datasets and answers (lxml, never string concatenation of values);
- ``query``: a GetStamtabelRecords selection, and the read that isolates what King cannot serve;
- ``schema``: the field registry (each table's fields and types, keys, wire forms of values);
- ``bookings``: King bookings as the hook returns them;
- ``profile``: the King wire profile (every guess about the real service, one setting each).
"""

from king_qics.hooks.king.bookings import KingBooking, PostedBooking, booking_key
from king_qics.hooks.king.hook import KingFinanceHook
from king_qics.hooks.king.profile import KingProfile

__all__ = ["KingBooking", "KingFinanceHook", "KingProfile", "PostedBooking", "booking_key"]
