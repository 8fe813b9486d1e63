"""The SQL statements of bulk uploads (tables in migration 0005); the flow is in bulk_upload.py."""

from __future__ import annotations

_UPLOAD_COLUMNS = "id, mode, state, actor::text AS actor, correlation_id, total, created, failed, fingerprint"

UPLOAD = f"SELECT {_UPLOAD_COLUMNS} FROM bulk_uploads WHERE id = $1"

BEGIN = (
    "INSERT INTO bulk_uploads (id, mode, actor, correlation_id, fingerprint)"
    " VALUES ($1, $2, $3::jsonb, $4, $5)"
    " ON CONFLICT (id) DO NOTHING RETURNING id"
)

# uploads (and their rows, by cascade) older than the retention are forgotten
FORGET = "DELETE FROM bulk_uploads WHERE started_at < $1"

RESTART = (
    "UPDATE bulk_uploads SET mode = $2, correlation_id = $3, fingerprint = $4, started_at = now()"
    f" WHERE id = $1 RETURNING {_UPLOAD_COLUMNS}"
)

# a re-sent row replaces the one staged before; a valid row gets its customer's id here, so
# the commit writes no row twice (the id is used only if the row is created)
STAGE = (
    "INSERT INTO bulk_rows (upload_id, row_no, line, name_key, data, errors, customer_id)"
    " SELECT $1, row_no, line, lower(data->>'name'), data, errors, customer_id"
    " FROM jsonb_to_recordset($2::jsonb)"
    " AS x(row_no int, line int, data jsonb, errors jsonb, customer_id uuid)"
    " ON CONFLICT (upload_id, row_no) DO UPDATE SET line = EXCLUDED.line,"
    " name_key = EXCLUDED.name_key, data = EXCLUDED.data, errors = EXCLUDED.errors,"
    " customer_id = EXCLUDED.customer_id"
)


def _one_error(field: str, message_sql: str, kind: str) -> str:
    return (f"jsonb_build_array(jsonb_build_object('field', '{field}', 'message', {message_sql},"
            f" 'type', '{kind}'))")


# a penalty that was in the future when the row was staged may have passed by commit
PENALTY_PASSED = (
    "UPDATE bulk_rows SET errors = "
    + _one_error("penalty_until", "'penalty_until must be in the future'", "value_error")
    + " WHERE upload_id = $1 AND errors = '[]'::jsonb AND data->>'status' = 'penalty'"
    " AND (data->>'penalty_until')::timestamptz <= $2"
)

NAME_TAKEN = (
    "UPDATE bulk_rows b SET errors = "
    + _one_error("name", "'another customer already has this name (names are unique,"
                 " case-insensitively, among customers that are not deleted)'", "name_taken")
    + " FROM customers c WHERE b.upload_id = $1 AND b.errors = '[]'::jsonb"
    " AND b.name_key IS NOT NULL AND lower(c.name) = b.name_key AND NOT c.deleted"
)

# the first valid row with a name keeps it; later rows with the same name fail
NAME_REPEATED = (
    "UPDATE bulk_rows b SET errors = "
    + _one_error("name", "'the same name (case-insensitively) is already in row ' || d.first_row",
                 "name_taken")
    + " FROM (SELECT row_no, min(row_no) OVER (PARTITION BY name_key) AS first_row FROM bulk_rows"
    " WHERE upload_id = $1 AND errors = '[]'::jsonb AND name_key IS NOT NULL) d"
    " WHERE b.upload_id = $1 AND b.row_no = d.row_no AND d.row_no <> d.first_row"
)

COUNTS = (
    "SELECT count(*) AS total, count(*) FILTER (WHERE errors <> '[]'::jsonb) AS failed"
    " FROM bulk_rows WHERE upload_id = $1"
)

VALID_ROWS = (
    "SELECT row_no, customer_id::text AS customer_id, data::text AS data FROM bulk_rows"
    " WHERE upload_id = $1 AND row_no > $2 AND errors = '[]'::jsonb ORDER BY row_no LIMIT $3"
)

FINISH = (
    "UPDATE bulk_uploads SET state = $2, total = $3, created = $4, failed = $5, finished_at = now()"
    f" WHERE id = $1 RETURNING {_UPLOAD_COLUMNS}"
)

# $4: the upload committed, so every row without errors was created
RESULTS = (
    "SELECT row_no, line, customer_id, errors::text AS errors,"
    " CASE WHEN errors <> '[]'::jsonb THEN 'failed' WHEN $4 THEN 'created'"
    " ELSE 'not_created' END AS status"
    " FROM bulk_rows WHERE upload_id = $1 AND row_no > $2{where} ORDER BY row_no LIMIT $3"
)
