-- Diagnostic: the gateway's own send statement (src/store/messaging.rs, send_message), issued
-- by pgbench, so that PostgreSQL's share of a send can be told from the gateway's. It checks
-- the client, the sender (grant, status, organization, setting) and which recipients are
-- hosted here, then writes the same rows as pg_ceiling_one_statement.sql.
-- Same variables and bench_payload row; the client's stored hash is read rather than passed.
WITH clock AS (SELECT lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0') AS ms,
                      gen_random_uuid()::text AS r),
v AS (SELECT (substr(clock.ms, 1, 8) || '-' || substr(clock.ms, 9, 4) || '-7' || substr(clock.r, 16, 3) || substr(clock.r, 19))::uuid AS id, gen_random_uuid()::text AS vendor_id FROM clock),
c AS (
    SELECT status = 'active' AND secret_hash = secret_hash AS ok
    FROM api_clients WHERE id = :client::uuid),
s AS (
    SELECT a.status, o.id AS organization_id, o.status AS organization_status,
           EXISTS (SELECT 1 FROM messaging_grants g
                   WHERE g.organization_id = o.id AND g.client_id = :client::uuid) AS granted,
           coalesce(a.settings -> 'timely_and_reliable_flag',
                    o.default_settings -> 'timely_and_reliable_flag') AS timely
    FROM direct_addresses a JOIN organizations o ON o.id = a.organization_id
    WHERE lower(a.domain) = lower('bench.direct.example.org') AND lower(a.username) = lower('sender')),
ok AS (
    SELECT s.organization_id FROM s, c
    WHERE c.ok AND s.granted AND s.status = 'active' AND s.organization_status = 'Activated'
      AND (false OR coalesce(jsonb_typeof(s.timely) = 'boolean' AND s.timely::boolean, false)) = false),
x AS (
    SELECT x.r, CASE WHEN EXISTS (
                SELECT 1 FROM direct_addresses a
                WHERE lower(a.domain) = lower(x.d) AND lower(a.username) = lower(x.u))
            THEN 'local' ELSE 'remote' END AS route
    FROM unnest(ARRAY['dr.remote@partner-hisp.example.net']::text[], ARRAY['dr.remote']::text[],
                ARRAY['partner-hisp.example.net']::text[]) AS x(r, u, d)),
m AS (
    INSERT INTO messages (id, direction, client_id, organization_id, from_address, smtp_message_id,
        size_bytes, vendor_message_id, request_hash, transaction_id, subject, xdm, final_delivery,
        metadata, mime, xdr_message_id, xdr_unique_id, xdr_source_id, xdr_patient_id, created_at, timeout_at)
    SELECT v.id, 'outbound', :client::uuid, ok.organization_id, b.from_address,
           replace(v.id::text, '-', '') || substr(b.smtp_message_id, strpos(b.smtp_message_id, '@')),
           b.size_bytes, v.vendor_id, b.request_hash, gen_random_uuid(), b.subject, b.xdm, b.final_delivery,
           b.metadata, b.mime, v.vendor_id, b.xdr_unique_id, b.xdr_source_id, b.xdr_patient_id,
           now(), now() + interval '60 minutes'
    FROM ok, bench_payload b, v
    WHERE b.kind = :kind
    ON CONFLICT (client_id, vendor_message_id) WHERE vendor_message_id IS NOT NULL DO NOTHING
    RETURNING id),
r AS (
    INSERT INTO message_recipients (message_id, recipient, status, route, updated_at)
    SELECT m.id, x.r, 'SMTPINIT', x.route, now() FROM m, x),
d AS (
    INSERT INTO jobs (kind, payload, max_attempts, run_at)
    SELECT 'messaging.deliver', jsonb_build_object('message_id', m.id, 'recipient', x.r), 8, now()
    FROM m, x WHERE x.route = 'local'
    RETURNING id),
t AS (
    INSERT INTO jobs (kind, payload, max_attempts, run_at)
    SELECT 'messaging.timeout', jsonb_build_object('message_id', m.id), 7, now() + interval '60 minutes' FROM m),
n AS (SELECT pg_notify('gateway_jobs', '') WHERE EXISTS (SELECT 1 FROM d))
SELECT (SELECT ok FROM c), EXISTS (SELECT 1 FROM m), (SELECT count(*) FROM n);
