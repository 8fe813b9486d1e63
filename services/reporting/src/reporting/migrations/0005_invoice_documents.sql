-- Invoices as documents (product.md section 13): gapless numbers from a counter row updated in
-- the invoice's own transaction, the carrier's details, dates, status, payments and credit.

-- One row per numbered document kind; the row lock serializes issuing, so a number is taken
-- only by a committed invoice (no gaps, no duplicates). Replaces the sequence, which has gaps.
CREATE TABLE invoice_counters (
    kind        text PRIMARY KEY CHECK (kind IN ('invoice', 'credit_note')),
    next_number bigint NOT NULL CHECK (next_number >= 1)
);
INSERT INTO invoice_counters SELECT 'invoice', coalesce(max(number), 0) + 1 FROM invoices;
INSERT INTO invoice_counters VALUES ('credit_note', 1);
DROP SEQUENCE invoice_numbers;

-- The carrier's details printed on every document (one row).
CREATE TABLE invoice_settings (
    id              integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    prefix          text        NOT NULL DEFAULT 'INV-',
    due_days        integer     NOT NULL DEFAULT 30,
    company_name    text        NOT NULL DEFAULT '',
    company_address text        NOT NULL DEFAULT '',
    payment_details text        NOT NULL DEFAULT '',
    footer          text        NOT NULL DEFAULT '',
    updated_at      timestamptz,
    updated_by      jsonb
);
INSERT INTO invoice_settings (id) VALUES (1);

ALTER TABLE invoices
    ADD COLUMN document_number text,
    ADD COLUMN issue_date      date,
    ADD COLUMN due_date        date,
    ADD COLUMN status          text    NOT NULL DEFAULT 'open'
        CHECK (status IN ('open', 'paid', 'overdue', 'void')),
    ADD COLUMN amount_paid     numeric NOT NULL DEFAULT 0,
    ADD COLUMN amount_credited numeric NOT NULL DEFAULT 0,
    ADD COLUMN minor_units     integer NOT NULL DEFAULT 2,
    ADD COLUMN seller          jsonb   NOT NULL DEFAULT '{}',
    ADD COLUMN buyer           jsonb   NOT NULL DEFAULT '{}',
    ADD COLUMN void_reason     text,
    ADD COLUMN status_at       timestamptz;
UPDATE invoices SET document_number = number::text, issue_date = (created_at AT TIME ZONE 'UTC')::date,
    due_date = (created_at AT TIME ZONE 'UTC')::date + 30;
ALTER TABLE invoices ALTER COLUMN document_number SET NOT NULL,
    ALTER COLUMN issue_date SET NOT NULL, ALTER COLUMN due_date SET NOT NULL,
    ADD CONSTRAINT invoices_document_number_key UNIQUE (document_number);
CREATE INDEX invoices_open_idx ON invoices (customer_id, issue_date, number)
    WHERE status IN ('open', 'overdue');

-- What each invoice billed of each day (the day's lines and any later "late usage" lines):
-- usage that arrives after a day was invoiced is the day's sums now minus these.
CREATE TABLE invoiced_usage (
    customer_id       text    NOT NULL,
    day               date    NOT NULL,
    invoice_id        uuid    NOT NULL,
    late              boolean NOT NULL,
    attempts          bigint  NOT NULL,
    connected         bigint  NOT NULL,
    billed_duration_s bigint  NOT NULL,
    charge            numeric NOT NULL,
    PRIMARY KEY (customer_id, day, invoice_id)
);
INSERT INTO invoiced_usage
    SELECT i.customer_id, (l->>'day')::date, i.id, false, (l->>'attempts')::bigint,
           (l->>'connected')::bigint, (l->>'billed_duration_s')::bigint, (l->>'amount')::numeric
    FROM invoices i, jsonb_array_elements(i.lines) l;

-- Credit notes: numbered documents of their own (CN-), each against one invoice.
CREATE TABLE credit_notes (
    id              uuid PRIMARY KEY,
    number          bigint      NOT NULL UNIQUE,
    document_number text        NOT NULL UNIQUE,
    invoice_id      uuid        NOT NULL REFERENCES invoices (id),
    customer_id     text        NOT NULL,
    currency        text        NOT NULL,
    amount          numeric     NOT NULL CHECK (amount > 0),
    reason          text        NOT NULL,
    created_at      timestamptz NOT NULL,
    created_by      jsonb       NOT NULL
);
CREATE INDEX credit_notes_invoice_idx ON credit_notes (invoice_id, created_at);
CREATE INDEX credit_notes_customer_idx ON credit_notes (customer_id, created_at, id);
