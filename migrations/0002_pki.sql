-- The certificate authority, Direct certificates and CRLs; recurring outbox jobs.

-- Our CA certificates. Keys are sealed (AES-256-GCM under ca.key_encryption_key); a root
-- imported without its key has none, and then we publish no root CRL.
CREATE TABLE ca_authorities (
    id               bigserial PRIMARY KEY,
    role             text NOT NULL CHECK (role IN ('root', 'issuing')),
    subject          text NOT NULL,
    certificate_der  bytea NOT NULL,
    sealed_key       bytea,
    not_after        timestamptz NOT NULL,
    active           boolean NOT NULL DEFAULT true,
    crl_number       bigint NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX ca_authorities_one_active_role ON ca_authorities (role) WHERE active;

CREATE TABLE certificates (
    id                 bigserial PRIMARY KEY,
    organization_id    bigint NOT NULL REFERENCES organizations (id),
    binding            text NOT NULL CHECK (binding IN ('domain', 'address')),
    -- The domain (domain-bound) or the Direct address (address-bound) the certificate names.
    subject_name       text NOT NULL,
    category           text NOT NULL CHECK (category IN ('CoveredEntity', 'BusinessAssociate', 'HealthEntity', 'Patient')),
    key_use            text NOT NULL CHECK (key_use IN ('dual', 'signing', 'encryption')),
    validity_years     integer NOT NULL CHECK (validity_years BETWEEN 1 AND 3),
    auto_renew         boolean NOT NULL,
    status             text NOT NULL CHECK (status IN ('requested', 'issued', 'renewed', 'expired', 'revoked')),
    serial             text UNIQUE,
    issuer_id          bigint REFERENCES ca_authorities (id),
    certificate_der    bytea,
    sealed_key         bytea,
    not_before         timestamptz,
    not_after          timestamptz,
    revoked_at         timestamptz,
    revocation_reason  text,
    predecessor_id     bigint REFERENCES certificates (id),
    requested_at       timestamptz NOT NULL DEFAULT now(),
    issued_at          timestamptz,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (status = 'requested' OR (serial IS NOT NULL AND certificate_der IS NOT NULL AND sealed_key IS NOT NULL))
);
CREATE INDEX certificates_subject_idx ON certificates (lower(subject_name), status);
CREATE INDEX certificates_org_idx ON certificates (organization_id);
CREATE INDEX certificates_live_expiry_idx ON certificates (not_after) WHERE status IN ('issued', 'renewed');
CREATE INDEX certificates_revoked_idx ON certificates (issuer_id) WHERE status = 'revoked';
-- One successor per certificate, so two replicas cannot both renew it.
CREATE UNIQUE INDEX certificates_one_successor ON certificates (predecessor_id) WHERE predecessor_id IS NOT NULL;

CREATE TABLE crls (
    issuer_id    bigint NOT NULL REFERENCES ca_authorities (id),
    number       bigint NOT NULL,
    this_update  timestamptz NOT NULL,
    next_update  timestamptz NOT NULL,
    der          bytea NOT NULL,
    PRIMARY KEY (issuer_id, number)
);

-- A job with a singleton name exists at most once while queued or running: recurring work
-- (like CA maintenance) scheduled by every replica at start stays one job.
ALTER TABLE jobs ADD COLUMN singleton text;
CREATE UNIQUE INDEX jobs_singleton_live ON jobs (singleton)
    WHERE singleton IS NOT NULL AND state IN ('queued', 'running');
