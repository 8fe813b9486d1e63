-- The ledger (docs/money.md, ADR 6): payments as rows, tax history, call charges, PayPal IPNs.

-- Payments, refunds and adjustments: a read model of the PaymentRecorded and
-- PaymentStatusChanged events, written by the trigger below in the append's transaction.
CREATE TABLE payments (
    id            uuid PRIMARY KEY,
    customer_id   uuid        NOT NULL,
    reference     text        NOT NULL,
    kind          text        NOT NULL,
    amount        numeric     NOT NULL,
    currency      text        NOT NULL,
    method        text        NOT NULL,
    status        text        NOT NULL,
    fee           numeric,
    description   text,
    private_note  text,
    source        text        NOT NULL,
    below_minimum boolean     NOT NULL DEFAULT false,
    payer_email   text,
    received_at   timestamptz NOT NULL,
    recorded_at   timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    CONSTRAINT payments_reference_uq UNIQUE (customer_id, reference)
);
CREATE INDEX payments_customer_recorded ON payments (customer_id, recorded_at DESC, id DESC);

-- The customer's tax rate from each moment on: a call's charge gets the tax of its start.
CREATE TABLE tax_history (
    customer_id  text        NOT NULL,
    effective_at timestamptz NOT NULL,
    tax          numeric     NOT NULL,
    PRIMARY KEY (customer_id, effective_at)
);
INSERT INTO tax_history (customer_id, effective_at, tax)
    SELECT id::text, created_at, tax FROM customers ON CONFLICT DO NOTHING;

CREATE FUNCTION ledger_from_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.type = 'CustomerCreated' THEN
        INSERT INTO tax_history VALUES (NEW.stream_id, NEW.occurred_at, coalesce((NEW.data->>'tax')::numeric, 0))
            ON CONFLICT (customer_id, effective_at) DO UPDATE SET tax = excluded.tax;
    ELSIF NEW.type = 'CustomerUpdated' THEN
        IF NEW.data->'changes' ? 'tax' THEN
            INSERT INTO tax_history
                VALUES (NEW.stream_id, NEW.occurred_at,
                        coalesce((NEW.data->'changes'->'tax'->>'new')::numeric, 0))
                ON CONFLICT (customer_id, effective_at) DO UPDATE SET tax = excluded.tax;
        END IF;
    ELSIF NEW.type = 'PaymentRecorded' THEN
        INSERT INTO payments (id, customer_id, reference, kind, amount, currency, method, status,
                              fee, description, private_note, source, below_minimum, payer_email,
                              received_at, recorded_at, updated_at)
        VALUES ((NEW.data->>'payment_id')::uuid, NEW.stream_id::uuid, NEW.data->>'reference',
                NEW.data->>'kind', (NEW.data->>'amount')::numeric, NEW.data->>'currency',
                NEW.data->>'method', NEW.data->>'status', (NEW.data->>'fee')::numeric,
                NEW.data->>'description', NEW.data->>'private_note', NEW.data->>'source',
                coalesce((NEW.data->>'below_minimum')::boolean, false), NEW.data->>'payer_email',
                (NEW.data->>'received_at')::timestamptz, NEW.occurred_at, NEW.occurred_at);
    ELSIF NEW.type = 'PaymentStatusChanged' THEN
        UPDATE payments SET status = NEW.data->>'new', updated_at = NEW.occurred_at
            WHERE id = (NEW.data->>'payment_id')::uuid;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER ledger_from_events AFTER INSERT ON events FOR EACH ROW
    WHEN (NEW.category = 'customer' AND NEW.type IN
          ('CustomerCreated', 'CustomerUpdated', 'PaymentRecorded', 'PaymentStatusChanged'))
    EXECUTE FUNCTION ledger_from_events();

-- Call charges from stream CALLS, once each by call id, with the tax of the call's start.
CREATE TABLE ledger_calls (
    call_id     text PRIMARY KEY,
    customer_id text        NOT NULL,
    started_at  timestamptz NOT NULL,
    charge      numeric     NOT NULL,
    tax         numeric     NOT NULL,
    charged     numeric     NOT NULL  -- charge * (1 + tax/100)
);
CREATE INDEX ledger_calls_customer ON ledger_calls (customer_id, started_at);

-- Per customer: all charges with tax, and those of the latest UTC day seen. `seq` grows with
-- every change, so a view in memory never takes an older row for a newer one.
CREATE TABLE ledger_charges (
    customer_id text PRIMARY KEY,
    charges     numeric     NOT NULL DEFAULT 0,
    calls       bigint      NOT NULL DEFAULT 0,
    day         date        NOT NULL,
    day_charges numeric     NOT NULL DEFAULT 0,
    seq         bigint      NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The last CALLS sequence each partition's consumer has written (same transaction as the rows).
CREATE TABLE ledger_checkpoints (consumer text PRIMARY KEY, seq bigint NOT NULL);

-- Every PayPal IPN as received (raw bytes), and what became of it: the payment log.
CREATE TABLE ipn_log (
    id              uuid PRIMARY KEY,
    received_at     timestamptz NOT NULL,
    body            bytea       NOT NULL,
    remote_addr     text,
    txn_id          text,
    payment_status  text,
    amount          text,
    currency        text,
    receiver_email  text,
    payer_email     text,
    customer_id     uuid,
    payment_id      uuid,
    verification    text,
    outcome         text        NOT NULL DEFAULT 'pending',
    reason          text,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ipn_log_received ON ipn_log (received_at DESC, id DESC);
CREATE INDEX ipn_log_pending ON ipn_log (next_attempt_at) WHERE outcome = 'pending';
CREATE INDEX ipn_log_txn ON ipn_log (txn_id);
