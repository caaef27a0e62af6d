-- The provisioning log: one row per SCIM request, what arrived and what we answered.
-- Never the token, never bodies. Successful writes insert their row in the same transaction as
-- the change; everything else is written in small batches shortly after.
CREATE TABLE request_log (
    seq           INTEGER PRIMARY KEY,
    at            TEXT NOT NULL,                 -- RFC 3339 UTC, ms
    request_id    TEXT NOT NULL,
    tenant_id     TEXT,
    token_id      TEXT,
    method        TEXT NOT NULL,
    path          TEXT NOT NULL,                 -- without the query string
    resource_type TEXT,
    resource_id   TEXT,
    status        INTEGER NOT NULL,
    scim_type     TEXT,
    duration_ms   INTEGER NOT NULL,
    notes         TEXT,                          -- Entra normalisations applied, comma-separated
    detail        TEXT                           -- short reason for failures
);
CREATE INDEX request_log_at ON request_log(at);
CREATE INDEX request_log_tenant ON request_log(tenant_id, seq);
CREATE INDEX request_log_resource ON request_log(resource_id);
CREATE INDEX request_log_token ON request_log(token_id, seq);
