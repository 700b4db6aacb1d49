//! Delivery notifications as peers write them: a hand-written MDN in the shape other HISPs
//! send (LF line endings, folded fields, spaces after semicolons), and a DSN from an MTA.

use hisp_gateway::direct::mdn::{self, Disposition, DsnRecipient, Notification};

const PEER_MDN: &str = "\
Return-Path: <bob@b.example>
From: bob@b.example
To: alice@a.example
Message-ID: <a1b2c3@b.example>
Date: Wed, 15 Nov 2023 10:00:00 -0500
Subject: Dispatched: Referral
MIME-Version: 1.0
Content-Type: multipart/report;
\treport-type=\"disposition-notification\";
\tboundary=\"----=_Part_0_123.456\"

------=_Part_0_123.456
Content-Type: text/plain; charset=us-ascii
Content-Transfer-Encoding: 7bit

Your message was successfully dispatched.
------=_Part_0_123.456
Content-Type: message/disposition-notification
Content-Transfer-Encoding: 7bit

Reporting-UA: b.example; Direct Java RI
Original-Recipient: rfc822; bob@b.example
Final-Recipient: rfc822; bob@b.example
Original-Message-ID: <outer-1@a.example>
Disposition: automatic-action/MDN-sent-automatically;
 dispatched
X-DIRECT-FINAL-DESTINATION-DELIVERY: 

------=_Part_0_123.456--
";

const PEER_FAILED_MDN: &str = "From: bob@b.example\r\nTo: alice@a.example\r\nSubject: failed\r\nContent-Type: multipart/report; report-type=disposition-notification; boundary=xyz\r\n\r\n--xyz\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--xyz\r\nContent-Type: message/disposition-notification\r\nContent-Transfer-Encoding: base64\r\n\r\nUmVwb3J0aW5nLVVBOiBiLmV4YW1wbGUNCkZpbmFsLVJlY2lwaWVudDogcmZjODIyO2JvYkBiLmV4YW1wbGUNCk9yaWdpbmFsLU1lc3NhZ2UtSUQ6IDxvdXRlci0yQGEuZXhhbXBsZT4NCkRpc3Bvc2l0aW9uOiBhdXRvbWF0aWMtYWN0aW9uL01ETi1zZW50LWF1dG9tYXRpY2FsbHk7IGZhaWxlZC9lcnJvcg0KRmFpbHVyZTogbWFpbGJveCBmdWxsDQo=\r\n--xyz--\r\n";

const DSN: &str = "\
From: MAILER-DAEMON@mx.b.example
To: alice@a.example
Subject: Undelivered Mail Returned to Sender
Message-ID: <dsn-9@mx.b.example>
X-Original-Message-ID: <outer-3@a.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
 boundary=\"DSN.boundary\"

--DSN.boundary
Content-Type: text/plain

Delivery to the following recipients failed.
--DSN.boundary
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.b.example
Original-Envelope-Id: env-77
Arrival-Date: Wed, 15 Nov 2023 10:00:00 -0500

Final-Recipient: rfc822; bob@b.example
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 user unknown

Final-Recipient: rfc822;carol@b.example
Action: Delayed
Status: 4.4.1

--DSN.boundary
Content-Type: text/rfc822-headers

From: alice@a.example
Message-ID: <outer-3-inner@a.example>

--DSN.boundary--
";

#[test]
fn an_mdn_written_by_a_peer_hisp_parses() {
    assert!(mdn::is_notification(PEER_MDN.as_bytes()));
    assert_eq!(
        mdn::parse(PEER_MDN.as_bytes()),
        Some(Notification::Mdn {
            original_message_id: "<outer-1@a.example>".into(),
            final_recipient: Some("bob@b.example".into()),
            disposition: Disposition::Dispatched,
            extension_final_delivery: true,
        })
    );
    assert_eq!(
        mdn::parse(PEER_FAILED_MDN.as_bytes()),
        Some(Notification::Mdn {
            original_message_id: "<outer-2@a.example>".into(),
            final_recipient: Some("bob@b.example".into()),
            disposition: Disposition::Failed,
            extension_final_delivery: false,
        })
    );
}

#[test]
fn a_dsn_parses_with_each_recipient() {
    assert!(mdn::is_notification(DSN.as_bytes()));
    assert_eq!(
        mdn::parse(DSN.as_bytes()),
        Some(Notification::Dsn {
            original_envelope_id: Some("env-77".into()),
            original_message_id: Some("<outer-3@a.example>".into()),
            recipients: vec![
                DsnRecipient {
                    final_recipient: "bob@b.example".into(),
                    action: "failed".into(),
                    status: "5.1.1".into(),
                    diagnostic: Some("smtp; 550 5.1.1 user unknown".into()),
                },
                DsnRecipient {
                    final_recipient: "carol@b.example".into(),
                    action: "delayed".into(),
                    status: "4.4.1".into(),
                    diagnostic: None,
                },
            ],
        })
    );
    // Without the X-Original-Message-ID header the returned headers name the message.
    let bare = DSN.replace("X-Original-Message-ID: <outer-3@a.example>\n", "");
    assert!(matches!(
        mdn::parse(bare.as_bytes()),
        Some(Notification::Dsn { original_message_id: Some(id), .. }) if id == "<outer-3-inner@a.example>"
    ));
}

#[test]
fn an_unreadable_report_is_still_a_notification() {
    let broken = "From: a@b\r\nContent-Type: multipart/report; report-type=disposition-notification; boundary=q\r\n\r\n--q\r\nContent-Type: text/plain\r\n\r\nhi\r\n--q--\r\n";
    assert!(mdn::is_notification(broken.as_bytes()));
    assert_eq!(mdn::parse(broken.as_bytes()), None);
}
