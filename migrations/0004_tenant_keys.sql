-- grouptalk-scim schema v4: resources name their tenant by a small integer key.
--
-- The tenant's id is a 36-character UUID. Repeated in every resource row, in the four indexes
-- that start with it and in every change-feed row, it was about 250 bytes per user (a quarter of
-- the database). `tenants.key` is 1–2 bytes in a record. Tenant ids stay what tokens, the CLI,
-- logs and the API show; the store maps id → key inside each statement.
--
-- Runs with foreign-key enforcement off (the store turns it on after migrating), as SQLite's
-- table-rebuild procedure requires: dropping the old `resources` must not cascade to `members`
-- and `multi_values`, whose references resolve to the rebuilt table by name. The migration ends
-- with PRAGMA foreign_key_check (rusqlite_migration `foreign_key_check`).

CREATE TABLE tenants_v4 (
    key             INTEGER PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,      -- uuid
    name            TEXT NOT NULL UNIQUE,
    azure_tenant_id TEXT,
    created         TEXT NOT NULL              -- RFC 3339 UTC
);
INSERT INTO tenants_v4 (id, name, azure_tenant_id, created)
    SELECT id, name, azure_tenant_id, created FROM tenants ORDER BY rowid;
DROP TABLE tenants;
ALTER TABLE tenants_v4 RENAME TO tenants;

CREATE TABLE resources_v4 (
    seq              INTEGER PRIMARY KEY,       -- stable order for paging
    tenant           INTEGER NOT NULL REFERENCES tenants(key) ON DELETE CASCADE,
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
    doc              TEXT NOT NULL              -- without id, meta, members and the columns above
);
INSERT INTO resources_v4 (seq, tenant, kind, id, user_name, user_name_key, display_name,
        display_name_key, external_id, active, version, created, last_modified, doc)
    SELECT r.seq, t.key, r.kind, r.id, r.user_name, r.user_name_key, r.display_name,
        r.display_name_key, r.external_id, r.active, r.version, r.created, r.last_modified, r.doc
    FROM resources r JOIN tenants t ON t.id = r.tenant_id ORDER BY r.seq;
DROP TABLE resources;
ALTER TABLE resources_v4 RENAME TO resources;
CREATE UNIQUE INDEX resources_id ON resources(id);
CREATE UNIQUE INDEX resources_user_name ON resources(tenant, kind, user_name_key);
CREATE UNIQUE INDEX resources_group_name ON resources(tenant, kind, display_name_key)
    WHERE kind = 'Group';
CREATE INDEX resources_display_name ON resources(tenant, kind, display_name_key);
CREATE INDEX resources_external_id ON resources(tenant, kind, external_id);
CREATE INDEX resources_kind ON resources(tenant, kind);

-- Memberships: the tenant is on both resource rows (and checked there when a member is added).
CREATE TABLE members_v4 (
    group_seq  INTEGER NOT NULL REFERENCES resources(seq) ON DELETE CASCADE,
    member_seq INTEGER NOT NULL REFERENCES resources(seq) ON DELETE CASCADE,
    PRIMARY KEY (group_seq, member_seq)
) WITHOUT ROWID;
INSERT INTO members_v4 (group_seq, member_seq) SELECT group_seq, member_seq FROM members;
DROP TABLE members;
ALTER TABLE members_v4 RENAME TO members;
CREATE INDEX members_member ON members(member_seq, group_seq);

CREATE TABLE changes_v4 (
    seq         INTEGER PRIMARY KEY,
    tenant      INTEGER NOT NULL,               -- tenants.key
    at          TEXT NOT NULL,
    kind        TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    operation   TEXT NOT NULL,                  -- create | replace | patch | delete
    version     INTEGER
);
INSERT INTO changes_v4 (seq, tenant, at, kind, resource_id, operation, version)
    SELECT c.seq, t.key, c.at, c.kind, c.resource_id, c.operation, c.version
    FROM changes c JOIN tenants t ON t.id = c.tenant_id ORDER BY c.seq;
DROP TABLE changes;
ALTER TABLE changes_v4 RENAME TO changes;
CREATE INDEX changes_tenant ON changes(tenant, seq);
