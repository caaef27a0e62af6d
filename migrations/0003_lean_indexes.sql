-- grouptalk-scim schema v3: the same data in fewer bytes, and statements that stay prepared.
-- Measured with scripts/bench at 1,000,000 users (README "Performance").

-- 1. userName uniqueness without a partial clause. A partial index `WHERE user_name_key IS NOT
--    NULL` makes SQLite read the bound userName while planning `user_name_key = ?` (to prove the
--    index applies) and re-prepare the statement every time the value changes: the statement
--    cache saved nothing on the hottest query. UNIQUE already allows many NULLs (groups).
DROP INDEX resources_user_name;
CREATE UNIQUE INDEX resources_user_name ON resources(tenant_id, kind, user_name_key);

-- 2. Lookups by id probe the id alone: ids are server-made random UUIDs, unique across tenants,
--    and every statement still filters the row on tenant_id. The tenant prefix cost 37 bytes per
--    user. (externalId keeps its (tenant_id, kind, …) prefix: without statistics, SQLite would
--    prefer the two-column resources_kind below to a one-column externalId index.)
DROP INDEX resources_id;
CREATE UNIQUE INDEX resources_id ON resources(id);

-- 3. Listing without a filter: (tenant_id, kind) entries are ordered by seq (the rowid), so
--    `ORDER BY seq LIMIT/OFFSET` walks a small index instead of sorting every document of the
--    tenant, and count(*) reads the smallest index.
CREATE INDEX resources_kind ON resources(tenant_id, kind);

-- 4. multi_values keeps only what filters read: the folded value and type. The value as sent is
--    in the document; the tenant is checked on the owning resource row.
DROP INDEX multi_values_lookup;
ALTER TABLE multi_values DROP COLUMN value;
ALTER TABLE multi_values DROP COLUMN tenant_id;
CREATE INDEX multi_values_lookup ON multi_values(attr, value_key, type_key);

-- 5. Attributes kept in columns (userName, displayName, externalId, active) are no longer
--    repeated in the document; the store puts them back when it reads a row.
--    Only values of the column's type are removed, exactly as the store does.
UPDATE resources SET doc = json_remove(doc,
    CASE WHEN json_type(doc, '$.userName') = 'text' THEN '$.userName' ELSE '$.__none' END,
    CASE WHEN json_type(doc, '$.displayName') = 'text' THEN '$.displayName' ELSE '$.__none' END,
    CASE WHEN json_type(doc, '$.externalId') = 'text' THEN '$.externalId' ELSE '$.__none' END,
    CASE WHEN json_type(doc, '$.active') IN ('true', 'false') THEN '$.active' ELSE '$.__none' END);
