-- Projections of the event streams. Each projection's tables (its checkpoint table too) are
-- rebuilt side by side as <name>__next and switched over by rename in one transaction.

-- The audit log: one row per event of any event stream, by event id.
CREATE TABLE audit_log (
    event_id       uuid PRIMARY KEY,
    stream         text        NOT NULL,  -- the JetStream stream and sequence it came from
    seq            bigint      NOT NULL,
    customer_id    text,
    category       text        NOT NULL,
    stream_id      text        NOT NULL,
    version        integer     NOT NULL,
    type           text        NOT NULL,
    action         text        NOT NULL,
    occurred_at    timestamptz NOT NULL,
    actor_kind     text        NOT NULL,
    actor_id       text,
    actor_name     text        NOT NULL,
    ip             text,
    reason         text,
    correlation_id text,
    causation_id   text,
    changes        jsonb       NOT NULL,
    data           jsonb,
    event          jsonb       -- whole envelope of customer events: as-of folds these
);
CREATE INDEX audit_log_customer_idx ON audit_log (customer_id, occurred_at, event_id);
CREATE INDEX audit_log_time_idx ON audit_log (occurred_at, event_id);
CREATE INDEX audit_log_fold_idx ON audit_log (stream_id, version) WHERE event IS NOT NULL;
CREATE TABLE audit_checkpoints (stream text PRIMARY KEY, seq bigint NOT NULL);

-- Call summaries: every call record once (dedup by call id), hourly sums, calls in progress.
CREATE TABLE call_records (
    call_id           text PRIMARY KEY,
    customer_id       text        NOT NULL,
    started_at        timestamptz NOT NULL,
    answered_at       timestamptz,
    ended_at          timestamptz NOT NULL,
    disposition       text        NOT NULL,
    sip_code          integer,
    duration_s        integer     NOT NULL,
    billed_duration_s integer     NOT NULL,
    charge            numeric     NOT NULL,
    cost              numeric     NOT NULL,
    pdd_ms            integer,
    seq               bigint      NOT NULL
);
CREATE TABLE call_hours (
    customer_id       text        NOT NULL,
    hour              timestamptz NOT NULL,  -- UTC hour of started_at
    attempts          bigint      NOT NULL,
    connected         bigint      NOT NULL,
    duration_s        bigint      NOT NULL,
    billed_duration_s bigint      NOT NULL,
    charge            numeric     NOT NULL,
    cost              numeric     NOT NULL,
    pdd_ms_sum        bigint      NOT NULL,
    pdd_samples       bigint      NOT NULL,
    PRIMARY KEY (customer_id, hour)
);
CREATE TABLE live_calls (
    call_id     text PRIMARY KEY,
    customer_id text        NOT NULL,
    started_at  timestamptz NOT NULL
);
CREATE INDEX live_calls_customer_idx ON live_calls (customer_id, started_at);
CREATE TABLE calls_checkpoints (stream text PRIMARY KEY, seq bigint NOT NULL);

-- Payments from billing, once each by payment id.
CREATE TABLE payments (
    payment_id  text PRIMARY KEY,
    customer_id text        NOT NULL,
    amount      numeric     NOT NULL,
    currency    text        NOT NULL,
    received_at timestamptz NOT NULL,
    seq         bigint      NOT NULL
);
CREATE INDEX payments_customer_idx ON payments (customer_id);
CREATE TABLE payments_checkpoints (stream text PRIMARY KEY, seq bigint NOT NULL);

-- Progress of the last rebuild of each projection (the CLI writes it, the lag query reads it).
CREATE TABLE rebuilds (
    projection  text PRIMARY KEY,
    state       text        NOT NULL,  -- running, switched, failed
    started_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    finished_at timestamptz,
    done        bigint      NOT NULL DEFAULT 0,
    total       bigint      NOT NULL DEFAULT 0,
    error       text
);
