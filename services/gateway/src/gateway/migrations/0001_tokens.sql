-- Operator API tokens: only the sha256 of each token is kept.
CREATE TABLE gateway.tokens (
    id          uuid        PRIMARY KEY,
    name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    role        text        NOT NULL CHECK (role IN ('admin', 'operator', 'viewer', 'billing')),
    token_hash  text        NOT NULL CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- names (case-insensitively) and secrets are unique among the tokens that still work
CREATE UNIQUE INDEX tokens_active_name ON gateway.tokens (lower(name)) WHERE revoked_at IS NULL;
CREATE UNIQUE INDEX tokens_active_hash ON gateway.tokens (token_hash) WHERE revoked_at IS NULL;
