-- Provisioning through the Organization Registration service: offers and their money,
-- address settings, and the message tables the status reports read (messaging fills them).

-- What the organization bought: the offer caps its addresses; the service period prices
-- addresses added later. Settings are the organization's defaults for its addresses.
ALTER TABLE organizations
    ADD COLUMN default_settings  jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN address_cap       integer CHECK (address_cap > 0),
    ADD COLUMN service_start     date,
    ADD COLUMN service_expires   date;

-- The verified individual a Direct address belongs to.
ALTER TABLE direct_addresses
    ADD COLUMN idp_id bigint REFERENCES verified_individuals (idp_id);

-- An individual holds a role in an organization once.
CREATE UNIQUE INDEX organization_people_role_key
    ON organization_people (organization_id, role, idp_id) WHERE idp_id IS NOT NULL;

-- A reseller's prepaid debit account, in cents. Ops may put captures on hold (a dispute, a
-- bounced top-up): authorizations still succeed, captures fail until the hold is released.
CREATE TABLE reseller_accounts (
    reseller_id    uuid PRIMARY KEY REFERENCES api_clients (id),
    balance_cents  bigint NOT NULL DEFAULT 0 CHECK (balance_cents >= 0),
    capture_hold   boolean NOT NULL DEFAULT false,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- One order per paid provisioning call; its id is the PaymentConfirmation orderId.
CREATE TABLE orders (
    id               bigserial PRIMARY KEY,
    reseller_id      uuid NOT NULL REFERENCES api_clients (id),
    organization_id  bigint NOT NULL REFERENCES organizations (id),
    operation        text NOT NULL,
    amount_cents     bigint NOT NULL CHECK (amount_cents >= 0),
    products         jsonb NOT NULL,
    detail           text NOT NULL,
    ordered_at       timestamptz NOT NULL
);
CREATE INDEX orders_reseller_idx ON orders (reseller_id, ordered_at);

-- Every movement of a debit account. Append-only like the audit log.
CREATE TABLE ledger_entries (
    id                   bigserial PRIMARY KEY,
    reseller_id          uuid NOT NULL REFERENCES api_clients (id),
    kind                 text NOT NULL CHECK (kind IN ('credit', 'authorization', 'capture', 'hold', 'release')),
    amount_cents         bigint NOT NULL CHECK (amount_cents >= 0),
    balance_after_cents  bigint NOT NULL,
    order_id             bigint REFERENCES orders (id),
    memo                 text,
    actor                text NOT NULL,
    at                   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_entries_reseller_idx ON ledger_entries (reseller_id, id);
CREATE TRIGGER ledger_entries_append_only
    BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();

-- Messages and their per-recipient status. The messaging front doors write these; the status
-- reports of every front door read them through one query module.
CREATE TABLE messages (
    id               uuid PRIMARY KEY,
    direction        text NOT NULL CHECK (direction IN ('outbound', 'inbound')),
    client_id        uuid REFERENCES api_clients (id),
    -- The organization the sending address belongs to (outbound), or the receiving one.
    organization_id  bigint REFERENCES organizations (id),
    from_address     text NOT NULL,
    smtp_message_id  text NOT NULL,
    size_bytes       bigint NOT NULL CHECK (size_bytes >= 0),
    xdr_message_id   text,
    xdr_source_id    text,
    xdr_unique_id    text,
    xdr_patient_id   text,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX messages_org_time_idx ON messages (organization_id, created_at);

CREATE TABLE message_recipients (
    message_id      uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    recipient       text NOT NULL,
    status          text NOT NULL CHECK (status IN ('SMTPINIT', 'PROCESSED', 'DISPATCHED', 'DISPLAYED', 'FAILED', 'FAILED-TO')),
    -- For FAILED: whether we failed to send ('local') or the receiving side refused ('remote').
    failure_origin  text CHECK (failure_origin IN ('local', 'remote')),
    failure_reason  text,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, recipient)
);
