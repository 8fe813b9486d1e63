-- Contacts' logins: the read model behind unique e-mails (written in the append's statement).
CREATE TABLE contacts (
    id          uuid PRIMARY KEY,
    customer_id uuid    NOT NULL,
    email       text    NOT NULL,
    removed     boolean NOT NULL DEFAULT false
);
-- The portal login is unique across all customers, case-insensitively, among live contacts.
CREATE UNIQUE INDEX contacts_email_uq ON contacts (lower(email)) WHERE NOT removed;
CREATE INDEX contacts_customer ON contacts (customer_id);

-- argon2id hashes, outside the event log (never in an event, a reply or a log line).
CREATE TABLE contact_passwords (
    contact_id uuid PRIMARY KEY,
    hash       text        NOT NULL,
    set_at     timestamptz NOT NULL
);

-- Messages that are not events (NOTIFY work items), published by shared.message_outbox.
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
