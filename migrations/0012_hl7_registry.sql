-- The HL7 v3 organization registry (PRPM organization topic): registry clients, every version
-- of each registry organization, their identifiers, subscribers and query continuations.

ALTER TABLE api_clients DROP CONSTRAINT api_clients_kind_check;
ALTER TABLE api_clients ADD CONSTRAINT api_clients_kind_check
    CHECK (kind IN ('reseller', 'vendor', 'trusted-agent', 'officer', 'ops', 'registry'));

-- A registry organization is a verified organization (resellers provision it by certified_id);
-- an HL7 add need not carry a tax id or a street address, so those become optional here, and
-- provisioning reads them as empty.
ALTER TABLE verified_organizations
    ALTER COLUMN tax_id DROP NOT NULL,
    ALTER COLUMN state DROP NOT NULL,
    ALTER COLUMN address_line1 DROP NOT NULL,
    ALTER COLUMN city DROP NOT NULL,
    ALTER COLUMN zip DROP NOT NULL;

-- Registry organizations get certified ids far above imported ones.
CREATE SEQUENCE registry_certified_id_seq START 1000000001;

-- The current version of each registry organization: the columns queries filter and sort on,
-- and the whole record as the registry knows it.
CREATE TABLE registry_organizations (
    certified_id  bigint PRIMARY KEY REFERENCES verified_organizations (certified_id),
    version       integer NOT NULL CHECK (version > 0),
    status        text NOT NULL CHECK (status IN ('active', 'suspended', 'nullified', 'new')),
    name          text NOT NULL,
    type_code     text,
    city          text,
    state         text,
    postal_code   text,
    street        text,
    record        jsonb NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX registry_organizations_name_idx ON registry_organizations (lower(name) text_pattern_ops);
CREATE INDEX registry_organizations_status_idx ON registry_organizations (status, type_code);

-- Every version, for history queries: written in the same transaction as the change.
CREATE TABLE registry_versions (
    certified_id  bigint NOT NULL REFERENCES registry_organizations (certified_id),
    version       integer NOT NULL,
    status        text NOT NULL,
    change        text NOT NULL,
    record        jsonb NOT NULL,
    actor         text NOT NULL,
    at            timestamptz NOT NULL,
    PRIMARY KEY (certified_id, version)
);
CREATE INDEX registry_versions_at_idx ON registry_versions (at);

-- The identifiers senders gave (NPI, tax id, a licence number...): one organization each.
CREATE TABLE registry_identifiers (
    root          text NOT NULL,
    extension     text NOT NULL,
    certified_id  bigint NOT NULL REFERENCES registry_organizations (certified_id),
    PRIMARY KEY (root, extension)
);
CREATE INDEX registry_identifiers_org_idx ON registry_identifiers (certified_id);

-- Systems told of every change (informer role). Credentials sealed like webhook auth.
CREATE TABLE registry_subscribers (
    id          uuid PRIMARY KEY,
    url         text NOT NULL,
    auth        bytea,
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'removed')),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Where a paged candidates query stands, per client and query id (any replica continues it).
CREATE TABLE registry_query_cursors (
    client_id   uuid NOT NULL REFERENCES api_clients (id),
    query_id    text NOT NULL,
    delivered   integer NOT NULL,
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (client_id, query_id)
);

-- Name searches with "contains" semantics use a trigram index where pg_trgm can be had (a
-- contrib extension, trusted since PostgreSQL 13); without it they scan, and still answer.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS pg_trgm;
            CREATE INDEX registry_organizations_name_trgm_idx
                ON registry_organizations USING gin (lower(name) gin_trgm_ops);
        EXCEPTION WHEN insufficient_privilege OR feature_not_supported THEN
            RAISE NOTICE 'pg_trgm unavailable: contains-searches of names will scan';
        END;
    END IF;
END
$$;
