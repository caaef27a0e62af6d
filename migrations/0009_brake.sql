-- grouptalk-scim: the deletion brake (docs/brake.md).
--
-- A write always changes the directory; what the brake holds is its change in the feed. Held
-- changes wait in `held_changes` (never in `changes`, so retention and pruning never touch
-- them) until `brake release` appends them to `changes` at new sequence numbers, or `brake
-- discard` drops them. `held_images` keeps, for each resource with held changes, the resource
-- as it was last delivered: what the feed shows of it meanwhile.

-- How many removals a delivered change counted for (deactivation, deletion, member removals):
-- the brake sums them over its window. Adding a column with a constant default rewrites no row.
ALTER TABLE changes ADD COLUMN removals INTEGER NOT NULL DEFAULT 0;
CREATE INDEX changes_removals ON changes(tenant, at) WHERE removals > 0;

-- The held changes, in the order they happened (`id`).
CREATE TABLE held_changes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant      INTEGER NOT NULL,               -- tenants.key
    at          TEXT NOT NULL,                  -- RFC 3339 UTC, when it was held
    kind        TEXT NOT NULL,                  -- User | Group
    resource_id TEXT NOT NULL,
    operation   TEXT NOT NULL,                  -- as changes.operation
    revision    INTEGER NOT NULL,
    added       TEXT,                           -- JSON array of member ids (groups)
    removed     TEXT,                           -- JSON array of member ids (groups)
    removals    INTEGER NOT NULL                -- what it counts for in the window
);
CREATE INDEX held_changes_resource ON held_changes(tenant, resource_id);
-- A tenant's held changes in order (release, the dashboard's list) without a sort.
CREATE INDEX held_changes_order ON held_changes(tenant, id);

-- The last delivered image of each resource that has held changes (also of one whose delete
-- is held: its row is gone from `resources`).
CREATE TABLE held_images (
    tenant        INTEGER NOT NULL,             -- tenants.key
    resource_id   TEXT NOT NULL,
    kind          TEXT NOT NULL,                -- User | Group
    seq           INTEGER NOT NULL,             -- its resources.seq: its place in a snapshot
    version       INTEGER NOT NULL,             -- the revision the feed last delivered
    created       TEXT NOT NULL,
    last_modified TEXT NOT NULL,
    doc           TEXT NOT NULL,                -- the resource's document, as delivered
    members       TEXT,                         -- a group's members: [{"id","kind","display"}]
    PRIMARY KEY (tenant, resource_id)
) WITHOUT ROWID;
CREATE INDEX held_images_order ON held_images(tenant, kind, seq);
