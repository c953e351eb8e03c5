"""The two sync flows: master data (King -> Qics) and invoice export (Qics -> King)."""
