//! What the MedAllies seed (001) says and a vendor notices: failures of addresses we host come
//! at once and coded, notifications carry the time of their change and arrive in order, the
//! receiver sees the sender's messageId and text as sent, and a read receipt reaches the
//! sender.

use chrono::{DateTime, Utc};

use super::*;

fn description_of(n: &Value) -> String {
    n["Description"].as_str().unwrap().to_owned()
}

fn timestamp_of(n: &Value) -> DateTime<Utc> {
    let t = n["Timestamp"].as_str().unwrap();
    chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.fz")
        .unwrap_or_else(|e| panic!("{t}: {e}"))
        .and_utc()
}

#[tokio::test]
async fn an_unknown_address_at_a_hosted_domain_fails_at_once_with_a_code() {
    let w = World::new().await;
    let nobody = format!("nobody@{DOMAIN_B}");
    let id = "unknown-hosted-1";
    w.send_ok(&message(id, &format!("{nobody},{BEN}"), false))
        .await;
    w.drain().await;
    // Not routed as another HISP's (which would wait an hour): failed now, Ben delivered.
    assert_eq!(
        w.statuses(id).await,
        vec![
            (BEN.into(), "DISPATCHED".into()),
            (nobody.clone(), "FAILED".into())
        ]
    );
    let (_, v) = w.status(id).await;
    let row = v
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["recipient"] == nobody.as_str())
        .unwrap()
        .clone();
    assert_eq!(row["failureReason"], "9001: ERROR=RecipientUnknown");
    let errors: Vec<Value> = w
        .notifications(id)
        .into_iter()
        .filter(|n| n["Status"] == "Error")
        .collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(description_of(&errors[0]), "9001: ERROR=RecipientUnknown");
    assert_eq!(
        errors[0]["Disposition"],
        "action/MDN-sent-automatically;failed"
    );
    assert_eq!(errors[0]["Recipient"], nobody.as_str());
}

#[tokio::test]
async fn a_disabled_address_fails_with_its_code_and_no_internals() {
    let w = World::new().await;
    let r =
        w.f.app
            .http
            .put(w.url(&format!("/api/v1/addresses/{CY}/status")))
            .basic_auth(w.ops.0, Some(&w.ops.1))
            .json(&json!({"status": "disabled"}))
            .send()
            .await
            .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let id = "disabled-1";
    w.send_ok(&message(id, CY, false)).await;
    w.drain().await;
    let (_, v) = w.status(id).await;
    assert_eq!(v["status"], "FAILED");
    assert_eq!(v["failureReason"], "9003: ERROR=RecipientDisabled");
    assert!(w.inbox.received().is_empty());
    let notes = w.notifications(id);
    assert_eq!(notes.len(), 1);
    assert_eq!(description_of(&notes[0]), "9003: ERROR=RecipientDisabled");
}

#[tokio::test]
async fn notifications_carry_the_time_of_their_change_in_order_even_across_retries() {
    let w = World::new().await;
    // The sender's webhook is down at first: the processed notification must be retried, and
    // the dispatched one must wait for it rather than overtake it.
    w.dsn.answer(503);
    let id = "ordered-1";
    let before = Utc::now();
    w.send_ok(&message(id, BEN, false)).await;
    w.drain().await;
    assert_eq!(
        w.statuses(id).await,
        vec![(BEN.into(), "DISPATCHED".into())]
    );
    assert!(w.dsn.accepted().is_empty());
    let tried: Vec<String> = w
        .dsn
        .received()
        .iter()
        .map(|r| description_of(&r.json()))
        .collect();
    assert_eq!(
        tried,
        vec!["processed"],
        "only the first of the chain was tried"
    );

    w.dsn.answer(200);
    w.f.app
        .worker
        .run_due_at(Utc::now() + chrono::Duration::seconds(5))
        .await
        .unwrap();
    let notes = w.notifications(id);
    let words: Vec<String> = notes.iter().map(description_of).collect();
    assert_eq!(words, vec!["processed", "dispatched"]);
    let (processed, dispatched) = (timestamp_of(&notes[0]), timestamp_of(&notes[1]));
    assert!(processed < dispatched, "{processed} !< {dispatched}");
    // The times of the changes, not of the attempts that finally carried them.
    assert!(before <= processed, "{before} > {processed}");
    let delivered = w.inbox.accepted()[0].at;
    assert!(
        dispatched >= delivered,
        "{dispatched} before the delivery at {delivered}"
    );
    // And the status shows the last change's time.
    let (_, v) = w.status(id).await;
    let updated: DateTime<Utc> = v["updated"].as_str().unwrap().parse().unwrap();
    assert!(
        (updated - dispatched).num_milliseconds().abs() <= 1,
        "{updated} vs {dispatched}"
    );
}

#[tokio::test]
async fn the_receiver_gets_the_senders_message_id_and_text_as_sent() {
    let w = World::new().await;
    let id = "urn:uuid:6a7f2d0c-3b1e-4c5a-9d8f-1e2b3c4d5e6f";
    let mut m = message(id, BEN, false);
    m["messageBody"] = json!("Line one\nLine two\n\nSigned");
    m["messageSubject"] = json!("Référral — follow-up");
    // The seed's own example of a file name is a path.
    m["emailAttachmentList"][0]["attachmentFileName"] = json!("attachment/ccda");
    w.send_ok(&m).await;
    w.drain().await;
    let push = w.inbox.accepted()[0].json();
    assert_eq!(push["messageId"], id);
    assert_eq!(
        push["replyToMessageId"],
        "2ea5021a-0c52-470a-8635-7aee90e5be34"
    );
    assert_eq!(push["messageBody"], "Line one\nLine two\n\nSigned");
    assert_eq!(push["messageSubject"], "Référral — follow-up");
    let docs = attachments(&push);
    assert_eq!(docs[0].2.as_deref(), Some("ccda.xml"));
    assert_eq!(docs[0].3, ccda());
}

