//! Mail from another HISP to a suspended holder is refused with a failed MDN.

use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::transport::{ADA, BEN, CY, pair, settle};

#[tokio::test]
async fn direct_mail_to_a_suspended_holder_comes_back_as_a_failed_mdn() {
    let (a, b) = pair().await;
    let app = &b.f.app;
    let src = FakeSource::register(app, &b.ops).await;
    // Ben (idp 8002) at Lakeside: his license lapsed; ops link the provider to him.
    let q = Uuid::new_v4();
    let now = Utc::now();
    src.send(
        "LicenseExpired",
        &license(q, Uuid::new_v4(), now, "Expired", now, "None"),
    )
    .await;
    b.drain().await;
    let r = app
        .post_json_as(
            &format!("/api/v1/credentialing/providers/{q}/link"),
            &b.ops,
            &json!({"idpId": 8002}),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let v = standing_of(app, &b.ops, 8002).await;
    assert_eq!(v["addresses"][0]["status"], "suspended", "{v}");

    let id = "urn:uuid:7d1e6a52-5b0c-4c55-9a1e-3c2b1a000025";
    a.send(ADA, &[BEN, CY], id, true).await;
    settle(&[&a, &b]).await;
    let st = a.statuses(ADA, id).await;
    assert_eq!(st[0].0, BEN);
    assert_eq!(st[0].1, "FAILED", "{st:?}");
    assert_ne!(st[1].1, "FAILED", "cy is not affected: {st:?}");
    // Taken over SMTP (not refused at RCPT), then refused by a failed MDN.
    assert_eq!(b.inbound_mail().await, [("accepted".to_owned(), None)]);
    assert_eq!(st[0].2, "9006: ERROR=RecipientRejected (failed)", "{st:?}");
    let ben = a.notifications(id, BEN);
    assert_eq!(
        ben.last().map(|(s, _)| s.as_str()),
        Some("Error"),
        "{ben:?}"
    );
    // Ben's EHR got nothing; Cy's got the message.
    let pushed: Vec<String> = b
        .inbox
        .accepted()
        .iter()
        .map(|r| r.json()["toDirectAddress"].to_string())
        .collect();
    assert!(pushed.iter().all(|to| !to.contains("ben@")), "{pushed:?}");
    assert!(pushed.iter().any(|to| to.contains("cy@")), "{pushed:?}");
}
