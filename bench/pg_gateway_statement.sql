-- Diagnostic: the gateway's own send statement (src/store/messaging.rs, send_messages) for one
-- message, issued by pgbench, so that PostgreSQL's share of a send can be told from the
-- gateway's. It checks the client, the sender (grant, status, organization, setting) and which
-- recipients are hosted here, then writes the same rows as pg_ceiling_one_statement.sql. The
-- gateway passes each column as an array (one element per message of the batch); here the one
-- message's values come from the bench_payload row instead (asmEnabled as the payload asked).
-- Same variables; the client's stored hash is read rather than passed. Run it with
-- plan_cache_mode = force_generic_plan, as the gateway's send connections do.
WITH clock AS (SELECT lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0') AS ms,
                      gen_random_uuid()::text AS r),
v AS (SELECT (substr(clock.ms, 1, 8) || '-' || substr(clock.ms, 9, 4) || '-7' || substr(clock.r, 16, 3) || substr(clock.r, 19))::uuid AS id, gen_random_uuid()::text AS vendor_id FROM clock),
i AS (
    SELECT 0 AS n, v.id, :client::uuid AS client_id,
           (SELECT secret_hash FROM api_clients WHERE id = :client::uuid) AS secret, b.from_address,
           replace(v.id::text, '-', '') || substr(b.smtp_message_id, strpos(b.smtp_message_id, '@')) AS smtp_message_id,
           b.size_bytes, v.vendor_id AS vendor_message_id, b.request_hash, gen_random_uuid() AS transaction_id,
           b.subject, b.xdm, b.final_delivery, b.metadata, b.mime, b.xdr_unique_id, b.xdr_source_id,
           b.xdr_patient_id, now() AS created_at, now() + interval '60 minutes' AS timeout_at,
           'sender' AS from_user, 'bench.direct.example.org' AS from_domain, b.final_delivery AS asm
    FROM bench_payload b, v WHERE b.kind = :kind),
c AS (
    SELECT k.client_id, k.secret,
           (SELECT k.secret IS NULL OR (a.status = 'active' AND a.secret_hash = k.secret)
            FROM api_clients a WHERE a.id = k.client_id) AS ok
    FROM (SELECT DISTINCT client_id, secret FROM i) AS k),
s AS (
    SELECT k.client_id, k.from_user, k.from_domain, a.status, o.id AS organization_id,
           o.status AS organization_status,
           EXISTS (SELECT 1 FROM messaging_grants g
                   WHERE g.organization_id = o.id AND g.client_id = k.client_id) AS granted,
           CASE WHEN jsonb_typeof(t.flag) = 'boolean' THEN t.flag::boolean ELSE false END AS timely
    FROM (SELECT DISTINCT client_id, from_user, from_domain FROM i) AS k
    JOIN direct_addresses a
      ON lower(a.domain) = lower(k.from_domain) AND lower(a.username) = lower(k.from_user)
    JOIN organizations o ON o.id = a.organization_id
    CROSS JOIN LATERAL (SELECT coalesce(a.settings -> 'timely_and_reliable_flag',
                                        o.default_settings -> 'timely_and_reliable_flag') AS flag) AS t),
ok AS (
    SELECT i.n, s.organization_id
    FROM i
    JOIN c ON c.client_id = i.client_id AND c.secret IS NOT DISTINCT FROM i.secret
    JOIN s ON s.client_id = i.client_id AND s.from_user = i.from_user AND s.from_domain = i.from_domain
    WHERE c.ok AND s.granted AND s.status = 'active' AND s.organization_status = 'Activated'
      AND (i.asm OR s.timely) = i.final_delivery),
x AS (
    SELECT x.n, x.r, CASE WHEN EXISTS (
                SELECT 1 FROM direct_addresses a
                WHERE lower(a.domain) = lower(x.d) AND lower(a.username) = lower(x.u))
            THEN 'local' ELSE 'remote' END AS route
    FROM unnest(ARRAY[0]::int4[], ARRAY['dr.remote@partner-hisp.example.net']::text[],
                ARRAY['dr.remote']::text[], ARRAY['partner-hisp.example.net']::text[]) AS x(n, r, u, d)),
m AS (
    INSERT INTO messages (id, direction, client_id, organization_id, from_address, smtp_message_id,
        size_bytes, vendor_message_id, request_hash, transaction_id, subject, xdm, final_delivery,
        metadata, mime, xdr_message_id, xdr_unique_id, xdr_source_id, xdr_patient_id, created_at, timeout_at)
    SELECT i.id, 'outbound', i.client_id, ok.organization_id, i.from_address, i.smtp_message_id,
           i.size_bytes, i.vendor_message_id, i.request_hash, i.transaction_id, i.subject, i.xdm,
           i.final_delivery, i.metadata, i.mime, i.vendor_message_id, i.xdr_unique_id,
           i.xdr_source_id, i.xdr_patient_id, i.created_at, i.timeout_at
    FROM i JOIN ok ON ok.n = i.n
    ORDER BY i.n
    ON CONFLICT (client_id, vendor_message_id) WHERE vendor_message_id IS NOT NULL DO NOTHING
    RETURNING id),
w AS (SELECT i.n, i.id, i.created_at, i.timeout_at FROM m JOIN i ON i.id = m.id),
r AS (
    INSERT INTO message_recipients (message_id, recipient, status, route, updated_at)
    SELECT w.id, x.r, 'SMTPINIT', x.route, w.created_at FROM w JOIN x ON x.n = w.n),
d AS (
    INSERT INTO jobs (kind, payload, max_attempts, run_at)
    SELECT 'messaging.deliver', jsonb_build_object('message_id', w.id, 'recipient', x.r), 8, now()
    FROM w JOIN x ON x.n = w.n WHERE x.route = 'local'
    RETURNING id),
t AS (
    INSERT INTO jobs (kind, payload, max_attempts, run_at)
    SELECT 'messaging.timeout', jsonb_build_object('message_id', w.id), 7, w.timeout_at FROM w),
wake AS (SELECT pg_notify('gateway_jobs', '') WHERE EXISTS (SELECT 1 FROM d))
SELECT i.n, c.ok, s.status, EXISTS (SELECT 1 FROM w WHERE w.n = i.n), (SELECT count(*) FROM wake)
FROM i
LEFT JOIN c ON c.client_id = i.client_id AND c.secret IS NOT DISTINCT FROM i.secret
LEFT JOIN s ON s.client_id = i.client_id AND s.from_user = i.from_user AND s.from_domain = i.from_domain;
