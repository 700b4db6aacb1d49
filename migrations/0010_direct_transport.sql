-- The Direct transport: messages to and from other HISPs over SMTP, and the MDNs between them.

-- A remote recipient stays SMTPINIT once the peer HISP has taken it (its SMTP 250: the seed's
-- meaning of SMTPINIT) until an MDN moves it on. handed_at says when, so that a send retried
-- for the peer's other recipients does not send to it twice.
ALTER TABLE message_recipients ADD COLUMN handed_at timestamptz;

-- MDNs and DSNs name the message they report on by its Message-ID.
CREATE INDEX messages_smtp_message_id_idx ON messages (lower(smtp_message_id));

-- A message from another HISP: the mail it came in, and where its MDNs go (its
-- Disposition-Notification-To, else its From).
ALTER TABLE messages
    ADD COLUMN inbound_mail_id uuid REFERENCES inbound_mail (id),
    ADD COLUMN notify_to       text;

-- Mail from other HISPs is base64 of ciphertext, which compression hardly shrinks: storing it
-- as it is saves PostgreSQL the work (4 ms of CPU per 100 KB message, measured).
ALTER TABLE inbound_mail ALTER COLUMN raw SET STORAGE EXTERNAL;
