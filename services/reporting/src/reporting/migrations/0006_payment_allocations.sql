-- Completed payments allocated to open invoices, oldest first (product.md 13). The payments come
-- from the customer service's ledger events (PaymentRecorded, PaymentStatusChanged); each is kept
-- once by its id with what is not yet allocated (`unallocated`), which later invoices take.
CREATE TABLE invoice_payments (
    payment_id  uuid PRIMARY KEY,
    customer_id text        NOT NULL,
    currency    text        NOT NULL,
    amount      numeric     NOT NULL,
    unallocated numeric     NOT NULL,
    status      text        NOT NULL,
    received_at timestamptz NOT NULL
);
CREATE INDEX invoice_payments_open_idx ON invoice_payments (customer_id, received_at)
    WHERE status = 'completed' AND unallocated > 0;
CREATE TABLE payment_allocations (
    payment_id   uuid        NOT NULL,
    invoice_id   uuid        NOT NULL REFERENCES invoices (id),
    amount       numeric     NOT NULL CHECK (amount > 0),
    allocated_at timestamptz NOT NULL,
    PRIMARY KEY (payment_id, invoice_id)
);
CREATE INDEX payment_allocations_invoice_idx ON payment_allocations (invoice_id);
