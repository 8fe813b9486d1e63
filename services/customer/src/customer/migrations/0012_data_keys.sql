-- Data keys of personal data (docs/privacy.md, ADR 13): one per subject, `customer:<id>` for a
-- card's personal fields and `contact:<id>` for a contact's. The key is sealed with
-- PATCHBAY_SECRET_KEY. Erasing destroys it: `sealed` becomes NULL and the row stays as the
-- tombstone, so no key can ever be made for that subject again (INSERT ... ON CONFLICT DO NOTHING).
CREATE TABLE data_keys (
    subject    text PRIMARY KEY,
    key_id     text        NOT NULL UNIQUE,
    sealed     text,
    created_at timestamptz NOT NULL DEFAULT now(),
    erased_at  timestamptz,
    CHECK ((sealed IS NULL) = (erased_at IS NOT NULL))
);
