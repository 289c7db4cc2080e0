"""The client side of Bulk Data $export, for `safeguard export`: credentials, the export's
HTTP exchange and the files it downloads, and what the command shows. It speaks to a server
over HTTP only (any FHIR server offering SMART Backend Services and Bulk Data)."""
