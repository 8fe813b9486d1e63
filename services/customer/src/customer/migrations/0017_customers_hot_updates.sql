-- Cheaper command batches in PostgreSQL (docs/performance.md, "Commands: publish path and
-- PostgreSQL, third round"); same rows, same triggers' effects.
--
-- 1. Room on each page of `customers` for the next version of its rows: an update that leaves the
--    indexed columns alone (channels, limits, notes, the card) can then be a HOT update, written
--    on the same page with no new entry in any of the table's 9 indexes (two of them GIN). In the
--    bench's update phase only 15 % of the updates were HOT (pages filled to 100 % by the
--    creates); at fillfactor 70, 55 %, and PostgreSQL's CPU per update went ~105 -> ~89 us.
--    Applies to pages written from now on (no rewrite here; VACUUM FULL would repack old ones).
ALTER TABLE customers SET (fillfactor = 70);

-- 2. The ledger's row trigger (0010) was called for every CustomerUpdated and did nothing unless
--    the tax changed: the trigger's WHEN now asks that first, in C, without the plpgsql call.
DROP TRIGGER ledger_from_events ON events;
CREATE TRIGGER ledger_from_events AFTER INSERT ON events FOR EACH ROW
    WHEN (NEW.category = 'customer' AND (
          NEW.type IN ('CustomerCreated', 'PaymentRecorded', 'PaymentStatusChanged')
          OR (NEW.type = 'CustomerUpdated' AND NEW.data->'changes' ? 'tax')))
    EXECUTE FUNCTION ledger_from_events();

-- 3. The tag rows' statement trigger (0016) fires for every customers upsert, also when every row
--    of it was an update (its transition table is then empty): leave before the INSERT's executor
--    is set up (EXPLAIN of a batch of 20 updates: 22 -> 15 us in the trigger).
CREATE OR REPLACE FUNCTION customer_tags_inserted() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM inserted) THEN
        RETURN NULL;
    END IF;
    INSERT INTO customer_tags (tag, customer_id, name_key, created)
    SELECT DISTINCT t, n.id, lower(n.name), n.created_at
    FROM inserted n, unnest(n.tags) AS t
    WHERE NOT n.deleted;
    RETURN NULL;
END $$;
