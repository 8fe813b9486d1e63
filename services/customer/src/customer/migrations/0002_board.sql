-- The board's read model: one row per customer, written in the same statement as the events.
CREATE TABLE customers (
    id             uuid PRIMARY KEY,
    name           text        NOT NULL,
    status         text        NOT NULL,
    currency       text        NOT NULL,
    country        text,
    tags           text[]      NOT NULL DEFAULT '{}',
    website        text,
    paypal_email   text,
    channels       integer     NOT NULL,
    cps            numeric     NOT NULL,
    debit_limit    numeric     NOT NULL,
    tax            numeric     NOT NULL,
    minimum_payment numeric    NOT NULL,
    portal_access  boolean     NOT NULL,
    penalty_until  timestamptz,
    deleted        boolean     NOT NULL DEFAULT false,
    version        integer     NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    search         text        NOT NULL,
    card           text        NOT NULL  -- the card's JSON, as the API answers it
);

-- Unique names among customers that are not deleted, case-insensitively.
CREATE UNIQUE INDEX customers_name_uq ON customers (lower(name)) WHERE NOT deleted;
CREATE INDEX customers_name_sort ON customers (lower(name), id) WHERE NOT deleted;
CREATE INDEX customers_created ON customers (created_at, id) WHERE NOT deleted;
CREATE INDEX customers_tags ON customers USING gin (tags);
CREATE INDEX customers_penalty ON customers (penalty_until) WHERE status = 'penalty' AND NOT deleted;
