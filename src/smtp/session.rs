//! One SMTP session (RFC 5321) over any byte stream, so tests can drive it without a socket.
//! smtp-proto parses each command line and finds the end of DATA; this module holds the state
//! (greeting, envelope, TLS), the limits and the replies. A session that asks for STARTTLS
//! ends with its stream handed back, and the caller runs a fresh session over TLS.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use smtp_proto::request::receiver::{DataReceiver, DummyDataReceiver};
use smtp_proto::{Error as ParseError, Request};
use sqlx::PgPool;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::service::mail_intake::{self, Received, Recipient, RetryPolicy};

/// A command line longer than this (CRLF included) is refused with 500 5.5.2. RFC 5321 allows
/// commands 512 octets; MAIL/RCPT parameters from real MTAs can run longer, so we are lenient.
pub const MAX_COMMAND_LINE: usize = 1000;
/// Refusals (5xx) one session may collect before it is closed with 421: a peer guessing
/// addresses, or one that is not speaking SMTP, costs at most this many lookups a connection.
pub const MAX_REFUSALS: usize = 100;
/// Bytes read from the peer at once.
const READ_CHUNK: usize = 64 * 1024;

/// What a session may use and what bounds it; one per listener, shared by its sessions.
pub struct Context {
    pub db: PgPool,
    pub retry: RetryPolicy,
    /// Our name in the banner, EHLO answer and Received: header.
    pub hostname: String,
    pub max_message_bytes: usize,
    pub max_recipients: usize,
    pub command_timeout: Duration,
    pub data_timeout: Duration,
    /// Places for messages being received (and held in memory) at once.
    pub messages: Arc<Semaphore>,
    /// Whether STARTTLS is offered (the listener has a certificate).
    pub starttls: bool,
    pub require_tls: bool,
    /// Fired at shutdown: a session between transactions says 421 and ends; one in a
    /// transaction finishes it first.
    pub shutdown: CancellationToken,
}

impl Context {
    /// The listener's context from the gateway's state.
    pub fn from_state(state: &crate::state::AppState, shutdown: CancellationToken) -> Self {
        let c = &state.config.smtp;
        Self {
            db: state.db.clone(),
            retry: state.retry.clone(),
            hostname: hostname(&state.config),
            max_message_bytes: c.max_message_bytes,
            max_recipients: c.max_recipients,
            command_timeout: c.command_timeout,
            data_timeout: c.data_timeout,
            messages: Arc::new(Semaphore::new(c.max_concurrent_messages)),
            starttls: true,
            require_tls: c.require_tls,
            shutdown,
        }
    }
}

/// `smtp.hostname`, else the host of `http.public_base_url`.
pub fn hostname(config: &crate::config::Config) -> String {
    if !config.smtp.hostname.is_empty() {
        return config.smtp.hostname.clone();
    }
    url::Url::parse(&config.http.public_base_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "localhost".into())
}

/// How a session ended.
pub enum Outcome<S> {
    Closed,
    /// The client asked for STARTTLS and got 220: run TLS over this stream, then a new session.
    StartTls(S),
}

/// Runs one session. `tls`: the stream is already TLS (no banner then: the client speaks
/// first with a new EHLO, RFC 3207).
pub async fn run<S>(io: S, ctx: &Context, peer: SocketAddr, tls: bool) -> Outcome<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut s = Session {
        io,
        ctx,
        peer,
        tls,
        buf: Vec::with_capacity(4096),
        out: Vec::with_capacity(512),
        helo: None,
        from: None,
        rcpts: Vec::new(),
        refusals: 0,
    };
    if !tls {
        s.reply(220, &format!("{} ESMTP Direct HISP ready", ctx.hostname));
    }
    let end = match s.serve().await {
        Ok(end) => end,
        Err(e) => {
            tracing::debug!(peer = %peer.ip(), error = %e, "smtp session ended");
            return Outcome::Closed;
        }
    };
    match end {
        End::Quit => {
            let _ = tokio::time::timeout(ctx.command_timeout, s.io.shutdown()).await;
            Outcome::Closed
        }
        End::StartTls => Outcome::StartTls(s.io),
    }
}

