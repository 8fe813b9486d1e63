-- Invoices are reporting's own facts: stored here, published as InvoiceGenerated through an
-- outbox (the same tables as the customer service's event store, read by shared.outbox_relay).
CREATE TABLE events (
    position       bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    stream_id      text        NOT NULL,
    version        integer     NOT NULL,
    event_id       uuid        NOT NULL UNIQUE,
    category       text        NOT NULL,
    type           text        NOT NULL,
    schema_version integer     NOT NULL,
    occurred_at    timestamptz NOT NULL,
    metadata       jsonb       NOT NULL,
    data           jsonb       NOT NULL,
    CONSTRAINT events_pkey PRIMARY KEY (stream_id, version)
);
CREATE TABLE outbox (position bigint PRIMARY KEY);
CREATE FUNCTION notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION notify_outbox();
CREATE TABLE commands (
    command_id text PRIMARY KEY,
    reply      text        NOT NULL,  -- JSON text, as sent
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE SEQUENCE invoice_numbers;
CREATE TABLE invoices (
    id           uuid PRIMARY KEY,
    number       bigint      NOT NULL UNIQUE,
    customer_id  text        NOT NULL,
    currency     text        NOT NULL,
    tax_rate     numeric     NOT NULL,
    subtotal     numeric     NOT NULL,
    tax          numeric     NOT NULL,
    total        numeric     NOT NULL,
    period_from  date        NOT NULL,
    period_to    date        NOT NULL,
    lines        jsonb       NOT NULL,
    created_at   timestamptz NOT NULL,
    created_by   jsonb       NOT NULL
);
CREATE INDEX invoices_customer_idx ON invoices (customer_id, created_at, id);
CREATE INDEX invoices_created_idx ON invoices (created_at, id);

-- The guarantee that one day is never invoiced twice for one customer.
CREATE TABLE invoiced_days (
    customer_id text NOT NULL,
    day         date NOT NULL,
    invoice_id  uuid NOT NULL,
    CONSTRAINT invoiced_days_pkey PRIMARY KEY (customer_id, day)
);
