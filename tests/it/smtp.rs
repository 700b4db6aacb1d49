//! The inbound SMTP listener over real TCP on 127.0.0.1: Python's smtplib and lettre as
//! clients we did not write, a raw client for the refusals, caps and timeouts, the real
//! binary killed mid-stream, and random command lines.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hisp_gateway::config::Config;
use hisp_gateway::domain::client::ClientKind;
use sqlx::PgPool;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use uuid::Uuid;

use crate::helpers::{TestApp, TestOptions, count, test_config};

const DOMAIN: &str = "lakeside.direct.example.org";
const BEN: &str = "ben@lakeside.direct.example.org";
const CY: &str = "cy@lakeside.direct.example.org";
const EVE: &str = "eve@lakeside.direct.example.org";
/// Exists, but disabled.
const DORA: &str = "dora@lakeside.direct.example.org";
const PEER: &str = "sender@hisp.example.net";

/// A gateway hosting `DOMAIN` (ben, cy, eve active; dora disabled), with `tweak` applied to
/// its configuration.
async fn gateway(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = test_config();
    tweak(&mut config);
    gateway_with(TestOptions {
        config,
        ..Default::default()
    })
    .await
}

async fn gateway_with(opts: TestOptions) -> TestApp {
    let app = TestApp::spawn_with(opts).await;
    host_domain(&app).await;
    app
}

/// Rows as provisioning leaves them; SOAP provisioning (tested elsewhere) would only add the
/// CA's slow key generation here.
async fn host_domain(app: &TestApp) {
    host_domain_on(
        &app.db.pool,
        app.create_client(ClientKind::Reseller).await.0,
    )
    .await;
}

async fn host_domain_on(db: &PgPool, reseller: Uuid) {
    let org: i64 = sqlx::query_scalar(
        "INSERT INTO organizations (domain, name, status, reseller_id)
         VALUES ($1, 'Lakeside', 'Activated', $2) RETURNING id",
    )
    .bind(DOMAIN)
    .bind(reseller)
    .fetch_one(db)
    .await
    .unwrap();
    for (user, status) in [
        ("ben", "active"),
        ("cy", "active"),
        ("eve", "active"),
        ("dora", "disabled"),
    ] {
        sqlx::query(
            "INSERT INTO direct_addresses (organization_id, username, domain, user_type, status)
             VALUES ($1, $2, $3, 'provider', $4)",
        )
        .bind(org)
        .bind(user)
        .bind(DOMAIN)
        .bind(status)
        .execute(db)
        .await
        .unwrap();
    }
}

