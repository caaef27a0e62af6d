-- Schema for the admin dashboard: what it shows must cost the same at a million users
-- as at ten, so the counts it needs are maintained as rows change instead of counted per page.
--
-- tenant_counts: one row per tenant, kept by triggers on resources and members (every writer,
-- present and future, updates it without knowing). No foreign key to tenants: a trigger fired
-- by a cascade must never fail on it.
CREATE TABLE tenant_counts (
    tenant       INTEGER PRIMARY KEY,           -- tenants.key
    users        INTEGER NOT NULL DEFAULT 0,
    active_users INTEGER NOT NULL DEFAULT 0,
    groups       INTEGER NOT NULL DEFAULT 0,
    memberships  INTEGER NOT NULL DEFAULT 0
);
INSERT INTO tenant_counts (tenant, users, active_users, groups, memberships)
    SELECT t.key,
        (SELECT count(*) FROM resources r WHERE r.tenant = t.key AND r.kind = 'User'),
        (SELECT count(*) FROM resources r WHERE r.tenant = t.key AND r.kind = 'User' AND r.active = 1),
        (SELECT count(*) FROM resources r WHERE r.tenant = t.key AND r.kind = 'Group'),
        (SELECT count(*) FROM members m JOIN resources g ON g.seq = m.group_seq WHERE g.tenant = t.key)
    FROM tenants t;

CREATE TRIGGER tenant_counts_resource_insert AFTER INSERT ON resources BEGIN
    INSERT INTO tenant_counts (tenant, users, active_users, groups)
        VALUES (NEW.tenant, NEW.kind = 'User', NEW.kind = 'User' AND NEW.active IS 1, NEW.kind = 'Group')
        ON CONFLICT (tenant) DO UPDATE SET users = users + excluded.users,
            active_users = active_users + excluded.active_users, groups = groups + excluded.groups;
END;

-- A group's memberships leave with it: counted here, because the cascade that deletes its
-- member rows runs after the group row is gone (the member trigger cannot find its tenant).
CREATE TRIGGER tenant_counts_resource_delete BEFORE DELETE ON resources BEGIN
    UPDATE tenant_counts SET users = users - (OLD.kind = 'User'),
        active_users = active_users - (OLD.kind = 'User' AND OLD.active IS 1),
        groups = groups - (OLD.kind = 'Group'),
        memberships = memberships - CASE WHEN OLD.kind = 'Group'
            THEN (SELECT count(*) FROM members WHERE group_seq = OLD.seq) ELSE 0 END
        WHERE tenant = OLD.tenant;
END;

CREATE TRIGGER tenant_counts_resource_active AFTER UPDATE OF active ON resources
    WHEN OLD.kind = 'User' AND (OLD.active IS 1) != (NEW.active IS 1) BEGIN
    UPDATE tenant_counts SET active_users = active_users + CASE WHEN NEW.active IS 1 THEN 1 ELSE -1 END
        WHERE tenant = NEW.tenant;
END;

CREATE TRIGGER tenant_counts_member_insert AFTER INSERT ON members BEGIN
    UPDATE tenant_counts SET memberships = memberships + 1
        WHERE tenant = (SELECT tenant FROM resources WHERE seq = NEW.group_seq);
END;

-- Finds no group (so changes nothing) when the group itself is being deleted: see above.
CREATE TRIGGER tenant_counts_member_delete AFTER DELETE ON members BEGIN
    UPDATE tenant_counts SET memberships = memberships - 1
        WHERE tenant = (SELECT tenant FROM resources WHERE seq = OLD.group_seq);
END;

-- request_hours: provisioning-log entries per tenant ('' for none), UTC hour ('2026-12-05T07')
-- and status class (2, 4, 5), kept by a trigger on request_log; pruned with it.
CREATE TABLE request_hours (
    tenant_id TEXT NOT NULL,
    hour      TEXT NOT NULL,
    class     INTEGER NOT NULL,
    n         INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, hour, class)
) WITHOUT ROWID;
INSERT INTO request_hours (tenant_id, hour, class, n)
    SELECT COALESCE(tenant_id, ''), substr(at, 1, 13), status / 100, count(*)
    FROM request_log GROUP BY 1, 2, 3;

CREATE TRIGGER request_hours_insert AFTER INSERT ON request_log BEGIN
    INSERT INTO request_hours (tenant_id, hour, class, n)
        VALUES (COALESCE(NEW.tenant_id, ''), substr(NEW.at, 1, 13), NEW.status / 100, 1)
        ON CONFLICT (tenant_id, hour, class) DO UPDATE SET n = n + 1;
END;

-- The last failures of a tenant, newest first, without walking its successes.
CREATE INDEX request_log_failures ON request_log(tenant_id, seq) WHERE status >= 400;

-- One resource's history (the dashboard's search): its change rows by resource id.
CREATE INDEX IF NOT EXISTS changes_resource ON changes(resource_id, seq);
