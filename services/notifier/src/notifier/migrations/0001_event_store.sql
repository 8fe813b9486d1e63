-- The notifier's own events (delivery outcomes) and their outbox, in the shape shared.eventstore expects.
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

-- First reply of every send command, by its idempotency key.
CREATE TABLE commands (
    command_id text PRIMARY KEY,
    reply      text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
