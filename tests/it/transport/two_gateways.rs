//! Messages between two gateways over SMTP, with MDNs driving the sender's statuses.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::*;

/// The attachments the receiving EHR got, by title, decoded.
fn attachments(inbound: &Value) -> Vec<Vec<u8>> {
    inbound["emailAttachmentList"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|a| {
            STANDARD
                .decode(a["attachmentContent"].as_str().unwrap())
                .unwrap()
        })
        .collect()
}

#[tokio::test]
async fn a_message_crosses_to_the_other_gateway_and_its_mdns_come_back() {
    let (a, b) = pair().await;

    // A → B: ada to ben, timely & reliable.
    a.send(
        ADA,
        &[BEN],
        "urn:uuid:5f0c2d6e-1e6a-4d0e-9a55-0a1b2c3d4e01",
        true,
    )
    .await;
    settle(&[&a, &b]).await;
    let got = b.inbox.accepted();
    assert_eq!(got.len(), 1, "ben's EHR got the message once");
    let inbound = got[0].json();
    assert_eq!(inbound["fromDirectAddress"], ADA, "{inbound}");
    assert_eq!(inbound["toDirectAddress"], BEN, "{inbound}");
    assert_eq!(inbound["messageSubject"], "Referral", "{inbound}");
    let files = attachments(&inbound);
    assert!(
        files.contains(&crate::messaging::ccda()),
        "the C-CDA arrives byte for byte"
    );
    assert!(
        files.contains(&crate::messaging::binary_pdf()),
        "the PDF arrives byte for byte"
    );
    let id = "urn:uuid:5f0c2d6e-1e6a-4d0e-9a55-0a1b2c3d4e01";
    let words: Vec<String> = a
        .notifications(id, BEN)
        .into_iter()
        .map(|(s, d)| format!("{s}/{d}"))
        .collect();
    assert_eq!(
        words,
        ["Success/processed", "Success/dispatched"],
        "A's vendor hears processed then dispatched, once each"
    );
    assert_eq!(a.statuses(ADA, id).await[0].1, "DISPATCHED");
    assert!(
        b.inbound_mail()
            .await
            .iter()
            .all(|(state, _)| state == "accepted"),
        "{:?}",
        b.inbound_mail().await
    );

    // And back: ben answers ada.
    b.send(
        BEN,
        &[ADA],
        "urn:uuid:5f0c2d6e-1e6a-4d0e-9a55-0a1b2c3d4e02",
        true,
    )
    .await;
    settle(&[&a, &b]).await;
    let got = a.inbox.accepted();
    assert_eq!(got.len(), 1, "ada's EHR got ben's answer");
    assert_eq!(got[0].json()["fromDirectAddress"], BEN);
    let back = "urn:uuid:5f0c2d6e-1e6a-4d0e-9a55-0a1b2c3d4e02";
    assert_eq!(b.statuses(BEN, back).await[0].1, "DISPATCHED");

    // The gateways spoke STARTTLS (B offers it; A takes it whenever offered).
    let tls: Option<bool> = sqlx::query_scalar("SELECT bool_and(tls) FROM inbound_mail")
        .fetch_one(&b.f.app.db.pool)
        .await
        .unwrap();
    assert_eq!(tls, Some(true));

    // B's ops see the mail and the message: its listing, and the report like any message.
    let listed: Value =
        b.f.app
            .http
            .get(b.f.app.url("/api/v1/transport/inbound?state=accepted"))
            .basic_auth(b.ops.0, Some(&b.ops.1))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["rcptTo"][0] == BEN && m["mailFrom"] == ADA),
        "{listed}"
    );
    // Only ops may list it, and a bad filter is named.
    for (who, query, want, field) in [
        (&b.vendor, "", 403, None),
        (&b.ops, "?limit=0", 400, Some("limit")),
        (&b.ops, "?limit=100000", 400, Some("limit")),
        (&b.ops, "?state=lost", 400, Some("state")),
    ] {
        let r =
            b.f.app
                .http
                .get(b.f.app.url(&format!("/api/v1/transport/inbound{query}")))
                .basic_auth(who.0, Some(&who.1))
                .send()
                .await
                .unwrap();
        assert_eq!(r.status(), want, "{query}");
        let v: Value = r.json().await.unwrap();
        if let Some(field) = field {
            assert_eq!(v["error"]["field"], field, "{v}");
        }
    }
    let report: Value =
        b.f.app
            .http
            .get(
                b.f.app
                    .url(&format!("/api/v1/reports/messages?domain={LAKESIDE}")),
            )
            .basic_auth(b.ops.0, Some(&b.ops.1))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert!(
        report
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["from"] == ADA && r["to"] == BEN),
        "{report}"
    );

    // Ben's EHR reports it displayed: a displayed MDN goes back and A's vendor hears of it.
    let receipt =
        b.f.app
            .post_json_as(
                "/MessagingAPI/dirmsg/receipt",
                &b.vendor,
                &json!({
                    "messageId": inbound["messageId"],
                    "fromDirectAddress": ADA,
                    "toDirectAddress": BEN,
                    "disposition": "displayed",
                }),
            )
            .await;
    assert_eq!(receipt.status(), 200, "{}", receipt.text().await.unwrap());
    settle(&[&a, &b]).await;
    assert_eq!(a.statuses(ADA, id).await[0].1, "DISPLAYED");
    assert_eq!(
        a.notifications(id, BEN).last().unwrap(),
        &("Success".to_owned(), "displayed".to_owned())
    );

    // MDNs are never answered with MDNs: A took ben's message and three MDNs (processed,
    // dispatched, displayed), B took ada's message and two.
    assert_eq!(
        a.inbound_mail().await.len(),
        4,
        "{:?}",
        a.inbound_mail().await
    );
    assert_eq!(
        b.inbound_mail().await.len(),
        3,
        "{:?}",
        b.inbound_mail().await
    );
}

