//! Delivery under trouble: a receiver that is down for a while or for good, a recipient that
//! never answers, late notifications, and the other inbound shapes.

use chrono::Utc;
use hisp_gateway::domain::failure::FailureCode;
use hisp_gateway::domain::messaging::Status;
use hisp_gateway::service::messaging::delivery::{self, Change};

use super::*;

#[tokio::test]
async fn a_receiver_down_then_up_gets_the_message_once() {
    let w = World::new().await;
    w.inbox.answer(503);
    let id = "down-then-up-1";
    w.send_ok(&message(id, BEN, false)).await;
    let t0 = Utc::now();
    w.drain().await;
    assert_eq!(w.inbox.received().len(), 1, "one failed attempt");
    assert!(w.inbox.accepted().is_empty());
    // Accepted for the recipient, not yet delivered.
    assert_eq!(w.statuses(id).await, vec![(BEN.into(), "PROCESSED".into())]);

    w.inbox.answer(200);
    // The retry is due within the first step of the schedule (2 s, jittered).
    w.f.app
        .worker
        .run_due_at(t0 + chrono::Duration::seconds(5))
        .await
        .unwrap();
    assert_eq!(w.inbox.accepted().len(), 1);
    assert_eq!(
        w.statuses(id).await,
        vec![(BEN.into(), "DISPATCHED".into())]
    );
    // Later runs push nothing more.
    w.f.app
        .worker
        .run_due_at(t0 + chrono::Duration::hours(2))
        .await
        .unwrap();
    assert_eq!(w.inbox.received().len(), 2);
    let words: Vec<String> = w
        .notifications(id)
        .iter()
        .map(|n| n["Description"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(words, vec!["processed", "dispatched"]);
}

#[tokio::test]
async fn a_receiver_down_for_good_ends_failed_with_one_error_notification() {
    let w = World::new().await;
    w.inbox.answer(500);
    let id = "down-for-good-1";
    w.send_ok(&message(id, BEN, false)).await;
    let mut t = Utc::now();
    // Four attempts (2 s, 8 s, 30 s apart, +-20 %): step past each.
    for _ in 0..6 {
        w.f.app.worker.run_due_at(t).await.unwrap();
        t += chrono::Duration::seconds(40);
    }
    assert_eq!(w.inbox.received().len(), 4, "every attempt of the schedule");
    let (code, v) = w.status(id).await;
    assert_eq!(code, 200);
    assert_eq!(v["status"], "FAILED");
    // The sender reads a code; the receiver's error stays with operators.
    let reason = v["failureReason"].as_str().unwrap();
    assert_eq!(reason, "9004: ERROR=DeliveryFailed");
    let report: Value = w
        .get_as(&w.ops, "/api/v1/reports/messages?format=json")
        .await
        .json()
        .await
        .unwrap();
    let row = &report.as_array().unwrap()[0];
    assert_eq!(row["failureReason"], reason);
    let detail = row["failureDetail"].as_str().unwrap();
    assert!(detail.contains("HTTP 500"), "{detail}");
    assert!(detail.contains("4 attempts"), "{detail}");

    let notes = w.notifications(id);
    let errors: Vec<&Value> = notes.iter().filter(|n| n["Status"] == "Error").collect();
    assert_eq!(errors.len(), 1, "{notes:#?}");
    assert_eq!(
        errors[0]["Disposition"],
        "action/MDN-sent-automatically;failed"
    );
    assert_eq!(errors[0]["Description"], reason);
    // The timeout later finds nothing to do: still one final notification.
    w.f.app
        .worker
        .run_due_at(Utc::now() + chrono::Duration::minutes(61))
        .await
        .unwrap();
    assert_eq!(w.notifications(id).len(), notes.len());
    assert_eq!(w.status(id).await.1["status"], "FAILED");
}

#[tokio::test]
async fn an_unanswered_recipient_times_out_at_the_configured_time_and_not_before() {
    let mut opts = TestOptions::default();
    opts.config.messaging.timeout = Duration::from_secs(5 * 60);
    let w = World::with(opts).await;
    // A recipient on another HISP: the Direct transport's work, so nothing answers yet.
    let remote = "someone@other-hisp.example.net";
    let id = "timeout-1";
    w.send_ok(&message(id, &format!("{BEN},{remote}"), false))
        .await;
    // A message with no local recipient at all is written by another statement.
    let only_remote = "timeout-2";
    w.send_ok(&message(only_remote, remote, false)).await;
    let accepted = Utc::now();
    w.drain().await;
    assert_eq!(
        w.statuses(only_remote).await,
        vec![(remote.into(), "SMTPINIT".into())]
    );
    assert_eq!(
        w.statuses(id).await,
        vec![
            (BEN.into(), "DISPATCHED".into()),
            (remote.into(), "SMTPINIT".into())
        ]
    );

    // One second before the timeout: still waiting, no error notification.
    let before =
        accepted + chrono::Duration::seconds(5 * 60 - 1) - chrono::Duration::milliseconds(500);
    w.f.app.worker.run_due_at(before).await.unwrap();
    assert_eq!(
        w.statuses(id).await,
        vec![
            (BEN.into(), "DISPATCHED".into()),
            (remote.into(), "SMTPINIT".into())
        ]
    );
    assert!(w.notifications(id).iter().all(|n| n["Status"] == "Success"));

    // At the timeout: FAILED-TO with its reason and exactly one Error notification; the
    // delivered recipient is untouched.
    w.f.app
        .worker
        .run_due_at(accepted + chrono::Duration::seconds(5 * 60 + 1))
        .await
        .unwrap();
    assert_eq!(
        w.statuses(id).await,
        vec![
            (BEN.into(), "DISPATCHED".into()),
            (remote.into(), "FAILED-TO".into())
        ]
    );
    assert_eq!(
        w.statuses(only_remote).await,
        vec![(remote.into(), "FAILED-TO".into())]
    );
    let (_, v) = w.status(id).await;
    let remote_row = v
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["recipient"] == remote)
        .unwrap();
    assert_eq!(remote_row["failureReason"], "9005: ERROR=NoFinalStatus");
    let errors: Vec<Value> = w
        .notifications(id)
        .into_iter()
        .filter(|n| n["Status"] == "Error")
        .collect();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["Recipient"], remote);
}

