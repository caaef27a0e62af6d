-- grouptalk-scim: the per-tenant counts and the hourly request counts are kept by the writes
-- themselves (src/store/counts.rs, src/store/request_log.rs), no longer by triggers.
--
-- A statement that fires a trigger writing another table runs under a statement journal: every
-- page it touches is copied once more. On a create that was the row's table and index pages,
-- about 7 % of the server's CPU under sustained creates. The counts are exact at this point
-- (the triggers kept them until now), so nothing is recounted: dropping a trigger is
-- milliseconds at any size.
DROP TRIGGER tenant_counts_resource_insert;
DROP TRIGGER tenant_counts_resource_delete;
DROP TRIGGER tenant_counts_resource_active;
DROP TRIGGER tenant_counts_member_insert;
DROP TRIGGER tenant_counts_member_delete;
DROP TRIGGER request_hours_insert;
