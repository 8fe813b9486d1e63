-- Idempotency keys (meta.command_id): a request retried after a lost reply gets its first answer.
ALTER TABLE codes ADD COLUMN request_id text;  -- the command that asked for the code
ALTER TABLE codes ADD COLUMN confirm_id text;  -- the command that verified it
CREATE UNIQUE INDEX codes_request_id ON codes (contact_id, request_id) WHERE request_id IS NOT NULL;
