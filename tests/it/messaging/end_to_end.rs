//! Vendor A sends a raw and an XDM message to two addresses of vendor B.

use std::collections::HashMap;
use std::io::Read;

use super::*;

#[tokio::test]
async fn raw_and_xdm_messages_reach_both_recipients_with_signed_notifications() {
    let w = World::new().await;
    let to = format!("{BEN},{CY}");
    let raw_id = "urn:uuid:a2d59543-91f4-45a4-99ef-72d70da1e454";
    let xdm_id = "urn:uuid:0b6f3c2e-5d1a-4f7e-9c4b-2a8e6d1f3b70";

    let reply = w.send_ok(&message(raw_id, &to, false)).await;
    assert_eq!(reply["messageId"], raw_id);
    assert_eq!(reply["status"], "SUCCESS");
    assert_eq!(reply["result"], "Message parse successfully");
    assert!(Uuid::parse_str(reply["transactionId"].as_str().unwrap()).is_ok());
    let reply = w.send_ok(&message(xdm_id, &to, true)).await;
    assert_eq!(reply["messageId"], xdm_id);

    // Accepted, not yet delivered: every recipient waits.
    for (_, s) in w.statuses(raw_id).await {
        assert_eq!(s, "SMTPINIT");
    }

    w.drain().await;

    // B's EHR got four pushes (two messages x two recipients), with B's credentials.
    let pushes = w.inbox.accepted();
    assert_eq!(pushes.len(), 4, "{pushes:#?}");
    let b_secret: Value = w
        .get_as(&w.vendor_b, "/api/v1/messaging/signing-secret")
        .await
        .json()
        .await
        .unwrap();
    let b_key = SigningKey::from_whsec(b_secret["secret"].as_str().unwrap()).unwrap();
    let mut by_recipient: HashMap<(String, bool), Value> = HashMap::new();
    for p in &pushes {
        assert_eq!(p.path, "/inbound");
        assert_signed(p, &b_key);
        assert_eq!(p.header("webhook-id"), p.header("idempotency-key"));
        assert_eq!(
            p.header("authorization"),
            format!("Basic {}", STANDARD.encode("medallies:s3cret"))
        );
        let body = p.json();
        assert_eq!(body["fromDirectAddress"], SENDER);
        let key = (
            body["toDirectAddress"].as_str().unwrap().to_owned(),
            body["xdm"].as_bool().unwrap(),
        );
        assert!(by_recipient.insert(key, body).is_none(), "pushed twice");
    }

    for rcpt in [BEN, CY] {
        // The raw message: both documents, byte for byte, with titles and file names.
        let raw = &by_recipient[&(rcpt.to_owned(), false)];
        assert_eq!(raw["messageSubject"], "Referral");
        assert_eq!(
            raw["messageBody"],
            "Clinical Report for Patient Ralph Kramden. Please find attached clinical report"
        );
        assert_eq!(raw["patientLastname"], "Kramden");
        assert_eq!(
            raw["replyToMessageId"],
            "2ea5021a-0c52-470a-8635-7aee90e5be34"
        );
        assert_eq!(raw["asmEnabled"], true);
        let got = attachments(raw);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, "text/xml");
        assert_eq!(got[0].1.as_deref(), Some("Continuity of Care Document"));
        assert_eq!(got[0].3, ccda());
        assert_eq!(got[1].0, "application/pdf");
        assert_eq!(got[1].2.as_deref(), Some("referral.pdf"));
        assert_eq!(got[1].3, binary_pdf());

        // The XDM message: one zip whose documents are the ones sent.
        let xdm = &by_recipient[&(rcpt.to_owned(), true)];
        let got = attachments(xdm);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "application/zip");
        assert!(got[0].2.as_deref().unwrap().ends_with("-xdm.zip"));
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(got[0].3.clone())).unwrap();
        let mut docs = Vec::new();
        for i in 0..zip.len() {
            let mut f = zip.by_index(i).unwrap();
            let name = f.name().unwrap().to_string();
            if f.is_file()
                && name.starts_with("IHE_XDM/SUBSET01/")
                && !name.ends_with("METADATA.XML")
            {
                let mut buf = Vec::new();
                f.read_to_end(&mut buf).unwrap();
                docs.push(buf);
            }
        }
        assert_eq!(docs, vec![ccda(), binary_pdf()]);
        // Explicit directory entries, and METADATA.XML listing each document with the size
        // and SHA-1 of the bytes in the zip.
        for dir in ["IHE_XDM/", "IHE_XDM/SUBSET01/"] {
            assert!(zip.by_name(dir).unwrap().is_dir(), "{dir}");
        }
        for name in ["INDEX.HTM", "README.TXT"] {
            assert!(zip.by_name(name).is_ok(), "{name}");
        }
        let listed = hisp_gateway::direct::xdm::read_metadata(&got[0].3).unwrap();
        assert_eq!(listed.len(), 2);
        for (doc, bytes) in listed.iter().zip([ccda(), binary_pdf()]) {
            assert_eq!(doc.size, bytes.len() as u64);
            let sha1: String = openssl::sha::sha1(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(doc.hash.to_ascii_lowercase(), sha1);
        }
    }

    // Each recipient of each message: DISPATCHED.
    for id in [raw_id, xdm_id] {
        assert_eq!(
            w.statuses(id).await,
            vec![
                (BEN.to_owned(), "DISPATCHED".to_owned()),
                (CY.to_owned(), "DISPATCHED".to_owned())
            ]
        );
        // Exactly one processed and one dispatched notification per recipient, signed.
        let notes = w.notifications(id);
        let mut seen: Vec<(String, String)> = notes
            .iter()
            .map(|n| {
                assert_eq!(n["Status"], "Success");
                assert_eq!(
                    n["Disposition"],
                    format!(
                        "action/MDN-sent-automatically;{}",
                        n["Description"].as_str().unwrap()
                    )
                );
                assert!(n["Timestamp"].as_str().unwrap().ends_with('z'));
                (
                    n["Recipient"].as_str().unwrap().to_owned(),
                    n["Description"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            vec![
                (BEN.to_owned(), "dispatched".to_owned()),
                (BEN.to_owned(), "processed".to_owned()),
                (CY.to_owned(), "dispatched".to_owned()),
                (CY.to_owned(), "processed".to_owned()),
            ],
            "{notes:#?}"
        );
    }

    // Running the outbox again changes nothing: no second push, no second notification.
    let (pushed, notified) = (w.inbox.received().len(), w.dsn.received().len());
    w.drain().await;
    assert_eq!(w.inbox.received().len(), pushed);
    assert_eq!(w.dsn.received().len(), notified);

    // The status answer carries the spec's fields.
    let (code, v) = w.status(raw_id).await;
    assert_eq!(code, 200);
    let first = &v.as_array().unwrap()[0];
    assert_eq!(first["sender"], SENDER);
    assert_eq!(first["xdMsgId"], raw_id);
    let send_time = first["sendTime"].as_str().unwrap();
    assert!(
        chrono::NaiveDateTime::parse_from_str(send_time, "%Y-%m-%d %H:%M:%S%.f").is_ok(),
        "{send_time}"
    );
    assert!(first.get("failureReason").is_none());
}
