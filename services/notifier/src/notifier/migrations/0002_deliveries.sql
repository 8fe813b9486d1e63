-- Messages and one delivery row per recipient: the exactly-once ledger.
CREATE TABLE messages (
    message_id     uuid PRIMARY KEY,
    kind           text        NOT NULL CHECK (kind IN ('broadcast', 'system')),
    channel        text        NOT NULL CHECK (channel IN ('email', 'sms')),
    subject        text,
    body           text,
    template       text,
    metadata       jsonb       NOT NULL,
    recipients     integer     NOT NULL,
    skipped        jsonb       NOT NULL DEFAULT '[]',
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE deliveries (
    delivery_id     uuid PRIMARY KEY,
    message_id      uuid        NOT NULL REFERENCES messages,
    -- one delivery per (message, recipient) or per system notification: a retry of the
    -- command or a redelivered NOTIFY message can never add a second one
    idempotency_key text        NOT NULL UNIQUE,
    channel         text        NOT NULL CHECK (channel IN ('email', 'sms')),
    recipient       text        NOT NULL,
    customer_id     uuid,
    contact_id      uuid,
    subject         text,
    body            text,
    template        text,
    variables       jsonb       NOT NULL DEFAULT '{}',
    sealed_secret   text,
    sensitive       boolean     NOT NULL DEFAULT false,
    state           text        NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'sending', 'sent', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    claimed_by      uuid,
    claimed_at      timestamptz,
    last_error      text,
    provider_id     text,
    unconfirmed     boolean     NOT NULL DEFAULT false,
    dead_letter     text        CHECK (dead_letter IN ('pending', 'published')),
    event_version   integer     NOT NULL DEFAULT 0,
    sent_at         timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX deliveries_due ON deliveries (channel, next_attempt_at) WHERE state = 'queued';
CREATE INDEX deliveries_claimed ON deliveries (claimed_by) WHERE state = 'sending';
CREATE INDEX deliveries_message ON deliveries (message_id, delivery_id);
CREATE INDEX deliveries_dead_letters ON deliveries (delivery_id) WHERE dead_letter = 'pending';

CREATE FUNCTION notify_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('deliveries', '');
    RETURN NULL;
END $$;

CREATE TRIGGER deliveries_notify AFTER INSERT ON deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION notify_deliveries();

-- E-mail and SMS settings; secrets sealed with PATCHBAY_SECRET_KEY, never in clear.
CREATE TABLE channel_settings (
    channel       text PRIMARY KEY CHECK (channel IN ('email', 'sms')),
    data          jsonb       NOT NULL,
    sealed_secret text,
    version       integer     NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