#[tokio::test]
async fn one_send_gives_each_recipient_its_own_outcome() {
    let (a, b) = pair().await;
    let id = "urn:uuid:5f0c2d6e-1e6a-4d0e-9a55-0a1b2c3d4e03";
    // dee is local to A; ben and cy are on B; zed's domain publishes no certificate.
    a.send(ADA, &[DEE, BEN, CY, "zed@nowhere.example.net"], id, true)
        .await;
    settle(&[&a, &b]).await;
    let st = a.statuses(ADA, id).await;
    let by = |r: &str| st.iter().find(|(x, _, _)| x == r).cloned().unwrap();
    assert_eq!(by(DEE).1, "DISPATCHED", "{st:?}");
    assert_eq!(by(BEN).1, "DISPATCHED", "{st:?}");
    assert_eq!(by(CY).1, "DISPATCHED", "{st:?}");
    let zed = by("zed@nowhere.example.net");
    assert_eq!(zed.1, "FAILED", "{st:?}");
    assert!(zed.2.contains("5.7.31"), "no certificate: {zed:?}");
    assert_eq!(
        a.notifications(id, "zed@nowhere.example.net"),
        [("Error".to_owned(), zed.2.clone())],
        "one Error notification"
    );
    // B got one SMTP transaction for both of its recipients.
    let mail = b.inbound_mail().await;
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert_eq!(b.inbox.accepted().len(), 2, "ben and cy each got it");
}

#[tokio::test]
async fn a_peer_550_fails_the_recipient_with_the_peers_words() {
    let (a, b) = pair().await;
    let id = "urn:uuid:5f0c2d6e-1e6a-4d0e-9a55-0a1b2c3d4e04";
    a.send(ADA, &[BEN, "nobody@lakeside.direct.example.org"], id, true)
        .await;
    settle(&[&a, &b]).await;
    let st = a.statuses(ADA, id).await;
    let nobody = st.iter().find(|(r, _, _)| r.starts_with("nobody")).unwrap();
    assert_eq!(nobody.1, "FAILED", "{st:?}");
    assert!(nobody.2.starts_with("9006"), "{nobody:?}");
    assert!(
        nobody.2.contains("5.1.1"),
        "the peer's own reply: {nobody:?}"
    );
    let ben = st.iter().find(|(r, _, _)| r == BEN).unwrap();
    assert_eq!(ben.1, "DISPATCHED", "ben is not held up by nobody: {st:?}");
}

#[tokio::test]
async fn a_peer_that_is_down_is_retried_then_failed_once() {
    let a = Hisp::harbor().await;
    let (sink, addr) = SmtpSink::start().await;
    // A domain whose certificate A knows, routed to a port where nothing listens.
    let b = Hisp::lakeside().await;
    a.trust(&b.root_pem().await).await;
    a.trust(&b.issuing_pem().await).await;
    for pem in b.certificates_pem().await {
        a.add_peer_certificate(LAKESIDE, &pem).await;
    }
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    a.route(LAKESIDE, dead);
    let id = "urn:uuid:5f0c2d6e-1e6a-4d0e-9a55-0a1b2c3d4e05";
    a.send(ADA, &[BEN], id, true).await;
    // Each attempt fails; the worker's clock is stepped past each retry delay, and stays well
    // before the message's one-hour timeout.
    for i in 1..=6 {
        a.f.app
            .worker
            .run_due_at(Utc::now() + chrono::Duration::seconds(40 * i))
            .await
            .unwrap();
    }
    let st = a.statuses(ADA, id).await;
    assert_eq!(st[0].1, "FAILED", "{st:?}");
    assert!(st[0].2.starts_with("9004"), "{st:?}");
    assert_eq!(
        a.notifications(id, BEN)
            .iter()
            .filter(|(s, _)| s == "Error")
            .count(),
        1
    );
    // Brought back, the route works again for the next message.
    a.route(LAKESIDE, addr);
    a.send(
        ADA,
        &[BEN],
        "urn:uuid:5f0c2d6e-1e6a-4d0e-9a55-0a1b2c3d4e06",
        true,
    )
    .await;
    a.drain().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(sink.captured().len(), 1);
}

