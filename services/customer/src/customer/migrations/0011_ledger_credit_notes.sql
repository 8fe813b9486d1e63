-- Credit notes on the ledger (product.md 11 and 13): reporting issues them (CreditNoteIssued on
-- BILLING_EVENTS); each counts once by its id, and the customer's sum rides on ledger_charges
-- (same seq, same LEDGER_CHANGED message to the dial views of every replica).
CREATE TABLE ledger_credit_notes (
    id              uuid PRIMARY KEY,
    customer_id     text        NOT NULL,
    invoice_id      uuid        NOT NULL,
    document_number text        NOT NULL,
    amount          numeric     NOT NULL,
    currency        text        NOT NULL,
    issued_at       timestamptz NOT NULL
);
CREATE INDEX ledger_credit_notes_customer ON ledger_credit_notes (customer_id, issued_at);
ALTER TABLE ledger_charges ADD COLUMN credit_notes numeric NOT NULL DEFAULT 0,
    ALTER COLUMN day DROP NOT NULL;
