-- The alerts service: rules, what it knows of each customer, call windows, rule states, firings.

-- kernel: message_outbox

CREATE SEQUENCE rule_revisions;

CREATE TABLE rules (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    body jsonb NOT NULL,
    version int NOT NULL DEFAULT 1,
    -- every change takes a new revision: replicas reload their rules when the maximum moves
    revision bigint NOT NULL DEFAULT nextval('rule_revisions'),
    deleted boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    created_by jsonb,
    updated_by jsonb
);
CREATE UNIQUE INDEX rules_name_uq ON rules (lower(name)) WHERE NOT deleted;

-- what the evaluator knows of a customer, from CUSTOMER_EVENTS (card) and CALLS (charges)
CREATE TABLE customers (
    customer_id text PRIMARY KEY,
    name text NOT NULL DEFAULT '',
    tags text[] NOT NULL DEFAULT '{}',
    currency text NOT NULL DEFAULT 'USD',
    tax numeric NOT NULL DEFAULT 0,
    debit_limit numeric NOT NULL DEFAULT 0,
    deleted boolean NOT NULL DEFAULT false,
    payments numeric NOT NULL DEFAULT 0,
    refunds numeric NOT NULL DEFAULT 0,
    adjustments numeric NOT NULL DEFAULT 0,
    credit_notes numeric NOT NULL DEFAULT 0,
    charges numeric NOT NULL DEFAULT 0,
    spend_day date,
    day_spend numeric NOT NULL DEFAULT 0,
    -- pending payments by id: {payment_id: [kind, amount]} (completed later, or cancelled)
    pending jsonb NOT NULL DEFAULT '{}',
    -- open overdue invoices: {invoice_id: amount_due}
    overdue jsonb NOT NULL DEFAULT '{}',
    firings int NOT NULL DEFAULT 0  -- the version of its next AlertFired event
);

-- call figures per customer and minute (of the call's end), for windowed ASR/ACD/PDD/attempts
CREATE TABLE call_minutes (
    customer_id text NOT NULL,
    minute bigint NOT NULL,  -- minutes since the epoch
    attempts int NOT NULL,
    connected int NOT NULL,
    duration_s bigint NOT NULL,
    pdd_ms bigint NOT NULL,
    pdd_n int NOT NULL,
    PRIMARY KEY (customer_id, minute)
);

-- per rule and customer: armed (ready to fire) or fired, and when it last fired
CREATE TABLE rule_states (
    rule_id uuid NOT NULL,
    customer_id text NOT NULL,
    rule_version int NOT NULL,  -- a state of an older version of the rule counts as armed
    armed boolean NOT NULL,
    last_fired_at timestamptz,
    PRIMARY KEY (customer_id, rule_id)
);

CREATE TABLE firings (
    id uuid PRIMARY KEY,
    rule_id uuid NOT NULL,
    rule_name text NOT NULL,
    customer_id uuid NOT NULL,
    area text NOT NULL,
    operator text NOT NULL,
    value numeric NOT NULL,
    threshold numeric NOT NULL,
    level text NOT NULL,
    actions text[] NOT NULL,
    reason text NOT NULL,
    fired_at timestamptz NOT NULL DEFAULT now(),
    event_at timestamptz NOT NULL
);
CREATE INDEX firings_customer ON firings (customer_id, fired_at DESC);
CREATE INDEX firings_time ON firings (fired_at DESC);

-- actions still to take for a firing (status changes, messages): done by the action worker, once
CREATE TABLE pending_actions (
    firing_id uuid PRIMARY KEY,
    body jsonb NOT NULL,
    attempts int NOT NULL DEFAULT 0,
    next_at timestamptz NOT NULL DEFAULT now(),
    last_error text
);

-- how far each consumer (stream partition) is; written in the transaction of its batch
CREATE TABLE checkpoints (
    consumer text PRIMARY KEY,
    last_seq bigint NOT NULL
);

-- one row per customer partition: every batch of a partition bumps it, so a process whose memory
-- of the partition is older than the table (another replica wrote since) reloads
CREATE TABLE partition_generations (
    partition int PRIMARY KEY,
    generation bigint NOT NULL
);