/// A message as an MTA would send it (CRLF lines), with a line that needs dot-stuffing and
/// 8-bit bytes.
fn message(subject: &str) -> Vec<u8> {
    let mut m = format!(
        "From: <{PEER}>\r\nTo: <{BEN}>\r\nSubject: {subject}\r\nMessage-ID: <{subject}@hisp.example.net>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    )
    .into_bytes();
    m.extend_from_slice(b"first line\r\n.a line that starts with a dot\r\n..two dots\r\n");
    m.extend_from_slice("caf\u{e9} \u{2014} 8-bit\r\n".as_bytes());
    m.extend_from_slice(b"last line\r\n");
    m
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    peer: String,
    helo: String,
    tls: bool,
    mail_from: String,
    rcpt_to: Vec<String>,
    raw: Vec<u8>,
    size: i64,
    state: String,
}

async fn rows(db: &PgPool) -> Vec<Row> {
    sqlx::query_as(
        "SELECT id, host(peer) AS peer, helo, tls, mail_from, rcpt_to, raw, size, state
         FROM inbound_mail ORDER BY received_at, id",
    )
    .fetch_all(db)
    .await
    .unwrap()
}

/// The `direct.receive` jobs' inbound ids.
async fn receive_jobs(db: &PgPool) -> Vec<Uuid> {
    let payloads: Vec<serde_json::Value> =
        sqlx::query_scalar("SELECT payload FROM jobs WHERE kind = 'direct.receive' ORDER BY id")
            .fetch_all(db)
            .await
            .unwrap();
    payloads
        .iter()
        .map(|p| p["inboundId"].as_str().unwrap().parse().unwrap())
        .collect()
}

/// The raw bytes stored for a message: our Received: header, then exactly what was sent.
fn assert_stored_as(row: &Row, sent: &[u8]) {
    let text = String::from_utf8_lossy(&row.raw);
    assert!(text.starts_with("Received: from "), "{text}");
    let header_end = text.find("\r\n\t").unwrap();
    let (_, rest) = row.raw.split_at(row.raw.len() - sent.len());
    assert_eq!(rest, sent, "the stored body differs from what was sent");
    // The Received: header is three folded lines; the message follows at once.
    let head = &row.raw[..row.raw.len() - sent.len()];
    assert_eq!(
        head.iter().filter(|&&b| b == b'\n').count(),
        3,
        "{}",
        String::from_utf8_lossy(head)
    );
    assert!(header_end > 0);
    assert_eq!(row.size, row.raw.len() as i64);
    assert_eq!(row.state, "received");
}

// ---- a raw client, to see every reply ----------------------------------------------------

struct Client<S> {
    io: BufReader<S>,
}

impl Client<TcpStream> {
    async fn connect(addr: SocketAddr) -> Self {
        Self::over(TcpStream::connect(addr).await.unwrap())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    fn over(io: S) -> Self {
        Self {
            io: BufReader::new(io),
        }
    }

    /// One whole reply (every line of a multi-line one): its code and its text.
    async fn reply(&mut self) -> (u16, String) {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(Duration::from_secs(15), self.io.read_line(&mut line))
                .await
                .expect("no reply within 15s")
                .unwrap();
            assert!(n > 0, "connection closed; got so far: {text:?}");
            text.push_str(&line);
            assert!(
                line.len() >= 4 && line.ends_with("\r\n"),
                "bad reply line {line:?}"
            );
            if line.as_bytes()[3] == b' ' {
                return (line[..3].parse().unwrap(), text);
            }
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.io.get_mut().write_all(bytes).await.unwrap();
    }

    /// Sends a command line and asserts its reply's code and enhanced code.
    async fn expect(&mut self, line: &str, code: u16, enhanced: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        let (got, text) = self.reply().await;
        assert_eq!(got, code, "{line:?} answered {text:?}");
        assert!(
            text.contains(enhanced),
            "{line:?} answered {text:?}, not {enhanced}"
        );
        text
    }

    /// Reads until the peer closes; what was said meanwhile.
    async fn until_closed(&mut self, within: Duration) -> String {
        let mut all = String::new();
        let deadline = Instant::now() + within;
        loop {
            let mut line = String::new();
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.io.read_line(&mut line)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return all,
                Ok(Ok(_)) => all.push_str(&line),
                Err(_) => panic!("still open after {within:?}; said {all:?}"),
            }
        }
    }
}

fn smtp_of(app: &TestApp) -> SocketAddr {
    app.smtp.expect("the SMTP listener runs")
}

async fn greeted(app: &TestApp) -> Client<TcpStream> {
    let mut c = Client::connect(smtp_of(app)).await;
    let (code, banner) = c.reply().await;
    assert_eq!(code, 220, "{banner}");
    c.expect("EHLO sender.example.net", 250, "PIPELINING").await;
    c
}

// ---- clients we did not write --------------------------------------------------------------

#[tokio::test]
async fn python_smtplib_delivers_a_message_over_starttls_byte_exact() {
    let app = gateway(|_| {}).await;
    let msg = message("python");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("message.eml");
    std::fs::write(&path, &msg).unwrap();
    let addr = smtp_of(&app);
    let out = tokio::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/smtp_send.py"
        ))
        .args([
            "127.0.0.1",
            &addr.port().to_string(),
            PEER,
            &format!("{BEN},{CY}"),
            path.to_str().unwrap(),
            "starttls",
        ])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let features = stdout.lines().next().unwrap();
    for f in ["size", "pipelining", "8bitmime", "starttls"] {
        assert!(features.contains(f), "{features}");
    }
    let after = stdout
        .lines()
        .find(|l| l.starts_with("after tls:"))
        .unwrap();
    assert!(
        !after.contains("starttls"),
        "STARTTLS offered again: {after}"
    );
    assert!(stdout.contains("refused recipients: {}"), "{stdout}");

    let rows = rows(&app.db.pool).await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_stored_as(row, &msg);
    assert_eq!(row.rcpt_to, [BEN, CY]);
    assert_eq!(row.mail_from, PEER);
    assert_eq!(row.helo, "sender.example.net");
    assert_eq!(row.peer, "127.0.0.1");
    assert!(row.tls);
    let header = String::from_utf8_lossy(&row.raw[..80]).into_owned();
    assert!(
        header.contains("from sender.example.net ([127.0.0.1])"),
        "{header}"
    );
    assert!(String::from_utf8_lossy(&row.raw).contains("with ESMTPS id"));
    assert_eq!(receive_jobs(&app.db.pool).await, [row.id]);
}