enum End {
    Quit,
    StartTls,
}

/// Why a session stopped early: the peer left, stalled or could not be written to.
#[derive(Debug, thiserror::Error)]
enum Stop {
    #[error("peer closed the connection")]
    Eof,
    #[error("timed out")]
    Timeout,
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

struct Session<'c, S> {
    io: S,
    ctx: &'c Context,
    peer: SocketAddr,
    tls: bool,
    /// Bytes read and not yet consumed.
    buf: Vec<u8>,
    /// Replies not yet written: pipelined commands get theirs in one write (RFC 2920).
    out: Vec<u8>,
    /// The client's name and whether it said EHLO (not HELO).
    helo: Option<(String, bool)>,
    from: Option<String>,
    rcpts: Vec<String>,
    /// 5xx replies given so far.
    refusals: usize,
}

enum Next {
    Continue,
    End(End),
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<'_, S> {
    async fn serve(&mut self) -> Result<End, Stop> {
        // Set while the rest of an over-long line is skipped; it gets one reply at its end.
        let mut skipping = false;
        loop {
            while let Some(pos) = memchr::memchr(b'\n', &self.buf) {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                if std::mem::take(&mut skipping) || line.len() > MAX_COMMAND_LINE {
                    self.reply(500, "5.5.2 Line too long");
                    continue;
                }
                if let Next::End(end) = self.command(&line).await? {
                    return Ok(end);
                }
                if self.refusals > MAX_REFUSALS {
                    self.reply(421, "4.7.0 Too many errors, closing");
                    let _ = self.flush().await;
                    return Err(Stop::Eof);
                }
            }
            if self.buf.len() > MAX_COMMAND_LINE {
                self.buf.clear();
                skipping = true;
            }
            self.flush().await?;
            match self.read_command_bytes().await {
                Err(Stop::Timeout) => {
                    self.reply(421, "4.4.2 Timeout waiting for a command, closing");
                    let _ = self.flush().await;
                    return Err(Stop::Timeout);
                }
                Err(Stop::Eof) if self.ctx.shutdown.is_cancelled() && self.from.is_none() => {
                    self.reply(421, "4.3.2 Service shutting down, closing");
                    let _ = self.flush().await;
                    return Err(Stop::Eof);
                }
                r => r?,
            }
        }
    }

    /// Reads more command bytes within the command timeout. Between transactions, shutdown
    /// ends the wait (reported as `Eof` with the token fired).
    async fn read_command_bytes(&mut self) -> Result<(), Stop> {
        let idle = self.from.is_none();
        let shutdown = self.ctx.shutdown.clone();
        tokio::select! {
            r = read_some(&mut self.io, &mut self.buf, self.ctx.command_timeout) => r,
            _ = shutdown.cancelled(), if idle => Err(Stop::Eof),
        }
    }

    async fn command(&mut self, line: &[u8]) -> Result<Next, Stop> {
        let request = match Request::parse(&mut line.iter()) {
            Ok(r) => r,
            Err(e) => {
                let (code, text) = parse_error_reply(&e);
                self.reply(code, text);
                return Ok(Next::Continue);
            }
        };
        match request {
            Request::Ehlo { host } => self.greet(&host, true),
            Request::Helo { host } => self.greet(&host, false),
            Request::Mail { from } => self.mail(&from.address, from.size),
            Request::Rcpt { to } => self.rcpt(&to.address).await?,
            Request::Data => return self.data().await,
            Request::Rset => {
                self.reset();
                self.reply(250, "2.0.0 Ok");
            }
            Request::Noop { .. } => self.reply(250, "2.0.0 Ok"),
            Request::Vrfy { .. } => self.reply(
                252,
                "2.5.0 Cannot VRFY user, but will accept the message and attempt delivery",
            ),
            Request::Help { .. } => self.reply(214, "2.0.0 See RFC 5321"),
            Request::Quit => {
                self.reply(221, "2.0.0 Bye");
                self.flush().await?;
                return Ok(Next::End(End::Quit));
            }
            Request::StartTls => return self.starttls().await,
            _ => self.reply(502, "5.5.1 Command not implemented"),
        }
        Ok(Next::Continue)
    }

