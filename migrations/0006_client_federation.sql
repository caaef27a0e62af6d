-- grouptalk-scim schema v6: workload identity federation for OAuth clients.
--
-- Adds one table; no existing row is rewritten (instant at any size).
-- A federated client authenticates at the token endpoint with a signed JWT (RFC 7523 §2.2)
-- instead of a secret: the assertion must be signed by a key of the JWKS named here and carry
-- this issuer, this subject and this audience. At most one federation of a client is live;
-- removing it (or replacing it) marks the row removed, which ends the access tokens issued
-- through it on their next request, as revoking a secret does.

CREATE TABLE client_federations (
    id        TEXT PRIMARY KEY,                 -- uuid; access tokens name it in `fid`
    client_id TEXT NOT NULL REFERENCES clients(id),
    jwks      TEXT NOT NULL,                    -- absolute file path or https:// URL
    issuer    TEXT NOT NULL,                    -- the assertion's `iss`, exactly
    subject   TEXT NOT NULL,                    -- the assertion's `sub`, exactly
    audience  TEXT,                             -- NULL: the token endpoint's URL
    created   TEXT NOT NULL,                    -- RFC 3339 UTC
    removed   TEXT
);
CREATE UNIQUE INDEX client_federations_live ON client_federations(client_id)
    WHERE removed IS NULL;
-- An assertion without `client_id` names its client by issuer and subject: one live client each.
CREATE UNIQUE INDEX client_federations_subject ON client_federations(issuer, subject)
    WHERE removed IS NULL;
