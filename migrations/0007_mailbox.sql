-- Coded failures, notifications in order, and the pull mailbox.

-- Jobs of one chain run one at a time, in the order they were queued: the notifications about
-- one recipient reach its sender in the order its status changed. Only pending jobs are
-- indexed, so the check a claim makes stays small however many jobs have run.
ALTER TABLE jobs ADD COLUMN chain text;
CREATE INDEX jobs_chain_pending_idx ON jobs (chain, id)
    WHERE chain IS NOT NULL AND state IN ('queued', 'running');

-- A sender sees a coded failure_reason ("9001: ERROR=RecipientUnknown"); the cause behind it
-- (an endpoint's error, a peer's reply) is for operators only.
ALTER TABLE message_recipients ADD COLUMN failure_detail text;

-- The pull mailbox: a message for a local address with no inbound URL waits here until the
-- receiving vendor acknowledges it, or until it expires. mailbox_id is the vendor's handle and
-- the cursor of its listing.
CREATE SEQUENCE mailbox_ids;
ALTER TABLE message_recipients
    ADD COLUMN mailbox_id       bigint UNIQUE,
    ADD COLUMN mailbox_until    timestamptz,
    ADD COLUMN acknowledged_at  timestamptz;
CREATE INDEX message_recipients_mailbox_idx ON message_recipients (lower(recipient), mailbox_id)
    WHERE mailbox_id IS NOT NULL AND status = 'PROCESSED';
