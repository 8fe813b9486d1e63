-- API tokens may expire; console sign-ins become session tokens of their own (revoked at logout,
-- ended with their parent token); portal sessions can be revoked before they expire (issue 14).
ALTER TABLE gateway.tokens
    ADD COLUMN expires_at timestamptz,
    ADD COLUMN parent_id  uuid REFERENCES gateway.tokens (id);
CREATE INDEX tokens_parent ON gateway.tokens (parent_id) WHERE parent_id IS NOT NULL;

CREATE TABLE gateway.revoked_portal_sessions (
    jti        text        PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
