-- The fingerprint of the request that got each command's first reply (blake2b of its type and
-- payload, without its meta): a command id reused for a different request answers a conflict
-- instead of the first reply. Rows stored before this migration keep NULL and answer as before.
ALTER TABLE commands ADD COLUMN fingerprint text;
