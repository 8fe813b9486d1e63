-- A hash of the request that began an upload (mode, content type, body), computed by the
-- gateway: the same upload id (Idempotency-Key) with another file, after the first upload
-- finished, is refused with 409 instead of answering the first upload's result. NULL on
-- uploads begun before: those answer as they did.
ALTER TABLE bulk_uploads ADD COLUMN fingerprint text;