#[tokio::test]
async fn lettre_delivers_over_starttls_with_the_null_sender() {
    use lettre::address::Envelope;
    use lettre::transport::smtp::client::{Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

    let app = gateway(|_| {}).await;
    let addr = smtp_of(&app);
    let tls = TlsParameters::builder("localhost".into())
        .dangerous_accept_invalid_certs(true)
        .dangerous_accept_invalid_hostnames(true)
        .build_rustls()
        .unwrap();
    let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(addr.port())
        .tls(Tls::Required(tls))
        .timeout(Some(Duration::from_secs(30)))
        .build();
    let msg = message("lettre");
    // An MDN travels with the null sender.
    let envelope = Envelope::new(None, vec![CY.parse().unwrap()]).unwrap();
    // lettre ends the data with CRLF.CRLF itself, so it gets the message without its last CRLF.
    let response = mailer
        .send_raw(&envelope, &msg[..msg.len() - 2])
        .await
        .unwrap();
    assert_eq!(u16::from(response.code()), 250);

    let rows = rows(&app.db.pool).await;
    assert_eq!(rows.len(), 1);
    assert_stored_as(&rows[0], &msg);
    assert_eq!(rows[0].mail_from, "");
    assert_eq!(rows[0].rcpt_to, [CY]);
    assert!(rows[0].tls);
    assert_eq!(receive_jobs(&app.db.pool).await, [rows[0].id]);
}

// ---- replies -------------------------------------------------------------------------------

#[tokio::test]
async fn each_refusal_has_its_code() {
    let app = gateway(|c| c.smtp.max_recipients = 2).await;
    let mut c = Client::connect(smtp_of(&app)).await;
    let (code, banner) = c.reply().await;
    assert_eq!(code, 220);
    assert!(banner.contains("ESMTP"), "{banner}");
    c.expect(&format!("MAIL FROM:<{PEER}>"), 503, "5.5.1").await;
    let ehlo = c.expect("EHLO sender.example.net", 250, "2").await;
    for ext in ["SIZE 26214400", "PIPELINING", "8BITMIME", "STARTTLS"] {
        assert!(ehlo.contains(ext), "{ehlo}");
    }
    c.expect(&format!("RCPT TO:<{BEN}>"), 503, "5.5.1").await;
    c.expect("DATA", 503, "5.5.1").await;
    c.expect(&format!("MAIL FROM:<{PEER}> SIZE=26214401"), 552, "5.3.4")
        .await;
    c.expect("MAIL FROM:<no-brackets", 501, "5.").await;
    c.expect("BOGUS command", 500, "5.5.2").await;
    c.expect(
        &format!("MAIL FROM:<{PEER}> SIZE=1000 BODY=8BITMIME"),
        250,
        "2.1.0",
    )
    .await;
    c.expect(&format!("MAIL FROM:<{PEER}>"), 503, "5.5.1").await;
    c.expect("DATA", 503, "5.5.1").await;
    c.expect("RCPT TO:<someone@elsewhere.example.com>", 550, "5.7.1")
        .await;
    c.expect(&format!("RCPT TO:<nobody@{DOMAIN}>"), 550, "5.1.1")
        .await;
    c.expect(&format!("RCPT TO:<{DORA}>"), 550, "5.2.1").await;
    c.expect("RCPT TO:<>", 501, "5.").await;
    c.expect(&format!("RCPT TO:<{BEN}>"), 250, "2.1.5").await;
    // Domains and local parts match whatever their case.
    c.expect(&format!("RCPT TO:<{}>", CY.to_uppercase()), 250, "2.1.5")
        .await;
    c.expect(&format!("RCPT TO:<{EVE}>"), 452, "4.5.3").await;
    c.expect(&format!("VRFY {BEN}"), 252, "2.5.0").await;
    c.expect("NOOP", 250, "2.0.0").await;
    c.expect("EXPN staff", 502, "5.5.1").await;
    c.expect(&format!("{}\r", "X".repeat(2000)), 500, "5.5.2")
        .await;
    c.expect("RSET", 250, "2.0.0").await;
    // RSET ended the transaction.
    c.expect(&format!("RCPT TO:<{BEN}>"), 503, "5.5.1").await;
    c.expect("QUIT", 221, "2.0.0").await;
    assert_eq!(c.until_closed(Duration::from_secs(5)).await, "");
    assert_eq!(count(&app.db.pool, "inbound_mail").await, 0);
}

#[tokio::test]
async fn require_tls_refuses_mail_in_the_clear_and_takes_it_over_tls() {
    let app = gateway(|c| c.smtp.require_tls = true).await;
    let mut c = greeted(&app).await;
    c.expect(&format!("MAIL FROM:<{PEER}>"), 530, "5.7.0").await;
    c.expect("STARTTLS", 220, "2.0.0").await;
    // The same connection, now TLS, as any client would continue.
    let io = c.io.into_inner();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .dangerous()
    .with_custom_certificate_verifier(std::sync::Arc::new(AcceptAny))
    .with_no_client_auth();
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect("localhost".try_into().unwrap(), io)
        .await
        .unwrap();
    let mut c = Client::over(tls);
    let ehlo = c.expect("EHLO sender.example.net", 250, "SIZE").await;
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    c.expect("STARTTLS", 503, "5.5.1").await;
    c.expect(&format!("MAIL FROM:<{PEER}>"), 250, "2.1.0").await;
    c.expect(&format!("RCPT TO:<{BEN}>"), 250, "2.1.5").await;
    c.expect("DATA", 354, "").await;
    c.send(b"Subject: over tls\r\n\r\nbody\r\n.\r\n").await;
    assert_eq!(c.reply().await.0, 250);
    let rows = rows(&app.db.pool).await;
    assert_eq!(rows.len(), 1);
    assert!(rows[0].tls);
    assert_stored_as(&rows[0], b"Subject: over tls\r\n\r\nbody\r\n");
}

/// The test's own TLS client accepts the gateway's self-signed development certificate.
#[derive(Debug)]
struct AcceptAny;

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::aws_lc_rs::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[tokio::test]
async fn pipelined_commands_get_their_replies_in_order() {
    let app = gateway(|_| {}).await;
    let mut c = Client::connect(smtp_of(&app)).await;
    assert_eq!(c.reply().await.0, 220);
    c.send(
        format!(
            "EHLO sender.example.net\r\nMAIL FROM:<{PEER}>\r\nRCPT TO:<{BEN}>\r\n\
             RCPT TO:<nobody@{DOMAIN}>\r\nRCPT TO:<{EVE}>\r\nDATA\r\n"
        )
        .as_bytes(),
    )
    .await;
    let mut got = Vec::new();
    for _ in 0..6 {
        got.push(c.reply().await.0);
    }
    assert_eq!(got, [250, 250, 250, 550, 250, 354]);
    // The message, its end and the next transaction in one write.
    c.send(
        format!("..stuffed first line\r\nbody\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<{CY}>\r\nDATA\r\n")
            .as_bytes(),
    )
    .await;
    let replies = [
        c.reply().await.0,
        c.reply().await.0,
        c.reply().await.0,
        c.reply().await.0,
    ];
    assert_eq!(replies, [250, 250, 250, 354]);
    // An empty message.
    c.send(b".\r\nQUIT\r\n").await;
    assert_eq!(c.reply().await.0, 250);
    assert_eq!(c.reply().await.0, 221);
    let rows = rows(&app.db.pool).await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].rcpt_to, [BEN, EVE]);
    assert_stored_as(&rows[0], b".stuffed first line\r\nbody\r\n");
    assert_eq!(rows[1].rcpt_to, [CY]);
    assert_eq!(rows[1].mail_from, "");
    assert_stored_as(&rows[1], b"");
    assert!(!rows[0].tls);
    assert_eq!(receive_jobs(&app.db.pool).await, [rows[0].id, rows[1].id]);
}

