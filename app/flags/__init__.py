"""Safeguarding domain: what may be recorded, linked, changed and seen."""
