-- The board's tag rows (0014) of new customers written once per statement, not once per row:
-- an append inserts a batch of customers in one statement, and a row trigger ran its plpgsql
-- function and its INSERT once per customer (EXPLAIN ANALYZE of a batch of 32 creates: 5.4 ms
-- in that trigger, as much as the rest of the customers insert; docs/performance.md, "Command
-- path"). Same rows as before; updates and deletes keep their row triggers (an update that
-- leaves tags, name and deletion alone still costs nothing there).
DROP TRIGGER customer_tags_insert ON customers;

CREATE FUNCTION customer_tags_inserted() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO customer_tags (tag, customer_id, name_key, created)
    SELECT DISTINCT t, n.id, lower(n.name), n.created_at
    FROM inserted n, unnest(n.tags) AS t
    WHERE NOT n.deleted;
    RETURN NULL;
END $$;

-- for INSERT ... ON CONFLICT DO UPDATE the transition table holds the inserted rows only; the
-- updated ones go through customer_tags_update as before
CREATE TRIGGER customer_tags_insert AFTER INSERT ON customers REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION customer_tags_inserted();
