-- REST messaging: which vendor may use which addresses, where their messages and delivery
-- notifications go, the outbound messages themselves and the notifications sent about them.

-- Ops grants a vendor client the addresses of an organization: it may send from them and
-- registers where their inbound messages go.
CREATE TABLE messaging_grants (
    client_id        uuid NOT NULL REFERENCES api_clients (id),
    organization_id  bigint NOT NULL REFERENCES organizations (id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, organization_id)
);
CREATE INDEX messaging_grants_org_idx ON messaging_grants (organization_id);

-- Per vendor: the Standard Webhooks signing secret of its delivery notifications (sealed under
-- the key-encryption key; we must be able to sign with it, so it cannot be a one-way hash).
CREATE TABLE messaging_vendors (
    client_id       uuid PRIMARY KEY REFERENCES api_clients (id),
    signing_secret  bytea NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Where one address's inbound messages are pushed and its senders' notifications are posted.
-- Credentials we present to the vendor's servers are sealed, never logged.
CREATE TABLE address_endpoints (
    address_id        bigint PRIMARY KEY REFERENCES direct_addresses (id),
    client_id         uuid NOT NULL REFERENCES api_clients (id),
    inbound_url       text,
    inbound_auth      bytea,
    inbound_shape     text NOT NULL DEFAULT 'flat' CHECK (inbound_shape IN ('flat', 'envelope')),
    inbound_xdm       text NOT NULL DEFAULT 'zip' CHECK (inbound_xdm IN ('zip', 'unpacked')),
    dsn_url           text,
    dsn_auth          bytea,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- OAuth2 client-credentials access tokens, by SHA-256: any replica can check them.
CREATE TABLE oauth_tokens (
    token_hash  text PRIMARY KEY,
    client_id   uuid NOT NULL REFERENCES api_clients (id),
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX oauth_tokens_expiry_idx ON oauth_tokens (expires_at);

-- What a vendor sent: its own messageId (unique per vendor), a hash of the request to tell a
-- replay from a reuse, the reply we gave, the request's metadata and the MIME we built. The
-- MIME is what the Direct transport signs and encrypts.
ALTER TABLE messages
    ADD COLUMN vendor_message_id  text,
    ADD COLUMN request_hash       bytea,
    ADD COLUMN transaction_id     uuid,
    ADD COLUMN subject            text,
    ADD COLUMN xdm                boolean NOT NULL DEFAULT false,
    ADD COLUMN final_delivery     boolean NOT NULL DEFAULT false,
    ADD COLUMN metadata           jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN mime               bytea,
    ADD COLUMN timeout_at         timestamptz;
CREATE UNIQUE INDEX messages_vendor_message_key ON messages (client_id, vendor_message_id)
    WHERE vendor_message_id IS NOT NULL;
CREATE INDEX messages_client_time_idx ON messages (client_id, created_at);

-- Where a recipient is delivered: 'local' (an address of ours, pushed to its endpoint) or
-- 'remote' (another HISP, the Direct transport's work).
ALTER TABLE message_recipients
    ADD COLUMN route             text NOT NULL DEFAULT 'remote' CHECK (route IN ('local', 'remote')),
    ADD COLUMN delivery_attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN delivered_at      timestamptz;

-- Every status notification about a recipient, applied or not: notifications that arrive after
-- a final status are recorded here and change nothing.
CREATE TABLE message_events (
    id          bigserial PRIMARY KEY,
    message_id  uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    recipient   text NOT NULL,
    status      text NOT NULL,
    applied     boolean NOT NULL,
    detail      text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX message_events_message_idx ON message_events (message_id);