#[tokio::test]
async fn a_path_that_climbs_or_ends_empty_is_still_refused() {
    let w = World::new().await;
    for bad in ["attachment/..", "attachment/", "../../x"] {
        let mut m = message("bad-name", BEN, false);
        m["emailAttachmentList"][0]["attachmentFileName"] = json!(bad);
        let r = w.send(&m).await;
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap();
        assert_eq!(status, 400, "{bad}: {v}");
        assert_eq!(v["error"]["field"], "attachmentFileName", "{bad}");
    }
}

#[tokio::test]
async fn the_status_lists_the_seeds_fields_and_the_documented_extras_only() {
    let w = World::new().await;
    let id = "fields-1";
    w.send_ok(&message(id, &format!("nobody@{DOMAIN_B}"), false))
        .await;
    w.drain().await;
    let (_, v) = w.status(id).await;
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    // The seed's six, then ours as docs/api.md lists them.
    assert_eq!(
        keys,
        vec![
            "failureReason",
            "recipient",
            "sendTime",
            "sender",
            "status",
            "transactionId",
            "updated",
            "xdMsgId"
        ]
    );
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api.md")).unwrap();
    let docs = docs.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        docs.contains("two of ours, `transactionId` and `updated`"),
        "docs/api.md names the extras"
    );
}

/// Sends one message to Ben and delivers it: DISPATCHED.
async fn delivered(w: &World, id: &str) {
    w.send_ok(&message(id, BEN, false)).await;
    w.drain().await;
    assert_eq!(
        w.statuses(id).await,
        vec![(BEN.into(), "DISPATCHED".into())]
    );
}

async fn receipt(w: &World, who: &(Uuid, String), body: Value) -> (u16, Value) {
    let r =
        w.f.app
            .post_json_as("/MessagingAPI/dirmsg/receipt", who, &body)
            .await;
    (r.status().as_u16(), r.json().await.unwrap())
}

fn displayed(id: &str) -> Value {
    json!({"messageId": id, "fromDirectAddress": SENDER, "toDirectAddress": BEN, "disposition": "displayed"})
}

#[tokio::test]
async fn a_read_receipt_from_the_receiving_vendor_makes_the_senders_recipient_displayed() {
    let w = World::new().await;
    let id = "urn:uuid:7c1d0e2f-aaaa-4bbb-8ccc-0123456789ab";
    delivered(&w, id).await;

    // The sending vendor cannot claim its own message was read, nor can anyone name a
    // message the address did not receive.
    let (code, v) = receipt(&w, &w.vendor_a, displayed(id)).await;
    assert_eq!(code, 404, "{v}");
    let (code, v) = receipt(&w, &w.vendor_b, displayed("never-sent")).await;
    assert_eq!(code, 404, "{v}");
    let mut other = displayed(id);
    other["disposition"] = json!("deleted");
    let (code, v) = receipt(&w, &w.vendor_b, other).await;
    assert_eq!(
        (code, v["error"]["field"].as_str()),
        (400, Some("disposition")),
        "{v}"
    );
    let mut missing = displayed(id);
    missing.as_object_mut().unwrap().remove("toDirectAddress");
    let (code, v) = receipt(&w, &w.vendor_b, missing).await;
    assert_eq!(
        (code, v["error"]["field"].as_str()),
        (400, Some("toDirectAddress")),
        "{v}"
    );

    let (code, v) = receipt(&w, &w.vendor_b, displayed(id)).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        v,
        json!({"messageId": id, "toDirectAddress": BEN, "status": "DISPLAYED"})
    );
    w.drain().await;
    assert_eq!(w.statuses(id).await, vec![(BEN.into(), "DISPLAYED".into())]);
    let words: Vec<String> = w.notifications(id).iter().map(description_of).collect();
    assert_eq!(words, vec!["processed", "dispatched", "displayed"]);
    let last = w.notifications(id).pop().unwrap();
    assert_eq!(
        last["Disposition"],
        "action/MDN-sent-automatically;displayed"
    );

    // Again: the same answer, no second notification.
    let (code, v) = receipt(&w, &w.vendor_b, displayed(id)).await;
    assert_eq!((code, v["status"].as_str()), (200, Some("DISPLAYED")));
    w.drain().await;
    assert_eq!(w.notifications(id).len(), 3);
}

#[tokio::test]
async fn a_read_receipt_before_delivery_is_a_conflict() {
    let w = World::new().await;
    // Ben's EHR is down: the message is PROCESSED, not delivered.
    w.inbox.answer(503);
    let id = "early-receipt-1";
    w.send_ok(&message(id, BEN, false)).await;
    w.drain().await;
    let (code, v) = receipt(&w, &w.vendor_b, displayed(id)).await;
    assert_eq!(code, 409, "{v}");
    assert_eq!(w.statuses(id).await, vec![(BEN.into(), "PROCESSED".into())]);
}
