"""QicsMilestones REST v3 (OData, OAuth2): the hook and what it is made of.

- ``hook``: QicsMilestonesHook, authorized requests and paged reads; its writes (``writes``) and
  its invoice side (``invoices``: processed invoices, lines, PDFs, EntityState, ``$metadata``) are
  mixed in;
- ``oauth``: the rotating refresh-token chain, kept through a TokenStore (the state package
  implements it; the hooks never import the state store);
- ``odata``: values to and from the wire, ``$filter`` as data (ODataFilter), rendered per profile;
- ``metadata``: ``$metadata`` parsed;
- ``profile``: the Qics wire profile (every guess about the real service, one setting each).
"""

from king_qics.hooks.qics.hook import QicsMilestonesHook
from king_qics.hooks.qics.odata import ODATA_ROOT, ODataFilter, odata_filter, odata_literal, to_wire
from king_qics.hooks.qics.profile import QicsProfile

__all__ = [
    "ODATA_ROOT",
    "ODataFilter",
    "QicsMilestonesHook",
    "QicsProfile",
    "odata_filter",
    "odata_literal",
    "to_wire",
]