    fn greet(&mut self, host: &str, extended: bool) {
        self.reset();
        let host = sanitize(host);
        if !extended {
            self.reply(250, &format!("{} Hello {host}", self.ctx.hostname));
            self.helo = Some((host, false));
            return;
        }
        let mut lines = vec![
            format!("{} Hello {host}", self.ctx.hostname),
            format!("SIZE {}", self.ctx.max_message_bytes),
            "8BITMIME".into(),
            "PIPELINING".into(),
            "ENHANCEDSTATUSCODES".into(),
        ];
        if self.ctx.starttls && !self.tls {
            lines.push("STARTTLS".into());
        }
        self.reply_lines(250, &lines);
        self.helo = Some((host, true));
    }

    fn mail(&mut self, address: &str, size: usize) {
        if self.helo.is_none() {
            return self.reply(503, "5.5.1 Send EHLO or HELO first");
        }
        if self.ctx.require_tls && !self.tls {
            return self.reply(530, "5.7.0 Must issue a STARTTLS command first");
        }
        if self.from.is_some() {
            return self.reply(503, "5.5.1 Nested MAIL command");
        }
        if size > self.ctx.max_message_bytes {
            return self.reply(552, "5.3.4 Message size exceeds the fixed maximum");
        }
        // `<>` (the null sender of MDNs and DSNs) arrives as an empty address.
        self.from = Some(address.to_owned());
        self.reply(250, "2.1.0 Ok");
    }

    async fn rcpt(&mut self, address: &str) -> Result<(), Stop> {
        if self.from.is_none() {
            self.reply(503, "5.5.1 Need MAIL before RCPT");
            return Ok(());
        }
        if !address.contains('@') || address.ends_with('@') || address.starts_with('@') {
            self.reply(501, "5.1.3 Bad recipient address syntax");
            return Ok(());
        }
        if self.rcpts.iter().any(|r| r.eq_ignore_ascii_case(address)) {
            self.reply(250, "2.1.5 Ok");
            return Ok(());
        }
        if self.rcpts.len() >= self.ctx.max_recipients {
            self.reply(452, "4.5.3 Too many recipients");
            return Ok(());
        }
        match mail_intake::check_recipient(&self.ctx.db, address).await {
            Ok(Recipient::Accepted) => {
                self.rcpts.push(address.to_owned());
                self.reply(250, "2.1.5 Ok");
            }
            Ok(Recipient::NotHosted) => self.reply(550, "5.7.1 Relaying denied"),
            Ok(Recipient::Unknown) => self.reply(550, "5.1.1 No such user here"),
            Ok(Recipient::Disabled) => self.reply(550, "5.2.1 Mailbox disabled"),
            Err(e) => {
                tracing::warn!(error = %e, "smtp recipient lookup failed");
                self.reply(451, "4.3.0 Temporary lookup failure, try again later");
            }
        }
        Ok(())
    }

    async fn data(&mut self) -> Result<Next, Stop> {
        if self.from.is_none() || self.rcpts.is_empty() {
            self.reply(503, "5.5.1 Need RCPT before DATA");
            return Ok(Next::Continue);
        }
        let place = self.ctx.messages.clone().acquire_owned();
        let Ok(Ok(_place)) = tokio::time::timeout(self.ctx.command_timeout, place).await else {
            self.reply(
                451,
                "4.3.2 Too busy to take the message now, try again later",
            );
            self.reset();
            return Ok(Next::Continue);
        };
        self.reply(354, "Start mail input; end with <CRLF>.<CRLF>");
        self.flush().await?;
        let body = self.read_message().await?;
        match body {
            None => self.reply(552, "5.3.4 Message size exceeds the fixed maximum"),
            Some(body) => self.store(body).await,
        }
        self.reset();
        Ok(Next::Continue)
    }

