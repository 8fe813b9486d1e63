-- Verification codes: only an HMAC of each code is kept, never the code.
CREATE TABLE codes (
    id          uuid PRIMARY KEY,
    customer_id uuid        NOT NULL,
    contact_id  uuid        NOT NULL,
    channel     text        NOT NULL CHECK (channel IN ('email', 'mobile', 'cli')),
    target      text        NOT NULL,  -- the e-mail, mobile or CLI being verified
    code_hash   text        NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    attempts    integer     NOT NULL DEFAULT 0,  -- wrong tries so far
    events      integer     NOT NULL DEFAULT 1,  -- events published about it (their version)
    status      text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'verified', 'superseded'))
);
CREATE INDEX codes_contact ON codes (contact_id, channel, created_at DESC);

-- Messages to publish (NOTIFY work items, VERIFICATION_EVENTS), see shared.message_outbox.
CREATE TABLE message_outbox (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject    text        NOT NULL,
    msg_id     text        NOT NULL,
    headers    jsonb       NOT NULL DEFAULT '{}',
    payload    bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION notify_message_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('message_outbox', '');
    RETURN NULL;
END $$;

CREATE TRIGGER message_outbox_notify AFTER INSERT ON message_outbox
    FOR EACH STATEMENT EXECUTE FUNCTION notify_message_outbox();
