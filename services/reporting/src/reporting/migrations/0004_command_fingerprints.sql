-- The fingerprint of the request that got each stored reply (shared.idempotency): the same
-- command id (Idempotency-Key) sent with another invoice request answers a conflict. NULL on
-- rows stored before: those are answered as they are.
ALTER TABLE commands ADD COLUMN fingerprint text;
