-- Internal number blocks of live customers (written in the append's statement). Block k of
-- the range is the row with block_index k: the primary key makes a shared block impossible,
-- and a released block (or a deleted customer's) is a deleted row, so it is free again.
CREATE TABLE number_blocks (
    block_index  integer PRIMARY KEY,
    id           uuid    NOT NULL UNIQUE,
    customer_id  uuid    NOT NULL,
    first_number bigint  NOT NULL,
    last_number  bigint  NOT NULL
);
CREATE INDEX number_blocks_customer ON number_blocks (customer_id);
-- "which customer owns number n": a range containment lookup
CREATE INDEX number_blocks_numbers ON number_blocks USING gist (int8range(first_number, last_number, '[]'));

-- Bulk uploads: rows are staged (validated, any replica may take any chunk), then committed
-- in one transaction; each row keeps its outcome for the results pages.
CREATE TABLE bulk_uploads (
    id             uuid PRIMARY KEY,
    mode           text        NOT NULL,
    state          text        NOT NULL DEFAULT 'staging',
    actor          jsonb       NOT NULL,
    correlation_id text,
    total          integer     NOT NULL DEFAULT 0,
    created        integer     NOT NULL DEFAULT 0,
    failed         integer     NOT NULL DEFAULT 0,
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz
);

CREATE TABLE bulk_rows (
    upload_id   uuid    NOT NULL REFERENCES bulk_uploads (id) ON DELETE CASCADE,
    row_no      integer NOT NULL,
    line        integer,
    name_key    text,             -- lower(name) of a row that passed validation
    data        jsonb,            -- its CustomerCreated data (null when invalid)
    errors      jsonb   NOT NULL DEFAULT '[]',
    customer_id uuid,             -- set when the row's customer was created
    PRIMARY KEY (upload_id, row_no)
);
CREATE INDEX bulk_rows_names ON bulk_rows (upload_id, name_key) WHERE name_key IS NOT NULL;
