-- Foundation schema: API clients, verified identities, organizations and their people,
-- Direct addresses, SOAP sessions, the jobs outbox and the audit log.
-- Forward-only: later changes come as new migrations.

CREATE TABLE api_clients (
    id           uuid PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('reseller', 'vendor', 'trusted-agent', 'officer', 'ops')),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    secret_hash  text NOT NULL,
    status       text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Organizations verified by an identity provider; provisioning refers to them by certified_id.
CREATE TABLE verified_organizations (
    certified_id         bigint PRIMARY KEY CHECK (certified_id > 0),
    name                 text NOT NULL,
    tax_id               text NOT NULL,
    state                char(2) NOT NULL,
    npi                  char(10),
    address_line1        text NOT NULL,
    address_line2        text,
    city                 text NOT NULL,
    zip                  text NOT NULL,
    healthcare_provider  boolean NOT NULL,
    verified_at          timestamptz NOT NULL,
    imported_at          timestamptz NOT NULL DEFAULT now()
);

-- Individuals verified by an identity provider (idp_id). The SSN last four digits are kept only
-- as a keyed hash (HMAC-SHA256 under security.identity_hash_key), enough to match, never to read.
CREATE TABLE verified_individuals (
    idp_id           bigint PRIMARY KEY CHECK (idp_id > 0),
    first_name       text NOT NULL,
    last_name        text NOT NULL,
    date_of_birth    date NOT NULL,
    ssn_last4_hash   text NOT NULL,
    verified_at      timestamptz NOT NULL,
    imported_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE organizations (
    id                    bigserial PRIMARY KEY,
    domain                text NOT NULL,
    name                  text NOT NULL,
    status                text NOT NULL,
    certificate_category  text,
    offer_type            text,
    department            text,
    reseller_id           uuid NOT NULL REFERENCES api_clients (id),
    certified_id          bigint REFERENCES verified_organizations (certified_id),
    other_info            jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX organizations_domain_key ON organizations (lower(domain));
CREATE INDEX organizations_reseller_idx ON organizations (reseller_id);

-- People acting for an organization: its authorized users and administrators.
CREATE TABLE organization_people (
    id               bigserial PRIMARY KEY,
    organization_id  bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    role             text NOT NULL CHECK (role IN ('authorized_user', 'administrator')),
    idp_id           bigint REFERENCES verified_individuals (idp_id),
    first_name       text NOT NULL,
    last_name        text NOT NULL,
    email            text,
    phone            text,
    title            text,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX organization_people_org_idx ON organization_people (organization_id);

CREATE TABLE direct_addresses (
    id               bigserial PRIMARY KEY,
    organization_id  bigint NOT NULL REFERENCES organizations (id),
    username         text NOT NULL,
    domain           text NOT NULL,
    user_type        text NOT NULL,
    first_name       text,
    last_name        text,
    endpoint_type    text,
    endpoint_url     text,
    endpoint_info    jsonb NOT NULL DEFAULT '{}'::jsonb,
    password_hash    text,
    settings         jsonb NOT NULL DEFAULT '{}'::jsonb,
    status           text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX direct_addresses_address_key ON direct_addresses (lower(domain), lower(username));
CREATE INDEX direct_addresses_org_idx ON direct_addresses (organization_id);

-- SOAP sessions live here, not in memory, so any replica can serve the next call.
CREATE TABLE soap_sessions (
    token_hash    text PRIMARY KEY,
    client_id     uuid NOT NULL REFERENCES api_clients (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);
CREATE INDEX soap_sessions_expiry_idx ON soap_sessions (expires_at);

-- The outbox: every durable side effect is a row here, written in the same transaction as the
-- change that caused it.
CREATE TABLE jobs (
    id            bigserial PRIMARY KEY,
    kind          text NOT NULL,
    payload       jsonb NOT NULL DEFAULT '{}'::jsonb,
    state         text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done', 'dead')),
    attempts      integer NOT NULL DEFAULT 0,
    max_attempts  integer NOT NULL CHECK (max_attempts > 0),
    run_at        timestamptz NOT NULL DEFAULT now(),
    locked_by     text,
    locked_until  timestamptz,
    last_error    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);
-- Claims scan only what can run: queued jobs by due time, and running ones by lease expiry.
CREATE INDEX jobs_due_idx ON jobs (run_at, id) WHERE state = 'queued';
CREATE INDEX jobs_lease_idx ON jobs (locked_until) WHERE state = 'running';
CREATE INDEX jobs_state_idx ON jobs (state);

-- Who did what to which object, and under which request. Never PHI values.
CREATE TABLE audit_log (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor        text NOT NULL,
    action       text NOT NULL,
    object_type  text NOT NULL,
    object_id    text NOT NULL,
    request_id   text
);
CREATE INDEX audit_log_object_idx ON audit_log (object_type, object_id);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
