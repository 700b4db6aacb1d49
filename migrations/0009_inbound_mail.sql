-- Mail other HISPs handed to our SMTP listener, kept byte for byte as received (with our
-- Received: header on top). A row exists only for a message we answered 250 for: it is
-- written, with its `direct.receive` outbox job, in the transaction that precedes the reply.
-- Processing (decrypt, verify, deliver) moves it from 'received' to 'accepted' or 'rejected'.
CREATE TABLE inbound_mail (
    id            uuid PRIMARY KEY,
    received_at   timestamptz NOT NULL DEFAULT now(),
    peer          inet NOT NULL,
    -- What the client named itself in EHLO/HELO (unverified, sanitized).
    helo          text NOT NULL,
    tls           boolean NOT NULL,
    -- The envelope sender; '' for the null sender of MDNs and DSNs.
    mail_from     text NOT NULL,
    rcpt_to       text[] NOT NULL CHECK (cardinality(rcpt_to) > 0),
    raw           bytea NOT NULL,
    size          bigint NOT NULL CHECK (size >= 0),
    state         text NOT NULL DEFAULT 'received'
                  CHECK (state IN ('received', 'accepted', 'rejected')),
    reason        text,
    processed_at  timestamptz
);
CREATE INDEX inbound_mail_received_at_idx ON inbound_mail (received_at);
CREATE INDEX inbound_mail_unprocessed_idx ON inbound_mail (received_at) WHERE state = 'received';