#[tokio::test]
async fn an_oversized_message_is_read_to_its_end_and_refused() {
    let app = gateway(|c| c.smtp.max_message_bytes = 1000).await;
    let mut c = greeted(&app).await;
    c.expect(&format!("MAIL FROM:<{PEER}> SIZE=1001"), 552, "5.3.4")
        .await;
    // A client that declares nothing (or lies) finds out after its last line.
    c.expect(&format!("MAIL FROM:<{PEER}>"), 250, "2.1.0").await;
    c.expect(&format!("RCPT TO:<{BEN}>"), 250, "2.1.5").await;
    c.expect("DATA", 354, "").await;
    let line = format!("{}\r\n", "x".repeat(76));
    for _ in 0..200 {
        c.send(line.as_bytes()).await;
    }
    // Lines that look like commands are part of the message being discarded.
    c.send(b"QUIT\r\n.\r\n").await;
    let (code, text) = c.reply().await;
    assert_eq!(code, 552, "{text}");
    assert!(text.contains("5.3.4"), "{text}");
    // The session goes on; a message within the limit is taken.
    c.expect(&format!("MAIL FROM:<{PEER}>"), 250, "2.1.0").await;
    c.expect(&format!("RCPT TO:<{BEN}>"), 250, "2.1.5").await;
    c.expect("DATA", 354, "").await;
    c.send(b"small\r\n.\r\n").await;
    assert_eq!(c.reply().await.0, 250);
    let rows = rows(&app.db.pool).await;
    assert_eq!(rows.len(), 1);
    assert_stored_as(&rows[0], b"small\r\n");
}