    /// Reads DATA up to the lone dot, unstuffed; None when it grew past the size limit (the
    /// rest was read and dropped, so the session can go on).
    async fn read_message(&mut self) -> Result<Option<Vec<u8>>, Stop> {
        let mut receiver = DataReceiver::new();
        let mut body = Vec::new();
        // The receiver finds the end only after a CRLF; the start of DATA counts as one
        // (so an empty message or a stuffed first line is read right). Removed at the end.
        receiver.ingest(&mut b"\r\n".iter(), &mut body);
        let limit = self.ctx.max_message_bytes + 2;
        loop {
            let mut bytes = self.buf.iter();
            let done = receiver.ingest(&mut bytes, &mut body);
            let consumed = self.buf.len() - bytes.as_slice().len();
            self.buf.drain(..consumed);
            if done {
                body.drain(..2);
                return Ok((body.len() <= self.ctx.max_message_bytes).then_some(body));
            }
            if body.len() > limit {
                drop(body);
                self.discard_message(DummyDataReceiver::new_data(&receiver))
                    .await?;
                return Ok(None);
            }
            read_some(&mut self.io, &mut self.buf, self.ctx.data_timeout).await?;
        }
    }

    async fn discard_message(&mut self, mut receiver: DummyDataReceiver) -> Result<(), Stop> {
        loop {
            let mut bytes = self.buf.iter();
            let done = receiver.ingest(&mut bytes);
            let consumed = self.buf.len() - bytes.as_slice().len();
            self.buf.drain(..consumed);
            if done {
                return Ok(());
            }
            read_some(&mut self.io, &mut self.buf, self.ctx.data_timeout).await?;
        }
    }

    /// Commits the message and its job, then (only then) answers 250.
    async fn store(&mut self, body: Vec<u8>) {
        let id = Uuid::now_v7();
        let (helo, extended) = self.helo.clone().unwrap_or_default();
        let raw = self.received_header(&helo, extended, id, body);
        let from = self.from.as_deref().unwrap_or_default();
        let received = Received {
            id,
            peer: self.peer.ip(),
            helo: &helo,
            tls: self.tls,
            mail_from: from,
            rcpt_to: &self.rcpts,
            raw: &raw,
        };
        match mail_intake::receive(&self.ctx.db, &self.ctx.retry, &received).await {
            Ok(()) => {
                tracing::info!(inbound_id = %id, size = raw.len(), recipients = self.rcpts.len(),
                    tls = self.tls, "smtp message received");
                metrics::counter!("gateway_smtp_messages_total", "outcome" => "received")
                    .increment(1);
                self.reply(250, &format!("2.0.0 Ok: queued as {id}"));
            }
            Err(e) => {
                tracing::error!(error = %e, size = raw.len(), "storing an smtp message failed");
                metrics::counter!("gateway_smtp_messages_total", "outcome" => "failed")
                    .increment(1);
                self.reply(451, "4.3.0 Temporary storage failure, try again later");
            }
        }
    }

    /// The message with our trace header on top (RFC 5321 §4.4).
    fn received_header(&self, helo: &str, extended: bool, id: Uuid, body: Vec<u8>) -> Vec<u8> {
        let with = match (extended, self.tls) {
            (true, true) => "ESMTPS",
            (true, false) => "ESMTP",
            (false, _) => "SMTP",
        };
        let ip = self.peer.ip();
        let literal = if ip.is_ipv6() {
            format!("IPv6:{ip}")
        } else {
            ip.to_string()
        };
        let header = format!(
            "Received: from {helo} ([{literal}])\r\n\tby {} with {with} id {id};\r\n\t{}\r\n",
            self.ctx.hostname,
            chrono::Utc::now().to_rfc2822()
        );
        let mut raw = Vec::with_capacity(header.len() + body.len());
        raw.extend_from_slice(header.as_bytes());
        raw.extend_from_slice(&body);
        raw
    }

    async fn starttls(&mut self) -> Result<Next, Stop> {
        if self.tls {
            self.reply(503, "5.5.1 TLS already active");
            return Ok(Next::Continue);
        }
        if !self.ctx.starttls {
            self.reply(502, "5.5.1 Command not implemented");
            return Ok(Next::Continue);
        }
        self.reply(220, "2.0.0 Ready to start TLS");
        self.flush().await?;
        // Anything sent after STARTTLS in the clear must not be taken as said over TLS
        // (the command injection of CVE-2011-0411).
        self.buf.clear();
        Ok(Next::End(End::StartTls))
    }

