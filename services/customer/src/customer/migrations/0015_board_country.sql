-- The board filtered by one country (and anything else these columns carry), in name order,
-- walked from an index that starts with the country: walking the name order tested every
-- customer before the page was full (14k new customers without a country sorting first:
-- 2.6 ms of PostgreSQL CPU per page of DE + EUR, from customers_board_name alone).
CREATE INDEX customers_board_country ON customers (country, lower(name), id)
    INCLUDE (name, status, currency, tags, created_at) WHERE NOT deleted;
