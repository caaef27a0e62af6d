-- grouptalk-scim schema v7: the change feed (`/feed/v1/`, docs/feed.md).
--
-- `changes` becomes the feed's log. Its rows before v7 cannot be served (no member deltas, no
-- deactivate/reactivate), so the table is replaced rather than rewritten: dropping it frees its
-- pages without touching a row, and no other table is rewritten (instant at any size). The
-- feed starts empty at the upgrade; consumers begin with a snapshot. `pruned_through` records
-- where the old log ended, so sequence numbers continue after it and an older cursor is
-- answered 410, never a silent gap.

-- One row: the database's epoch (random; `backup restore` gives the restored database a new
-- one, so a cursor from before a restore is answered 410) and the highest sequence number that
-- is no longer retained.
CREATE TABLE feed_meta (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    epoch          TEXT NOT NULL,
    pruned_through INTEGER NOT NULL
);
INSERT INTO feed_meta (id, epoch, pruned_through)
    SELECT 1, lower(hex(randomblob(8))), coalesce(max(seq), 0) FROM changes;

DROP TABLE changes;

-- One row per change of a resource, in the transaction of the change. AUTOINCREMENT: a sequence
-- number is never handed out twice, even once the newest rows are pruned.
CREATE TABLE changes (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant      INTEGER NOT NULL,               -- tenants.key
    at          TEXT NOT NULL,                  -- RFC 3339 UTC, ms
    kind        TEXT NOT NULL,                  -- User | Group
    resource_id TEXT NOT NULL,
    operation   TEXT NOT NULL,                  -- create | update | deactivate | reactivate | delete
    revision    INTEGER NOT NULL,               -- the resource's version after it; a delete: +1
    added       TEXT,                           -- JSON array of member ids added (groups)
    removed     TEXT                            -- JSON array of member ids removed (groups)
);
CREATE INDEX changes_tenant ON changes(tenant, seq);
INSERT INTO sqlite_sequence (name, seq) SELECT 'changes', pruned_through FROM feed_meta;

-- Where each consumer has read up to (`PUT /feed/v1/position`), by the credential it reads
-- with: a long-lived token's id or an OAuth client's id (never an access token's).
CREATE TABLE feed_consumers (
    tenant     INTEGER NOT NULL,                -- tenants.key
    consumer   TEXT NOT NULL,
    position   INTEGER NOT NULL,                -- the seq it has read through
    updated    TEXT NOT NULL,                   -- RFC 3339 UTC
    PRIMARY KEY (tenant, consumer)
) WITHOUT ROWID;