#[tokio::test]
async fn mdns_late_or_repeated_change_nothing_and_are_never_answered() {
    let (a, b) = pair().await;
    // B's MDNs to Harbor are caught on the way, to be replayed to A in a bad order.
    let (sink, addr) = SmtpSink::start().await;
    b.route(HARBOR, addr);

    // Dispatched is reported only when the sender asked for it.
    let plain = "urn:uuid:5f0c2d6e-1e6a-4d0e-9a55-0a1b2c3d4e07";
    a.send(ADA, &[BEN], plain, false).await;
    settle(&[&a, &b]).await;
    assert_eq!(sink.captured().len(), 1, "processed only");

    let id = "urn:uuid:5f0c2d6e-1e6a-4d0e-9a55-0a1b2c3d4e08";
    a.send(ADA, &[BEN], id, true).await;
    settle(&[&a, &b]).await;
    let mdns = sink.captured();
    assert_eq!(mdns.len(), 3, "processed and dispatched for the second");
    let (processed, dispatched) = (&mdns[1].data, &mdns[2].data);
    // One at a time: A processes the mail it takes in no particular order.
    for raw in [dispatched, processed, dispatched] {
        assert_eq!(inject(a.smtp(), None, &[ADA], raw).await, "250");
        a.drain().await;
    }
    assert_eq!(a.statuses(ADA, id).await[0].1, "DISPATCHED");
    // Dispatched first implies processed (the vendor still hears both, in order); the late
    // processed and the repeated dispatched change nothing.
    assert_eq!(
        a.notifications(id, BEN),
        [
            ("Success".to_owned(), "processed".to_owned()),
            ("Success".to_owned(), "dispatched".to_owned())
        ],
    );
    let events: Vec<(String, bool)> = sqlx::query_as(
        "SELECT e.status, e.applied FROM message_events e JOIN messages m ON m.id = e.message_id
         WHERE m.vendor_message_id = $1 AND e.recipient = $2 ORDER BY e.id",
    )
    .bind(id)
    .bind(BEN)
    .fetch_all(&a.f.app.db.pool)
    .await
    .unwrap();
    let p = |s: &str, a: bool| (s.to_owned(), a);
    assert_eq!(
        events,
        [
            p("PROCESSED", true),
            p("DISPATCHED", true),
            p("PROCESSED", false),
            p("PROCESSED", false),
            p("DISPATCHED", false)
        ],
        "the late processed and the repeated dispatched (with the processed it implies) are \
         recorded, not applied"
    );
    let replays = a.inbound_mail().await;
    assert_eq!(replays.len(), 3, "{replays:?}");
    // A answered none of them: B received only the two messages.
    settle(&[&a, &b]).await;
    assert_eq!(b.inbound_mail().await.len(), 2);
}

#[tokio::test]
async fn a_delivery_that_fails_on_the_receiving_side_comes_back_as_a_failed_mdn() {
    let (a, b) = pair().await;
    b.inbox.answer(500);
    let id = "urn:uuid:5f0c2d6e-1e6a-4d0e-9a55-0a1b2c3d4e09";
    a.send(ADA, &[BEN], id, true).await;
    settle(&[&a, &b]).await;
    assert_eq!(a.statuses(ADA, id).await[0].1, "PROCESSED");
    // B's pushes fail until its last attempt; its clock is stepped past each retry delay.
    for i in 1..=6 {
        b.f.app
            .worker
            .run_due_at(Utc::now() + chrono::Duration::seconds(40 * i))
            .await
            .unwrap();
    }
    settle(&[&a, &b]).await;
    let st = a.statuses(ADA, id).await;
    assert_eq!(st[0].1, "FAILED", "{st:?}");
    assert!(
        st[0].2.starts_with("9006: ERROR=RecipientRejected"),
        "{st:?}"
    );
    assert_eq!(
        a.notifications(id, BEN)
            .iter()
            .map(|(s, _)| s.as_str())
            .collect::<Vec<_>>(),
        ["Success", "Error"],
        "processed, then the failure, once"
    );
}

