-- Scheduled invoices (card field invoice_schedule: weekly|monthly): each customer's closed period is
-- tried once by the billing clock; the row says what came of it (issued, nothing to invoice, ...).
CREATE TABLE invoice_schedule_runs (
    customer_id  text        NOT NULL,
    period_start date        NOT NULL,
    schedule     text        NOT NULL,
    outcome      text        NOT NULL,
    invoice_id   uuid,
    ran_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, schedule, period_start)
);
