"""safeguard-fhir: a FHIR R4 service for child-safeguarding information."""
