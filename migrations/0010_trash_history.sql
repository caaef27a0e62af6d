-- grouptalk-scim: the trash (a SCIM DELETE that can be undone) and the history of every object
-- (docs/trash-and-history.md). New tables only: instant at any size.

-- A deleted user or group, kept outside `resources` and its unique indexes (a POST of the same
-- userName / displayName succeeds while it is here) until `trash.retention_days` have passed.
-- Memberships are kept as ids (`related`: a user's groups, or a group's members *and* the
-- groups it was in), packed 16 bytes per UUID id (a 100,000-member group: 1.6 MB), or a JSON
-- array when an id is not a UUID.
CREATE TABLE trash (
    seq           INTEGER PRIMARY KEY,
    tenant        INTEGER NOT NULL REFERENCES tenants(key) ON DELETE CASCADE,
    kind          TEXT NOT NULL,                 -- User | Group
    id            TEXT NOT NULL,
    name_key      TEXT,                          -- fold(userName) / fold(displayName)
    version       INTEGER NOT NULL,              -- its version when it was deleted
    created       TEXT NOT NULL,
    deleted       TEXT NOT NULL,                 -- RFC 3339 UTC, ms
    doc           TEXT NOT NULL,                 -- the whole document, as GET rendered it
    members       BLOB,                          -- a group's members (ids, packed)
    member_count  INTEGER NOT NULL,
    groups        BLOB,                          -- the groups it was a member of (ids, packed)
    group_count   INTEGER NOT NULL
);
CREATE UNIQUE INDEX trash_id ON trash(tenant, id);
CREATE INDEX trash_name ON trash(tenant, name_key);
CREATE INDEX trash_deleted ON trash(deleted);

-- What a provisioning-log row adds for `history`: the attributes a write changed (from what to
-- what, capped) and, with `log.keep_bodies`, the request body (password stripped, capped). Goes
-- with its log row (retention), by the foreign key.
CREATE TABLE request_details (
    log_seq  INTEGER PRIMARY KEY REFERENCES request_log(seq) ON DELETE CASCADE,
    diff     TEXT,                               -- JSON, see scim::diff
    body     TEXT
);
