-- grouptalk-scim schema v1.
-- Every row carries tenant_id and every query filters on it first.

CREATE TABLE tenants (
    id              TEXT PRIMARY KEY,          -- uuid
    name            TEXT NOT NULL UNIQUE,
    azure_tenant_id TEXT,
    created         TEXT NOT NULL               -- RFC 3339 UTC
);

CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,               -- the JWT's jti
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    label       TEXT,
    created     TEXT NOT NULL,
    expires     TEXT,
    revoked     TEXT,
    last_used   TEXT
);
CREATE INDEX tokens_tenant ON tokens(tenant_id);

-- Users and groups: the canonical document (JSON, without id/meta/members) plus the columns that
-- are filtered, sorted or unique. *_key columns hold the case-folded value for case-insensitive
-- attributes, so `userName eq "X"` is one index probe.
CREATE TABLE resources (
    seq              INTEGER PRIMARY KEY,       -- stable order for paging
    tenant_id        TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind             TEXT NOT NULL CHECK (kind IN ('User', 'Group')),
    id               TEXT NOT NULL,
    user_name        TEXT,
    user_name_key    TEXT,
    display_name     TEXT,
    display_name_key TEXT,
    external_id      TEXT,
    active           INTEGER,
    version          INTEGER NOT NULL,
    created          TEXT NOT NULL,
    last_modified    TEXT NOT NULL,
    doc              TEXT NOT NULL
);
CREATE UNIQUE INDEX resources_id ON resources(tenant_id, id);
CREATE UNIQUE INDEX resources_user_name ON resources(tenant_id, kind, user_name_key)
    WHERE user_name_key IS NOT NULL;
CREATE UNIQUE INDEX resources_group_name ON resources(tenant_id, kind, display_name_key)
    WHERE kind = 'Group';
CREATE INDEX resources_display_name ON resources(tenant_id, kind, display_name_key);
CREATE INDEX resources_external_id ON resources(tenant_id, kind, external_id);

-- Multi-valued attributes Entra filters on (emails, phoneNumbers): one row per element, so
-- `emails[type eq "work"].value eq "x"` is one index probe.
CREATE TABLE multi_values (
    tenant_id TEXT NOT NULL,
    owner_seq INTEGER NOT NULL REFERENCES resources(seq) ON DELETE CASCADE,
    attr      TEXT NOT NULL,                    -- 'emails' | 'phoneNumbers'
    type_key  TEXT,                             -- lower-cased type
    value     TEXT NOT NULL,                    -- as sent
    value_key TEXT NOT NULL                     -- lower-cased value
);
CREATE INDEX multi_values_lookup ON multi_values(tenant_id, attr, value_key, type_key);
CREATE INDEX multi_values_owner ON multi_values(owner_seq);

-- Group membership: adding one member to a 100,000-member group is one row insert.
CREATE TABLE members (
    tenant_id  TEXT NOT NULL,
    group_seq  INTEGER NOT NULL REFERENCES resources(seq) ON DELETE CASCADE,
    member_seq INTEGER NOT NULL REFERENCES resources(seq) ON DELETE CASCADE,
    PRIMARY KEY (group_seq, member_seq)
) WITHOUT ROWID;
CREATE INDEX members_member ON members(member_seq, group_seq);

-- The durable change feed, written in the same transaction as every change.
CREATE TABLE changes (
    seq         INTEGER PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    at          TEXT NOT NULL,
    kind        TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    operation   TEXT NOT NULL,                  -- create | replace | patch | delete
    version     INTEGER
);
CREATE INDEX changes_tenant ON changes(tenant_id, seq);
