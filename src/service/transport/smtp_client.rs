//! One SMTP transaction to a peer HISP, with each recipient's own answer.
//!
//! lettre's one-call `send` gives up on the first refused recipient; a Direct message to a
//! domain goes to all its recipients in one transaction and each must get its own outcome
//! (550 for one fails that one only). So the transaction is driven command by command on
//! lettre's connection.

use std::net::SocketAddr;
use std::time::Duration;

use lettre::Address;
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::ClientId;

/// What the peer said about one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Taken: 250 to its RCPT and to the data.
    Accepted,
    /// Refused for good (5xx), with the peer's reply.
    Rejected(String),
    /// Refused for now (4xx), or the transaction did not finish: try again later.
    Deferred(String),
}

/// A peer to connect to, in order of preference.
#[derive(Debug, Clone)]
pub struct Peer {
    pub host: String,
    pub addr: SocketAddr,
    pub require_tls: bool,
}

/// Sends `message` to `recipients` through the first of `peers` that answers. `mail_from`
/// `None` is the null reverse path (`MAIL FROM:<>`), which MDNs use. Every recipient gets an
/// outcome; when no peer could be reached they are all `Deferred` with the last error.
pub async fn deliver(
    peers: &[Peer],
    hello: &str,
    mail_from: Option<&str>,
    recipients: &[String],
    message: &[u8],
    timeout: Duration,
) -> Vec<Outcome> {
    let mut last = "no mail server for the domain".to_owned();
    for peer in peers {
        match tokio::time::timeout(
            // One bound on the whole exchange, on top of lettre's per-read timeout: a peer that
            // trickles replies cannot hold the job forever.
            timeout * 4,
            transaction(peer, hello, mail_from, recipients, message, timeout),
        )
        .await
        {
            Ok(Ok(outcomes)) => return outcomes,
            Ok(Err(e)) => last = format!("{}: {e}", peer.host),
            Err(_) => last = format!("{}: timed out", peer.host),
        }
        tracing::info!(peer = %peer.host, error = %last, "SMTP peer unusable; trying the next");
    }
    recipients
        .iter()
        .map(|_| Outcome::Deferred(last.clone()))
        .collect()
}

/// `Err` when the transaction failed as a whole before any recipient was settled (connection,
/// greeting, TLS, MAIL refused for now); a MAIL refused for good rejects every recipient.
async fn transaction(
    peer: &Peer,
    hello: &str,
    mail_from: Option<&str>,
    recipients: &[String],
    message: &[u8],
    timeout: Duration,
) -> Result<Vec<Outcome>, String> {
    let client_id = ClientId::Domain(hello.to_owned());
    let mut conn =
        AsyncSmtpConnection::connect_tokio1(peer.addr, Some(timeout), &client_id, None, None)
            .await
            .map_err(|e| format!("connecting: {e}"))?;
    if conn.can_starttls() {
        // Opportunistic: the message is already signed and encrypted end to end, so the peer's
        // certificate is not what keeps it safe; TLS hides the envelope from the wire.
        let tls = TlsParameters::builder(peer.host.clone())
            .dangerous_accept_invalid_certs(true)
            .dangerous_accept_invalid_hostnames(true)
            .build_rustls()
            .map_err(|e| format!("TLS set-up: {e}"))?;
        conn.starttls(tls, &client_id)
            .await
            .map_err(|e| format!("STARTTLS: {e}"))?;
    } else if peer.require_tls {
        conn.abort().await;
        return Err("the route requires TLS and the peer does not offer STARTTLS".into());
    }
    let from = match mail_from {
        Some(f) => Some(f.parse::<Address>().map_err(|e| format!("sender: {e}"))?),
        None => None,
    };
    if let Err(e) = conn.command(Mail::new(from, vec![])).await {
        conn.abort().await;
        if e.is_permanent() {
            let text = reply(&e);
            return Ok(recipients
                .iter()
                .map(|_| Outcome::Rejected(text.clone()))
                .collect());
        }
        return Err(format!("MAIL: {e}"));
    }
    let mut outcomes = Vec::with_capacity(recipients.len());
    for r in recipients {
        let outcome = match r.parse::<Address>() {
            Err(e) => Outcome::Rejected(format!("not an address: {e}")),
            Ok(to) => match conn.command(Rcpt::new(to, vec![])).await {
                Ok(_) => Outcome::Accepted,
                Err(e) if e.is_permanent() => Outcome::Rejected(reply(&e)),
                Err(e) if e.is_transient() => Outcome::Deferred(reply(&e)),
                Err(e) => {
                    conn.abort().await;
                    return Err(format!("RCPT: {e}"));
                }
            },
        };
        outcomes.push(outcome);
    }
    if !outcomes.contains(&Outcome::Accepted) {
        let _ = conn.quit().await;
        return Ok(outcomes);
    }
    let data = async {
        conn.command(Data).await?;
        conn.message(message).await
    }
    .await;
    let _ = conn.quit().await;
    if let Err(e) = data {
        // The data was refused (or lost): nobody got it.
        let refused = if e.is_permanent() {
            Outcome::Rejected(reply(&e))
        } else {
            Outcome::Deferred(reply(&e))
        };
        for o in outcomes.iter_mut().filter(|o| **o == Outcome::Accepted) {
            *o = refused.clone();
        }
    }
    Ok(outcomes)
}

/// The peer's reply as it wrote it, `550 5.1.1 no such user`, from lettre's
/// `permanent error (550): 5.1.1 no such user`.
fn reply(e: &lettre::transport::smtp::Error) -> String {
    let text = e.to_string();
    ["permanent error (", "transient error ("]
        .iter()
        .find_map(|p| text.strip_prefix(p))
        .map(|rest| rest.replacen("): ", " ", 1))
        .unwrap_or(text)
}
