-- The PostgreSQL ceiling of POST /MessagingAPI/dirmsg/send_ccda: one pgbench transaction
-- writes what one accepted send commits for a recipient on another HISP (the common case):
-- one `messages` row with the same columns (MIME bytea included), one `message_recipients`
-- row (SMTPINIT, route remote) and one `messaging.timeout` job due at now + messaging.timeout.
-- No `messaging.deliver` job: that is queued only for recipients hosted here. No pg_notify
-- either: the gateway wakes workers only for jobs due now, and the timeout is due in an hour.
-- This is the plain way to write the rows, a statement each in one transaction;
-- pg_ceiling_one_statement.sql writes the same rows with one statement.
--
-- The row contents (MIME, metadata, request hash, ...) come from `bench_payload`, which
-- bench/send_ccda.rs fills from a message the gateway itself accepted, so the bytea has the
-- real size and compresses like the real one; pgbench does not ship it over the socket.
--
-- The message id is a UUIDv7 (milliseconds since 1970, then random bits), as the gateway's is.
--
-- Variables (pgbench -D): client (the vendor's uuid), org (its organization id), kind (the
-- bench_payload row). Run with -M prepared (what sqlx does): the variables become parameters.
BEGIN;
WITH clock AS (SELECT lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0') AS ms,
                      gen_random_uuid()::text AS r),
v AS (SELECT (substr(clock.ms, 1, 8) || '-' || substr(clock.ms, 9, 4) || '-7' || substr(clock.r, 16, 3) || substr(clock.r, 19))::uuid AS id, gen_random_uuid()::text AS vendor_id FROM clock)
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
RETURNING id AS mid \gset
INSERT INTO message_recipients (message_id, recipient, status, route, updated_at)
SELECT :mid::uuid, r, 'SMTPINIT', t, now()
FROM unnest(ARRAY['dr.remote@partner-hisp.example.net']::text[], ARRAY['remote']::text[]) AS x(r, t);
INSERT INTO jobs (kind, payload, max_attempts, run_at)
VALUES ('messaging.timeout', jsonb_build_object('message_id', :mid::uuid), 7, now() + interval '60 minutes')
RETURNING id;
END;