#[tokio::test]
async fn a_message_is_stored_only_after_its_final_dot() {
    let app = gateway(|_| {}).await;
    let mut c = greeted(&app).await;
    c.expect(&format!("MAIL FROM:<{PEER}>"), 250, "2.1.0").await;
    c.expect(&format!("RCPT TO:<{BEN}>"), 250, "2.1.5").await;
    c.expect("DATA", 354, "").await;
    c.send(b"Subject: one\r\n\r\nalmost there\r\n").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(count(&app.db.pool, "inbound_mail").await, 0);
    c.send(b".\r\n").await;
    assert_eq!(c.reply().await.0, 250);
    assert_eq!(count(&app.db.pool, "inbound_mail").await, 1);

    // A second message whose connection drops mid-DATA leaves nothing.
    c.expect(&format!("MAIL FROM:<{PEER}>"), 250, "2.1.0").await;
    c.expect(&format!("RCPT TO:<{CY}>"), 250, "2.1.5").await;
    c.expect("DATA", 354, "").await;
    c.send(b"Subject: two\r\n\r\ncut off here\r\n.").await;
    drop(c);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count(&app.db.pool, "inbound_mail").await, 1);
    assert_eq!(receive_jobs(&app.db.pool).await.len(), 1);
}

#[tokio::test]
async fn a_database_failure_is_a_temporary_refusal() {
    let app = gateway_with(TestOptions {
        db_proxy: true,
        ..Default::default()
    })
    .await;
    let mut c = greeted(&app).await;
    c.expect(&format!("MAIL FROM:<{PEER}>"), 250, "2.1.0").await;
    c.expect(&format!("RCPT TO:<{BEN}>"), 250, "2.1.5").await;
    c.expect("DATA", 354, "").await;
    app.proxy.as_ref().unwrap().cut();
    c.send(b"Subject: lost?\r\n\r\nbody\r\n.\r\n").await;
    let (code, text) = c.reply().await;
    assert_eq!(code, 451, "{text}");
    assert!(text.contains("4.3.0"), "{text}");
    c.expect(&format!("MAIL FROM:<{PEER}>"), 250, "2.1.0").await;
    c.expect(&format!("RCPT TO:<{BEN}>"), 451, "4.3.0").await;
    app.proxy.as_ref().unwrap().restore();
    assert_eq!(count(&app.db.pool, "inbound_mail").await, 0);
}

// ---- limits --------------------------------------------------------------------------------

