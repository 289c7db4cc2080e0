"""Who is calling: SMART Backend Services authentication (client assertions, access tokens).

`clients` (the registered OAuth clients), `keys` (the server's own token-signing keys),
`assertions` (a client's signed JWT, checked at the token endpoint), `tokens` (the token
endpoint's logic, and access tokens verified on every request), `revocation` (a revoked
client's tokens stop at once), `middleware` (every /fhir request authenticated before
routing), `ratelimit`, `routes` (/auth/token, /auth/jwks, the SMART configuration) and
`commands` (what the `safeguard` CLI does with them).
Spec: https://hl7.org/fhir/smart-app-launch/backend-services.html
"""
