"""The ID-mapping table."""
from integration.store.types import text

BY_BILLING_ID = text("SELECT * FROM id_mappings WHERE type = :type AND billing_id = :billing_id")
# A Zuora key is an ID or an account number; an exact ID match wins over a number match.
BY_ZUORA_KEY = text(
    "SELECT * FROM id_mappings WHERE type = :type AND (zuora_id = :key OR zuora_number = :key)"
    " ORDER BY CASE WHEN zuora_id = :key THEN 0 ELSE 1 END LIMIT 1")
CHILDREN = text("SELECT * FROM id_mappings WHERE type = :type AND billing_parent_id = :parent ORDER BY id")
ACCOUNT_LINKED = text(
    "SELECT 1 FROM id_mappings WHERE type = 'account' AND (billing_id = :billing_id OR zuora_id = :zuora_id)")
COUNT_BY_TYPE = text("SELECT type, COUNT(*) AS n FROM id_mappings GROUP BY type")

# link(): both unique keys decide, on any engine. The insert lands, or meets (type, zuora_id) or
# (type, billing_id) and does nothing; then the rows holding either key say whether it is the same
# pair (a no-op that fills in what was missing) or a conflict.
INSERT = text(
    "INSERT INTO id_mappings (type, zuora_id, zuora_number, billing_id, billing_customer_id, billing_parent_id,"
    " origin, created_at, updated_at) VALUES (:type, :zuora_id, :zuora_number, :billing_id, :billing_customer_id,"
    " :billing_parent_id, :origin, :now, :now) ON CONFLICT DO NOTHING RETURNING id")
HOLDERS = text("SELECT * FROM id_mappings WHERE type = :type AND (zuora_id = :zuora_id OR billing_id = :billing_id)")
FILL_IN = text(
    "UPDATE id_mappings SET zuora_number = COALESCE(:zuora_number, zuora_number),"
    " billing_customer_id = COALESCE(:billing_customer_id, billing_customer_id), updated_at = :now WHERE id = :id")

# One page of the admin list; a filter left NULL matches everything (CAST: PostgreSQL must know the
# type of a parameter that is only compared with NULL).
PAGE = text(
    "SELECT * FROM id_mappings WHERE (CAST(:type AS TEXT) IS NULL OR type = :type)"
    " AND (CAST(:billing_id AS TEXT) IS NULL OR billing_id = :billing_id)"
    " AND (CAST(:zuora_key AS TEXT) IS NULL OR zuora_id = :zuora_key OR zuora_number = :zuora_key)"
    " AND id > :after ORDER BY id LIMIT :limit")