#[tokio::test]
async fn a_stalled_peer_is_cut_off_at_the_timeout() {
    let app = gateway(|c| {
        c.smtp.command_timeout = Duration::from_secs(1);
        c.smtp.data_timeout = Duration::from_secs(1);
    })
    .await;
    // Silent after the banner.
    let started = Instant::now();
    let mut c = Client::connect(smtp_of(&app)).await;
    assert_eq!(c.reply().await.0, 220);
    let said = c.until_closed(Duration::from_secs(10)).await;
    assert!(said.starts_with("421 4.4.2"), "{said:?}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // Half a command line.
    let mut c = greeted(&app).await;
    c.send(b"MAIL FROM:<").await;
    let said = c.until_closed(Duration::from_secs(10)).await;
    assert!(said.starts_with("421 4.4.2"), "{said:?}");

    // Silent in the middle of a message: dropped, nothing stored.
    let mut c = greeted(&app).await;
    c.expect(&format!("MAIL FROM:<{PEER}>"), 250, "2.1.0").await;
    c.expect(&format!("RCPT TO:<{BEN}>"), 250, "2.1.5").await;
    c.expect("DATA", 354, "").await;
    c.send(b"Subject: slow\r\n\r\n").await;
    c.until_closed(Duration::from_secs(10)).await;
    assert_eq!(count(&app.db.pool, "inbound_mail").await, 0);
}

#[tokio::test]
async fn sessions_over_the_caps_are_turned_away() {
    let app = gateway(|c| {
        c.smtp.max_sessions = 2;
        c.smtp.max_sessions_per_address = 2;
    })
    .await;
    let first = greeted(&app).await;
    let _second = greeted(&app).await;
    let mut third = Client::connect(smtp_of(&app)).await;
    let said = third.until_closed(Duration::from_secs(5)).await;
    assert!(said.starts_with("421 4.7.0"), "{said:?}");
    drop(first);
    // The freed place is taken again (after the session notices the close).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = Client::connect(smtp_of(&app)).await;
        let (code, _) = c.reply().await;
        if code == 220 {
            break;
        }
        assert!(Instant::now() < deadline, "the place was never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let app = gateway(|c| c.smtp.max_sessions_per_address = 1).await;
    let _one = greeted(&app).await;
    let mut two = Client::connect(smtp_of(&app)).await;
    let said = two.until_closed(Duration::from_secs(5)).await;
    assert!(said.starts_with("421 4.7.0"), "{said:?}");
}

#[tokio::test]
async fn shutdown_lets_a_transaction_finish_and_closes_idle_sessions() {
    let app = gateway(|_| {}).await;
    let pool = app.db.pool.clone();
    let addr = smtp_of(&app);
    let mut idle = greeted(&app).await;
    let mut busy = greeted(&app).await;
    busy.expect(&format!("MAIL FROM:<{PEER}>"), 250, "2.1.0")
        .await;
    busy.expect(&format!("RCPT TO:<{BEN}>"), 250, "2.1.5").await;
    busy.expect("DATA", 354, "").await;
    busy.send(b"Subject: in flight\r\n\r\n").await;

    let stopping = tokio::spawn(app.stop());
    let said = idle.until_closed(Duration::from_secs(10)).await;
    assert!(said.starts_with("421 4.3.2"), "{said:?}");
    // No new sessions.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
    // The message under way is still taken, then the session is closed.
    busy.send(b"the end\r\n.\r\n").await;
    assert_eq!(busy.reply().await.0, 250);
    let said = busy.until_closed(Duration::from_secs(10)).await;
    assert!(said.starts_with("421 4.3.2"), "{said:?}");
    stopping.await.unwrap();
    assert_eq!(count(&pool, "inbound_mail").await, 1);
}

#[tokio::test]
async fn a_peer_that_keeps_getting_refused_is_closed() {
    let app = gateway(|_| {}).await;
    let mut c = greeted(&app).await;
    c.expect(&format!("MAIL FROM:<{PEER}>"), 250, "2.1.0").await;
    // Guessing addresses: each guess is a lookup, and there are only so many a connection.
    let guesses: String = (0..=hisp_gateway::smtp::session::MAX_REFUSALS)
        .map(|i| format!("RCPT TO:<guess{i}@{DOMAIN}>\r\n"))
        .collect();
    c.send(guesses.as_bytes()).await;
    let said = c.until_closed(Duration::from_secs(20)).await;
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(
        lines.len(),
        hisp_gateway::smtp::session::MAX_REFUSALS + 2,
        "{said}"
    );
    assert!(
        lines[..lines.len() - 1]
            .iter()
            .all(|l| l.starts_with("550 5.1.1"))
    );
    assert!(lines.last().unwrap().starts_with("421 4.7.0"), "{said}");
}

#[tokio::test]
async fn messages_received_at_once_are_capped() {
    let app = gateway(|c| {
        c.smtp.max_concurrent_messages = 1;
        c.smtp.command_timeout = Duration::from_secs(1);
        c.smtp.data_timeout = Duration::from_secs(10);
    })
    .await;
    let mut first = greeted(&app).await;
    let mut second = greeted(&app).await;
    for c in [&mut first, &mut second] {
        c.expect(&format!("MAIL FROM:<{PEER}>"), 250, "2.1.0").await;
        c.expect(&format!("RCPT TO:<{BEN}>"), 250, "2.1.5").await;
    }
    first.expect("DATA", 354, "").await;
    first.send(b"Subject: first\r\n").await;
    // The one place is taken: the second waits, then is told to come back.
    second.expect("DATA", 451, "4.3.2").await;
    first.send(b"\r\nbody\r\n.\r\n").await;
    assert_eq!(first.reply().await.0, 250);
    // The place is free again; the refused transaction was reset.
    second.expect("DATA", 503, "5.5.1").await;
    second
        .expect(&format!("MAIL FROM:<{PEER}>"), 250, "2.1.0")
        .await;
    second
        .expect(&format!("RCPT TO:<{BEN}>"), 250, "2.1.5")
        .await;
    second.expect("DATA", 354, "").await;
    second.send(b"Subject: second\r\n\r\nbody\r\n.\r\n").await;
    assert_eq!(second.reply().await.0, 250);
    assert_eq!(count(&app.db.pool, "inbound_mail").await, 2);
}

#[tokio::test]
async fn a_disabled_listener_binds_nothing() {
    let app = gateway(|c| c.smtp.enabled = false).await;
    assert_eq!(app.smtp, None);
}

// ---- a crash ---------------------------------------------------------------------------------

/// kill -9 while messages stream in: every message answered 250 is in `inbound_mail` after
/// a restart on the same data folder (the embedded PostgreSQL, with fsync and synchronous
/// commits as in production).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_answered_250_survives_a_sigkill() {
    use std::os::unix::fs::PermissionsExt;

    use crate::binary::{StopClusterOnDrop, embedded};
    use crate::helpers::process::{GatewayProcess, wait_ready};

    let dir = tempfile::Builder::new()
        .prefix("gw-smtp-")
        .tempdir()
        .unwrap();
    // When the tests run as root the database runs as the postgres user, who must reach it.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = dir.path().join("var/postgres");
    let _cleanup = StopClusterOnDrop(data.clone());
    let server = || {
        let mut cmd = embedded(&data);
        // Jobs stay queued, so the rows and jobs counted are the listener's alone.
        cmd.env("GW_JOBS__CONCURRENCY", "1")
            .env("GW_JOBS__POLL_INTERVAL", "1h");
        cmd
    };
    let gw = GatewayProcess::start(server());
    wait_ready(&gw.url("/readyz")).await;
    let db = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect_with(
            hisp_gateway::store::embedded::EmbeddedPostgres::connect_options_at(
                &data,
                "hisp_gateway",
            ),
        )
        .await
        .unwrap();
    let reseller = hisp_gateway::service::clients::create(
        &db,
        ClientKind::Reseller,
        "reseller",
        &hisp_gateway::service::Actor::cli(),
    )
    .await
    .unwrap();
    host_domain_on(&db, reseller.client.id).await;
    let addr = gw.smtp.expect("the binary logs its SMTP address");

    // Four senders, each a session sending message after message, noting each 250.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let mut senders = tokio::task::JoinSet::new();
    for s in 0..4 {
        let tx = tx.clone();
        senders.spawn(async move {
            let Ok(stream) = TcpStream::connect(addr).await else {
                return;
            };
            let mut c = Client::over(stream);
            let step = async |c: &mut Client<TcpStream>, line: &[u8]| -> Option<u16> {
                c.io.get_mut().write_all(line).await.ok()?;
                let mut text = String::new();
                loop {
                    let mut l = String::new();
                    let n = c.io.read_line(&mut l).await.ok()?;
                    if n == 0 {
                        return None;
                    }
                    text.push_str(&l);
                    if l.len() >= 4 && l.as_bytes()[3] == b' ' {
                        return l[..3].parse().ok();
                    }
                }
            };
            if step(&mut c, b"").await != Some(220)
                || step(&mut c, b"EHLO crash.example.net\r\n").await != Some(250)
            {
                return;
            }
            for i in 0.. {
                let tag = format!("crash-{s}-{i}");
                let ok = step(&mut c, format!("MAIL FROM:<{PEER}>\r\n").as_bytes()).await
                    == Some(250)
                    && step(&mut c, format!("RCPT TO:<{BEN}>\r\n").as_bytes()).await == Some(250)
                    && step(&mut c, b"DATA\r\n").await == Some(354);
                if !ok {
                    return;
                }
                let body = format!("Message-ID: <{tag}@x>\r\n\r\n{}\r\n.\r\n", "y".repeat(2000));
                match step(&mut c, body.as_bytes()).await {
                    Some(250) => {
                        let _ = tx.send(tag);
                    }
                    _ => return,
                }
            }
        });
    }
    drop(tx);
    // Let a stream of messages be accepted, then crash in the middle of it.
    let mut answered = Vec::new();
    while answered.len() < 60 {
        answered.push(rx.recv().await.expect("senders stopped before the crash"));
    }
    gw.crash();
    while let Some(r) = senders.join_next().await {
        r.unwrap();
    }
    while let Ok(tag) = rx.try_recv() {
        answered.push(tag);
    }

    // The crash left the database running (its own process group); the next start adopts it.
    let gw = GatewayProcess::start(server());
    wait_ready(&gw.url("/readyz")).await;
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT raw FROM inbound_mail")
        .fetch_all(&db)
        .await
        .unwrap();
    let stored: std::collections::HashSet<String> = stored
        .iter()
        .filter_map(|raw| {
            let text = String::from_utf8_lossy(raw);
            let start = text.find("Message-ID: <")? + 13;
            let end = text[start..].find('@')?;
            Some(text[start..start + end].to_owned())
        })
        .collect();
    for tag in &answered {
        assert!(
            stored.contains(tag),
            "{tag} was answered 250 but is not stored"
        );
    }
    // Each stored message has its job.
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'direct.receive'")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(jobs as usize, stored.len());
    assert!(stored.len() >= answered.len());
    // A restarted gateway listens again.
    let mut c = Client::connect(gw.smtp.unwrap()).await;
    assert_eq!(c.reply().await.0, 220);
    drop(c);
    db.close().await;
    let (status, log) = gw.terminate();
    assert!(status.success(), "{log}");
    // No message content reaches the log.
    assert!(
        !log.contains(&"y".repeat(100)) && !log.contains("crash-0-"),
        "{log}"
    );
}

// ---- random input ------------------------------------------------------------------------

/// Random command lines, pipelined or one at a time, over an in-memory stream: the session
/// never panics and answers every line exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_command_lines_each_get_one_reply() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config as RunnerConfig, TestRunner};

    let app = gateway(|_| {}).await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let ctx = std::sync::Arc::new(hisp_gateway::smtp::session::Context::from_state(
        &app.state, shutdown,
    ));
    let line = prop_oneof![
        Just("EHLO a.example".to_owned()),
        Just("HELO a.example".to_owned()),
        Just(format!("MAIL FROM:<{PEER}>")),
        Just("MAIL FROM:<>".to_owned()),
        Just(format!("RCPT TO:<{BEN}>")),
        Just("RCPT TO:<x@elsewhere.example>".to_owned()),
        Just("RSET".to_owned()),
        Just("NOOP".to_owned()),
        Just("VRFY ben".to_owned()),
        Just("AUTH PLAIN AAAA".to_owned()),
        Just("BDAT 10 LAST".to_owned()),
        "(MAIL|RCPT|EHLO|HELO|mail from:|rcpt to:)[ -~]{0,80}",
        "[\\x00-\\x09\\x0b-\\xff]{0,120}".prop_map(|s: String| s),
        "[a-zA-Z]{1,8} [ -~<>:@=]{0,40}",
        (1000usize..3000).prop_map(|n| "Z".repeat(n)),
    ];
    let lines = proptest::collection::vec(line, 1..24);
    let mut runner = TestRunner::new(RunnerConfig {
        cases: 48,
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let handle = tokio::runtime::Handle::current();
    let result = tokio::task::block_in_place(|| {
        runner.run(&(lines, any::<bool>()), |(lines, pipelined)| {
            let ctx = ctx.clone();
            handle.block_on(async move {
                let (client, server) = tokio::io::duplex(256 * 1024);
                let peer: SocketAddr = "192.0.2.7:40000".parse().unwrap();
                let session = tokio::spawn(async move {
                    let _ = hisp_gateway::smtp::session::run(server, &ctx, peer, false).await;
                });
                let mut c = Client::over(client);
                assert_eq!(c.reply().await.0, 220);
                let wire: Vec<Vec<u8>> = lines
                    .iter()
                    .map(|l| {
                        // Strings of arbitrary chars: keep them one line each.
                        let mut b: Vec<u8> = l.bytes().filter(|&b| b != b'\n').collect::<Vec<u8>>();
                        b.extend_from_slice(b"\r\n");
                        b
                    })
                    .collect();
                if pipelined {
                    c.send(&wire.concat()).await;
                    for _ in &wire {
                        let (code, text) = c.reply().await;
                        assert!((200..600).contains(&code), "{text}");
                    }
                } else {
                    for l in &wire {
                        c.send(l).await;
                        let (code, text) = c.reply().await;
                        assert!((200..600).contains(&code), "{text}");
                    }
                }
                c.send(b"QUIT\r\n").await;
                assert_eq!(c.reply().await.0, 221);
                session.await.expect("the session panicked");
            });
            Ok(())
        })
    });
    result.unwrap();
}
