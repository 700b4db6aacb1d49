-- Credentialing intake (Verifiable-style webhooks): the sources that may post, the events
-- they posted (redacted before storing), which of our verified individuals each provider is,
-- the latest fact per license / scan / provider status, and each individual's standing.

-- The NPI of a verified individual (10 digits, check digit validated on import).
ALTER TABLE verified_individuals ADD COLUMN npi char(10);
CREATE INDEX verified_individuals_npi_idx ON verified_individuals (npi) WHERE npi IS NOT NULL;

-- A credentialing service registered by ops: its webhook id (sent as X-WebhookId) and the
-- argon2id hash of its secret (X-Secret), and the event types it may send.
CREATE TABLE credentialing_sources (
    id           uuid PRIMARY KEY,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    webhook_id   uuid NOT NULL UNIQUE,
    secret_hash  text NOT NULL,
    event_types  text[] NOT NULL,
    status       text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- One row per delivered event; a retry carries the same X-TraceId and finds its row.
-- `payload` is the body after redaction: no full SSN, no date of birth, no screenshot.
CREATE TABLE credentialing_events (
    id            uuid PRIMARY KEY,
    source_id     uuid NOT NULL REFERENCES credentialing_sources (id),
    trace_id      text NOT NULL CHECK (length(trace_id) BETWEEN 1 AND 200),
    event_type    text NOT NULL,
    provider_id   uuid,
    facility_id   uuid,
    -- When the fact happened by the event's own timestamps (received_at when it has none).
    occurred_at   timestamptz NOT NULL,
    payload       jsonb NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    processed_at  timestamptz,
    UNIQUE (source_id, trace_id)
);
CREATE INDEX credentialing_events_provider_idx ON credentialing_events (provider_id, occurred_at);

-- A provider of the credentialing service and the verified individual it is (NULL: waiting
-- for ops to link it). Only the keys used to match are kept, the SSN's last four as the
-- identity store's keyed hash.
CREATE TABLE credentialing_providers (
    provider_id     uuid PRIMARY KEY,
    idp_id          bigint REFERENCES verified_individuals (idp_id),
    linked_by       text CHECK (linked_by IN ('npi', 'identity', 'ops')),
    npi             char(10),
    first_name      text,
    last_name       text,
    ssn_last4_hash  text,
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    linked_at       timestamptz
);
CREATE INDEX credentialing_providers_idp_idx ON credentialing_providers (idp_id);

-- A facility of the credentialing service and the verified organization it is.
CREATE TABLE credentialing_facilities (
    facility_id    uuid PRIMARY KEY,
    certified_id   bigint REFERENCES verified_organizations (certified_id),
    linked_by      text CHECK (linked_by IN ('npi', 'tax_id', 'ops')),
    first_seen_at  timestamptz NOT NULL DEFAULT now()
);

-- The latest fact of each kind about a provider (one license, one dataset's scan, the
-- provider's own status). A fact is replaced only by one that happened later.
CREATE TABLE credentialing_facts (
    provider_id  uuid NOT NULL,
    fact_key     text NOT NULL,
    effect       text NOT NULL CHECK (effect IN ('good', 'warning', 'restricted')),
    reason       text NOT NULL,
    occurred_at  timestamptz NOT NULL,
    -- Orders facts of the same moment: the one received later wins.
    received_at  timestamptz NOT NULL,
    event_id     uuid NOT NULL REFERENCES credentialing_events (id),
    PRIMARY KEY (provider_id, fact_key)
);

-- Each linked individual's standing; the row is also the lock that orders its recomputations.
CREATE TABLE credentialing_standings (
    idp_id      bigint PRIMARY KEY REFERENCES verified_individuals (idp_id),
    standing    text NOT NULL CHECK (standing IN ('good', 'warning', 'restricted')),
    reason      text NOT NULL,
    event_id    uuid REFERENCES credentialing_events (id),
    changed_at  timestamptz NOT NULL DEFAULT now()
);

-- Every change of standing with the event that caused it. Append-only.
CREATE TABLE credentialing_standing_changes (
    id          bigserial PRIMARY KEY,
    idp_id      bigint NOT NULL REFERENCES verified_individuals (idp_id),
    old         text NOT NULL,
    new         text NOT NULL,
    reason      text NOT NULL,
    event_id    uuid REFERENCES credentialing_events (id),
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX credentialing_standing_changes_idp_idx ON credentialing_standing_changes (idp_id, id);
CREATE TRIGGER credentialing_standing_changes_append_only
    BEFORE UPDATE OR DELETE ON credentialing_standing_changes
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();

-- Addresses suspended because their holder became restricted: only these are restored.
CREATE TABLE credentialing_suspensions (
    address_id    bigint PRIMARY KEY REFERENCES direct_addresses (id),
    idp_id        bigint NOT NULL REFERENCES verified_individuals (idp_id),
    reason        text NOT NULL,
    event_id      uuid REFERENCES credentialing_events (id),
    suspended_at  timestamptz NOT NULL DEFAULT now()
);
