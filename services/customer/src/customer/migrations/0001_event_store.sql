-- The customer service's event store: the source of truth for customers and settings.
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

-- Positions committed but not yet published to JetStream (the outbox).
CREATE TABLE outbox (position bigint PRIMARY KEY);

CREATE FUNCTION notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox', '');
    RETURN NULL;
END $$;

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION notify_outbox();

-- First reply of every command that appended, by its idempotency key (JSON text, as sent).
CREATE TABLE commands (
    command_id text PRIMARY KEY,
    reply      text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
