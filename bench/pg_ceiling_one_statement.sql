-- The same rows as pg_ceiling.sql (one message, one recipient, one timeout job), written in
-- one statement whose data-modifying CTEs commit together, with no BEGIN/COMMIT round trips,
-- as the gateway writes a send that arrives alone. Same variables, same bench_payload row; run with -M prepared.
WITH clock AS (SELECT lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0') AS ms,
                      gen_random_uuid()::text AS r),
v AS (SELECT (substr(clock.ms, 1, 8) || '-' || substr(clock.ms, 9, 4) || '-7' || substr(clock.r, 16, 3) || substr(clock.r, 19))::uuid AS id, gen_random_uuid()::text AS vendor_id FROM clock),
m AS (
    INSERT INTO messages (id, direction, client_id, organization_id, from_address, smtp_message_id,
        size_bytes, vendor_message_id, request_hash, transaction_id, subject, xdm, final_delivery,
        metadata, mime, xdr_message_id, xdr_unique_id, xdr_source_id, xdr_patient_id, created_at, timeout_at)
    SELECT v.id, 'outbound', :client::uuid, :org::bigint, p.from_address,
           replace(v.id::text, '-', '') || substr(p.smtp_message_id, strpos(p.smtp_message_id, '@')),
           p.size_bytes, v.vendor_id, p.request_hash, gen_random_uuid(), p.subject, p.xdm, p.final_delivery,
           p.metadata, p.mime, v.vendor_id, p.xdr_unique_id, p.xdr_source_id, p.xdr_patient_id,
           now(), now() + interval '60 minutes'
    FROM bench_payload p, v
    WHERE p.kind = :kind
    ON CONFLICT (client_id, vendor_message_id) WHERE vendor_message_id IS NOT NULL DO NOTHING
    RETURNING id),
r AS (
    INSERT INTO message_recipients (message_id, recipient, status, route, updated_at)
    SELECT m.id, x.r, 'SMTPINIT', x.t, now()
    FROM m, unnest(ARRAY['dr.remote@partner-hisp.example.net']::text[], ARRAY['remote']::text[]) AS x(r, t)),
t AS (
    INSERT INTO jobs (kind, payload, max_attempts, run_at)
    SELECT 'messaging.timeout', jsonb_build_object('message_id', m.id), 7, now() + interval '60 minutes'
    FROM m)
SELECT count(*) FROM m;
