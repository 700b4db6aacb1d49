-- Trust: which anchors each hosted domain trusts, certificates operators configured for peers
-- without DNS CERT, trust bundles fetched from a URL, and the CRLs we fetched.

-- A bundle: a PKCS#7 file of anchors at a URL, fetched again on a schedule. A failed fetch
-- keeps the anchors it had and shows its error here.
CREATE TABLE trust_bundles (
    id            bigserial PRIMARY KEY,
    domain        text NOT NULL,
    url           text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    refreshed_at  timestamptz,
    last_error    text,
    last_error_at timestamptz,
    next_due      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (domain, url)
);

-- An anchor of a domain, uploaded by an operator or taken from a bundle (and replaced with it).
-- An uploaded anchor is there once per domain, a bundle's once per bundle.
CREATE TABLE trust_anchors (
    id          bigserial PRIMARY KEY,
    domain      text NOT NULL,
    der         bytea NOT NULL,
    fingerprint text NOT NULL,
    subject     text NOT NULL,
    not_after   timestamptz NOT NULL,
    source      text NOT NULL CHECK (source IN ('upload', 'bundle')),
    bundle_id   bigint REFERENCES trust_bundles (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((source = 'bundle') = (bundle_id IS NOT NULL))
);
CREATE UNIQUE INDEX trust_anchors_once_idx
    ON trust_anchors (domain, fingerprint, COALESCE(bundle_id, 0));

-- A peer's certificate for a whole domain (address NULL) or one address.
CREATE TABLE peer_certificates (
    id          bigserial PRIMARY KEY,
    domain      text NOT NULL,
    address     text,
    der         bytea NOT NULL,
    fingerprint text NOT NULL,
    subject     text NOT NULL,
    not_after   timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX peer_certificates_once_idx
    ON peer_certificates (domain, COALESCE(address, ''), fingerprint);

-- CRLs fetched from distribution points, used until their nextUpdate.
CREATE TABLE crl_cache (
    url         text PRIMARY KEY,
    der         bytea NOT NULL,
    next_update timestamptz NOT NULL,
    fetched_at  timestamptz NOT NULL DEFAULT now()
);