#[tokio::test]
async fn a_message_over_the_peers_size_limit_fails_as_too_large() {
    let (a, b) = pair_with(|c| c.smtp.max_message_bytes = 64 * 1024).await;
    let id = "urn:uuid:5f0c2d6e-1e6a-4d0e-9a55-0a1b2c3d4e10";
    // The C-CDA and the PDF sealed are well over 64 KiB.
    a.send(ADA, &[BEN], id, true).await;
    settle(&[&a, &b]).await;
    let st = a.statuses(ADA, id).await;
    assert_eq!(st[0].1, "FAILED", "{st:?}");
    assert!(
        st[0].2.starts_with("9007: ERROR=MessageTooLarge (552"),
        "{st:?}"
    );
    assert!(b.inbound_mail().await.is_empty(), "B kept nothing");
}

#[tokio::test]
async fn an_xdm_package_crosses_and_is_unpacked_for_the_receiving_ehr() {
    let (a, b) = pair().await;
    b.put_endpoint(
        BEN,
        json!({"inboundUrl": b.inbox.url("/inbound"), "xdmDelivery": "unpacked"}),
    )
    .await;
    let id = "urn:uuid:5f0c2d6e-1e6a-4d0e-9a55-0a1b2c3d4e11";
    a.send_as(ADA, &[BEN], id, true, true).await;
    settle(&[&a, &b]).await;
    let got = b.inbox.accepted();
    assert_eq!(got.len(), 1);
    let files = attachments(&got[0].json());
    assert!(
        files.contains(&crate::messaging::ccda()),
        "the C-CDA comes out of the package byte for byte"
    );
    assert_eq!(a.statuses(ADA, id).await[0].1, "DISPATCHED");
}

#[tokio::test]
async fn a_dsn_from_the_peer_fails_the_recipient_it_names() {
    use hisp_gateway::direct::smime::{self, Algorithms, Envelope, Signer};
    use hisp_gateway::domain::pki::{DirectAddress, KeyUse};

    let (a, b) = pair().await;
    // A's message is caught on its way, so that B's MTA can report on it instead.
    let (sink, addr) = SmtpSink::start().await;
    a.route(LAKESIDE, addr);
    let id = "urn:uuid:5f0c2d6e-1e6a-4d0e-9a55-0a1b2c3d4e12";
    a.send(ADA, &[BEN, CY], id, true).await;
    a.drain().await;
    let wire = String::from_utf8(sink.captured()[0].data.clone()).unwrap();
    let original = wire
        .lines()
        .find_map(|l| l.strip_prefix("Message-ID: "))
        .unwrap()
        .trim()
        .to_owned();

    let daemon = format!("MAILER-DAEMON@{LAKESIDE}");
    let dsn = format!(
        "From: {daemon}\r\nTo: {ADA}\r\nSubject: Undelivered Mail Returned to Sender\r\n\
         Message-ID: <dsn-1@{LAKESIDE}>\r\nX-Original-Message-ID: {original}\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n\
         --b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.{LAKESIDE}\r\n\r\n\
         Final-Recipient: rfc822; {BEN}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n\
         Final-Recipient: rfc822; {CY}\r\nAction: delayed\r\nStatus: 4.4.1\r\n\r\n--b1--\r\n"
    );
    // Signed with B's domain certificate, encrypted to A's certificates, as B would.
    let now = Utc::now();
    let (cert, key) = pki::credentials_for(
        &b.f.app.db.pool,
        &b.f.app.state.pki,
        &DirectAddress::parse(&daemon).unwrap(),
        KeyUse::Signing,
        now,
    )
    .await
    .unwrap()
    .unwrap();
    let chain: Vec<_> = pki::authority_certificate(&b.f.app.db.pool, pki::ISSUING)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let to: Vec<openssl::x509::X509> = a
        .certificates_pem()
        .await
        .iter()
        .map(|p| openssl::x509::X509::from_pem(p.as_bytes()).unwrap())
        .collect();
    let sealed = smime::seal_notification(
        dsn.as_bytes(),
        &Envelope {
            from: &daemon,
            to: &[ADA.to_owned()],
            message_id: &format!("<dsn-1@{LAKESIDE}>"),
            date: now,
            subject: "Direct message",
            request_final_delivery: false,
        },
        &Signer {
            cert: &cert,
            key: &key,
            chain: &chain,
        },
        &to,
        Algorithms::default(),
    )
    .unwrap();
    assert_eq!(inject(a.smtp(), None, &[ADA], &sealed).await, "250");
    a.drain().await;
    let st = a.statuses(ADA, id).await;
    let ben = st.iter().find(|(r, _, _)| r == BEN).unwrap();
    assert_eq!(ben.1, "FAILED", "{st:?}");
    assert_eq!(ben.2, "9006: ERROR=RecipientRejected (5.1.1)", "{st:?}");
    let cy = st.iter().find(|(r, _, _)| r == CY).unwrap();
    assert_eq!(cy.1, "SMTPINIT", "a delayed action changes nothing: {st:?}");
    assert_eq!(a.inbound_mail().await[0].0, "accepted");
}
