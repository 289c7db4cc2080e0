"""FHIR protocol: HTTP, Bundles, search syntax, OperationOutcome. No SQL here."""