#[tokio::test]
async fn notifications_after_a_final_status_are_recorded_and_change_nothing() {
    let w = World::new().await;
    let id = "late-1";
    w.send_ok(&message(id, BEN, false)).await;
    w.drain().await;
    assert_eq!(
        w.statuses(id).await,
        vec![(BEN.into(), "DISPATCHED".into())]
    );
    let before = w.notifications(id).len();
    let message_uuid: Uuid =
        sqlx::query_scalar("SELECT id FROM messages WHERE vendor_message_id = $1")
            .bind(id)
            .fetch_one(&w.f.app.db.pool)
            .await
            .unwrap();
    let late = |status| Change {
        status,
        failure: Some(delivery::Failure {
            origin: "remote",
            code: FailureCode::RecipientRejected,
            detail: "late failure",
            public: None,
        }),
        notify: true,
    };
    let ctx = &w.f.app.state.messaging;
    let pool = &w.f.app.db.pool;
    for s in [Status::Failed, Status::Processed, Status::FailedTimeout] {
        let applied = delivery::apply(pool, ctx, message_uuid, BEN, late(s))
            .await
            .unwrap();
        assert!(!applied, "{s} after DISPATCHED");
    }
    // DISPLAYED is the one status DISPATCHED may still become; after it, nothing.
    let shown = Change {
        status: Status::Displayed,
        failure: None,
        notify: true,
    };
    assert!(
        delivery::apply(pool, ctx, message_uuid, BEN, shown)
            .await
            .unwrap()
    );
    assert!(
        !delivery::apply(pool, ctx, message_uuid, BEN, late(Status::Failed),)
            .await
            .unwrap()
    );
    w.drain().await;
    assert_eq!(w.statuses(id).await, vec![(BEN.into(), "DISPLAYED".into())]);
    let recorded: Vec<(String, bool)> = sqlx::query_as(
        "SELECT status, applied FROM message_events WHERE message_id = $1 ORDER BY id",
    )
    .bind(message_uuid)
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(
        recorded,
        vec![
            ("PROCESSED".into(), true),
            ("DISPATCHED".into(), true),
            ("FAILED".into(), false),
            ("PROCESSED".into(), false),
            ("FAILED-TO".into(), false),
            ("DISPLAYED".into(), true),
            ("FAILED".into(), false),
        ]
    );
    // Only the applied DISPLAYED was notified.
    let notes = w.notifications(id);
    assert_eq!(notes.len(), before + 1);
    assert_eq!(notes.last().unwrap()["Description"], "displayed");
}

#[tokio::test]
async fn envelope_shape_and_unpacked_xdm_per_endpoint() {
    let w = World::new().await;
    w.put_endpoint(
        &w.vendor_b,
        CY,
        json!({
            "inboundUrl": w.inbox.url("/cy"),
            "inboundAuth": {"type": "header", "name": "X-Ehr-Key", "value": "cy-key"},
            "inboundShape": "envelope",
            "xdmDelivery": "unpacked"
        }),
    )
    .await;
    let id = "shapes-1";
    w.send_ok(&message(id, &format!("{BEN},{CY}"), true)).await;
    w.drain().await;
    let pushes = w.inbox.accepted();
    assert_eq!(pushes.len(), 2);
    let cy = pushes.iter().find(|p| p.path == "/cy").unwrap();
    assert_eq!(cy.header("x-ehr-key"), "cy-key");
    assert!(cy.headers.get("authorization").is_none());
    let body = cy.json();
    assert_eq!(body["envelopeInfo"]["fromDirectAddress"], SENDER);
    assert_eq!(body["envelopeInfo"]["toDirectAddress"], json!([CY]));
    assert!(body.get("fromDirectAddress").is_none());
    assert!(body.get("toDirectAddress").is_none());
    // Unpacked: the documents themselves, with their media types and titles.
    let docs = attachments(&body);
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0].0, "text/xml");
    assert_eq!(docs[0].1.as_deref(), Some("Continuity of Care Document"));
    assert_eq!(docs[0].3, ccda());
    assert_eq!(docs[1].0, "application/pdf");
    assert_eq!(docs[1].3, binary_pdf());

    // Ben's endpoint kept the flat shape and the zip.
    let ben = pushes.iter().find(|p| p.path == "/inbound").unwrap().json();
    assert_eq!(ben["toDirectAddress"], BEN);
    assert_eq!(attachments(&ben)[0].0, "application/zip");
}
