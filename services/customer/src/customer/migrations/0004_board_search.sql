-- Free-text search by word prefix over an indexed tsvector (pg_trgm is not in the embedded
-- PostgreSQL; a LIKE '%q%' scan took tens of ms over 100k customers).
ALTER TABLE customers
    ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (to_tsvector('simple', search)) STORED;
CREATE INDEX customers_search ON customers USING gin (search_vector);
