-- grouptalk-scim schema v5: OAuth 2.0 clients (Entra's client-credentials grant) and scopes.
--
-- Adds two tables and one column; no existing row is rewritten (instant at any size).
-- Scopes are OAuth's space-separated names: `scim` (read and write the directory) and
-- `feed.read` (read only). Every token issued before v5 keeps what it could do: `scim`.

ALTER TABLE tokens ADD COLUMN scopes TEXT NOT NULL DEFAULT 'scim';

-- A client belongs to one tenant. Its id is what Entra sends as `client_id` (not a secret).
CREATE TABLE clients (
    id        TEXT PRIMARY KEY,                 -- uuid
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    label     TEXT,
    scopes    TEXT NOT NULL,                    -- space-separated
    created   TEXT NOT NULL,                    -- RFC 3339 UTC
    revoked   TEXT                              -- revoking the client ends its access tokens
);
CREATE INDEX clients_tenant ON clients(tenant_id);

-- A client's secrets (several at once, for rotation). Only the argon2id hash is stored, as a
-- PHC string with its own parameters; the secret is shown once when it is made. The secret's
-- text starts with its id, so a grant checks exactly one hash.
CREATE TABLE client_secrets (
    id        TEXT PRIMARY KEY,                 -- uuid, the secret's text before its first '.'
    client_id TEXT NOT NULL REFERENCES clients(id),
    hash      TEXT NOT NULL,                    -- argon2id PHC string
    created   TEXT NOT NULL,
    expires   TEXT NOT NULL,
    revoked   TEXT                              -- revoking a secret ends the tokens issued with it
);
CREATE INDEX client_secrets_client ON client_secrets(client_id);
