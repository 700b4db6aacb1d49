-- Trusted-Agent certificate applications (DataMotion style): Trusted Agents belong to one
-- organization; they apply for patient, provider-address and organizational certificates;
-- officers approve or reject; the e-mails that tell the applicant go through the outbox.

-- The organization a trusted-agent client acts for (one each).
CREATE TABLE trusted_agents (
    client_id        uuid PRIMARY KEY REFERENCES api_clients (id),
    organization_id  bigint NOT NULL REFERENCES organizations (id),
    linked_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX trusted_agents_org_idx ON trusted_agents (organization_id);

CREATE TABLE certificate_applications (
    id                     uuid PRIMARY KEY,
    kind                   text NOT NULL CHECK (kind IN ('patient', 'address', 'organization')),
    trusted_agent_id       uuid NOT NULL REFERENCES api_clients (id),
    organization_id        bigint NOT NULL REFERENCES organizations (id),
    trusted_agent_name     text NOT NULL,
    organization_name      text NOT NULL,
    hipaa_type             smallint NOT NULL CHECK (hipaa_type BETWEEN 1 AND 4),
    first_name             text,
    last_name              text,
    city                   text NOT NULL,
    state                  text NOT NULL,
    country                text NOT NULL,
    validity_years         integer NOT NULL CHECK (validity_years BETWEEN 1 AND 3),
    certificate_name       text NOT NULL,
    -- The Direct address to create (patient, address); the domain's (organization) is implied.
    address                text,
    -- argon2id of the optional address password (address applications).
    address_password_hash  text,
    auto_renew             boolean NOT NULL,
    identity_attestation   text NOT NULL,
    notification_email     text NOT NULL,
    notes                  text,
    status                 text NOT NULL CHECK (status IN ('Submitted', 'Approved', 'Rejected')),
    submitted_at           timestamptz NOT NULL,
    reviewed_at            timestamptz,
    reviewed_by            text,
    review_reason          text,
    -- The application's current certificate: the first one, then each renewal once issued.
    certificate_id         bigint REFERENCES certificates (id),
    address_id             bigint REFERENCES direct_addresses (id),
    certificate_issued_at  timestamptz,
    provisioned_at         timestamptz,
    CHECK ((kind = 'organization') = (address IS NULL))
);
-- One open application per address: two TAs applying at once get one 201 and one 409.
CREATE UNIQUE INDEX certificate_applications_open_address
    ON certificate_applications (lower(address)) WHERE address IS NOT NULL AND status <> 'Rejected';
CREATE INDEX certificate_applications_status_idx ON certificate_applications (status, submitted_at);
CREATE INDEX certificate_applications_org_idx ON certificate_applications (organization_id);
CREATE INDEX certificate_applications_certificate_idx ON certificate_applications (certificate_id);

-- Each notification e-mail (application, step) is queued once: this row is its idempotency key,
-- and sent_at says it went (a retried job does not send it again).
CREATE TABLE certificate_application_notifications (
    application_id  uuid NOT NULL REFERENCES certificate_applications (id),
    step            text NOT NULL CHECK (step IN ('submitted', 'approved', 'rejected', 'provisioned')),
    queued_at       timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    PRIMARY KEY (application_id, step)
);
