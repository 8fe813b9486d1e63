-- Fixed-window counters for rate limits shared by every gateway replica (keys are hashed).
CREATE TABLE rate_limits (
    key          text PRIMARY KEY,
    window_start timestamptz NOT NULL,
    hits         integer     NOT NULL
);
CREATE INDEX rate_limits_window ON rate_limits (window_start);