    fn reset(&mut self) {
        self.from = None;
        self.rcpts.clear();
    }

    fn reply(&mut self, code: u16, text: &str) {
        if code >= 500 {
            self.refusals += 1;
        }
        self.out
            .extend_from_slice(format!("{code} {text}\r\n").as_bytes());
    }

    fn reply_lines(&mut self, code: u16, lines: &[String]) {
        for (i, line) in lines.iter().enumerate() {
            let sep = if i + 1 == lines.len() { ' ' } else { '-' };
            self.out
                .extend_from_slice(format!("{code}{sep}{line}\r\n").as_bytes());
        }
    }

    async fn flush(&mut self) -> Result<(), Stop> {
        if self.out.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.out);
        let write = async {
            self.io.write_all(&out).await?;
            self.io.flush().await
        };
        match tokio::time::timeout(self.ctx.command_timeout, write).await {
            Ok(r) => r.map_err(Stop::Io),
            Err(_) => Err(Stop::Timeout),
        }
    }
}

/// Appends what the peer sends next (at most `READ_CHUNK` bytes) to `buf`.
async fn read_some<S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut Vec<u8>,
    limit: Duration,
) -> Result<(), Stop> {
    let start = buf.len();
    buf.resize(start + READ_CHUNK, 0);
    let read = tokio::time::timeout(limit, io.read(&mut buf[start..])).await;
    let n = match read {
        Ok(Ok(n)) => n,
        Ok(Err(e)) => {
            buf.truncate(start);
            return Err(Stop::Io(e));
        }
        Err(_) => {
            buf.truncate(start);
            return Err(Stop::Timeout);
        }
    };
    buf.truncate(start + n);
    if n == 0 {
        return Err(Stop::Eof);
    }
    Ok(())
}

fn parse_error_reply(e: &ParseError) -> (u16, &'static str) {
    match e {
        ParseError::UnknownCommand => (500, "5.5.2 Syntax error, command unrecognized"),
        ParseError::InvalidSenderAddress => (501, "5.1.7 Bad sender address syntax"),
        ParseError::InvalidRecipientAddress => (501, "5.1.3 Bad recipient address syntax"),
        ParseError::UnsupportedParameter { .. } => (
            555,
            "5.5.4 MAIL FROM/RCPT TO parameters not recognized or not implemented",
        ),
        ParseError::ResponseTooLong => (500, "5.5.2 Line too long"),
        ParseError::SyntaxError { .. } | ParseError::InvalidParameter { .. } => {
            (501, "5.5.4 Syntax error in parameters or arguments")
        }
        _ => (500, "5.5.2 Syntax error"),
    }
}

/// The client's EHLO name as we repeat it (in replies and the Received: header): printable
/// ASCII without spaces, bounded, so it can inject nothing.
fn sanitize(host: &str) -> String {
    let clean: String = host
        .chars()
        .filter(|c| c.is_ascii_graphic() && !matches!(c, '(' | ')' | ';' | '\\'))
        .take(255)
        .collect();
    if clean.is_empty() {
        "unknown".into()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ehlo_name_cannot_inject_a_header() {
        assert_eq!(sanitize("mx.example.org"), "mx.example.org");
        assert_eq!(sanitize("a\r\nBcc: x (y);"), "aBcc:xy");
        assert_eq!(sanitize(""), "unknown");
        assert_eq!(sanitize(&"a".repeat(1000)).len(), 255);
    }

    #[test]
    fn parse_errors_have_their_codes() {
        let code = |line: &[u8]| match Request::parse(&mut line.iter()) {
            Ok(_) => 250,
            Err(e) => parse_error_reply(&e).0,
        };
        assert_eq!(code(b"BOGUS\r\n"), 500);
        assert_eq!(code(b"MAIL FROM:<a@b.c>\r\n"), 250);
        assert_eq!(code(b"MAIL FROM:<>\r\n"), 250);
        assert_eq!(code(b"MAIL TO:<a@b.c>\r\n"), 501);
        assert_eq!(code(b"RCPT TO:a@b.c\r\n"), 501);
    }
}
