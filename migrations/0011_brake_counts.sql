-- grouptalk-scim: what the deletion brake reads on a write, in bounded time (docs/brake.md).
--
-- 1. `held_images` becomes a table with rowids. As a WITHOUT ROWID table its key lived in the
-- row, and SQLite reads a row that overflows its page whole to compare keys: every write of a
-- tenant in an episode looked up whether its resource had an image, and a lookup that passed
-- the image of a 50,000-member group read its ~3 MiB of members each time (P2 creates ran 4x
-- slower while a big group was held). With rowids, the lookup reads only the index.
CREATE TABLE held_images_v11 (
    tenant        INTEGER NOT NULL,             -- tenants.key
    resource_id   TEXT NOT NULL,
    kind          TEXT NOT NULL,                -- User | Group
    seq           INTEGER NOT NULL,             -- its resources.seq: its place in a snapshot
    version       INTEGER NOT NULL,             -- the revision the feed last delivered
    created       TEXT NOT NULL,
    last_modified TEXT NOT NULL,
    doc           TEXT NOT NULL,                -- the resource's document, as delivered
    members       TEXT                          -- a group's members: [{"id","kind","display"}]
);
INSERT INTO held_images_v11 (tenant, resource_id, kind, seq, version, created, last_modified,
                             doc, members)
SELECT tenant, resource_id, kind, seq, version, created, last_modified, doc, members
FROM held_images;
DROP TABLE held_images;
ALTER TABLE held_images_v11 RENAME TO held_images;
CREATE UNIQUE INDEX held_images_resource ON held_images(tenant, resource_id);
CREATE INDEX held_images_order ON held_images(tenant, kind, seq);

-- 2. Until v10 the brake summed the removals in its window from `changes` and `held_changes` on
-- every removal, and a re-added member searched every held change of its group: both grew with
-- the episode (a removal at 1M users could sum 50,000 rows), on the single writer thread that
-- every tenant's writes share. These two tables keep what those reads need, maintained by the
-- same transactions that write the changes.

-- 2a. Removals counted per tenant and minute: the window's count is a sum over at most
-- window_minutes + 1 rows.
CREATE TABLE brake_minutes (
    tenant    INTEGER NOT NULL,              -- tenants.key
    minute    INTEGER NOT NULL,              -- unix time / 60 of the changes counted
    delivered INTEGER NOT NULL DEFAULT 0,    -- removals of delivered changes (`changes`)
    held      INTEGER NOT NULL DEFAULT 0,    -- removals of held changes (`held_changes`)
    PRIMARY KEY (tenant, minute)
) WITHOUT ROWID;

INSERT INTO brake_minutes (tenant, minute, delivered, held)
SELECT tenant, minute, sum(delivered), sum(held) FROM (
    SELECT tenant, unixepoch(at) / 60 AS minute, removals AS delivered, 0 AS held
    FROM changes WHERE removals > 0
    UNION ALL
    SELECT tenant, unixepoch(at) / 60, 0, removals FROM held_changes WHERE removals > 0
) GROUP BY tenant, minute;
-- The window is no longer summed from `changes`: its partial index would only cost every
-- delivered removal an index write.
DROP INDEX changes_removals;

-- 2b. Each member a held change removes: a member added back finds the held removal it cancels
-- by its id.
CREATE TABLE held_removals (
    tenant      INTEGER NOT NULL,            -- tenants.key
    resource_id TEXT NOT NULL,               -- the group
    member_id   TEXT NOT NULL,
    held_id     INTEGER NOT NULL,            -- held_changes.id
    PRIMARY KEY (tenant, resource_id, member_id, held_id)
) WITHOUT ROWID;

INSERT INTO held_removals (tenant, resource_id, member_id, held_id)
SELECT h.tenant, h.resource_id, j.value, h.id
FROM held_changes h, json_each(h.removed) j
WHERE h.removed IS NOT NULL;
