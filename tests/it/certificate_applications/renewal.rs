//! With a stepped clock: an auto-renewing patient certificate is renewed before it expires and
//! the application stays Provisioned with the new serial; without auto-renew it expires and
//! the application says Expired.

use std::time::Duration;

use serde_json::json;

use super::*;

#[tokio::test]
async fn auto_renew_keeps_the_application_provisioned_and_without_it_it_expires() {
    let s = Setup::new().await;
    let renewing = s.apply_ok(&patient("renews")).await;
    let mut body = patient("lapses");
    body["autoRenew"] = json!(false);
    let lapsing = s.apply_ok(&body).await;
    for id in [&renewing, &lapsing] {
        s.approve_ok(id).await;
    }
    s.drain().await;
    let first = s.status(&renewing).await;
    assert_eq!(first["status"], "Provisioned");
    let old_serial = first["serialNumber"].as_str().unwrap().to_owned();
    let end: chrono::DateTime<chrono::Utc> = first["certificateNotAfter"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let lapsing_end: chrono::DateTime<chrono::Utc> =
        s.status(&lapsing).await["certificateNotAfter"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();

    let worker = &s.w.f.app.worker;
    worker.schedule_recurring().await.unwrap();
    // Ten days before the end (renewal starts 30 days before): renewed, nothing expired.
    worker
        .run_due_at(end - Duration::from_secs(10 * 86_400))
        .await
        .unwrap();
    let v = s.status(&renewing).await;
    assert_eq!(v["status"], "Provisioned", "{v}");
    let new_serial = v["serialNumber"].as_str().unwrap();
    assert_ne!(new_serial, old_serial, "the renewal's serial");
    let new_end: chrono::DateTime<chrono::Utc> =
        v["certificateNotAfter"].as_str().unwrap().parse().unwrap();
    assert!(new_end > end);
    assert_eq!(s.status(&lapsing).await["status"], "Provisioned");

    // Past both ends: the one without auto-renew expired; the renewed one did not.
    worker
        .run_due_at(end.max(lapsing_end) + Duration::from_secs(60))
        .await
        .unwrap();
    let v = s.status(&lapsing).await;
    assert_eq!(v["status"], "Expired", "{v}");
    assert!(v["expiredAt"].is_string());
    let v = s.status(&renewing).await;
    assert_eq!(v["status"], "Provisioned", "{v}");
    assert_eq!(v["serialNumber"], new_serial);
    // Listing by status reads the derived one.
    let (code, expired) = s.get(&s.officer, &format!("{PATH}?status=Expired")).await;
    assert_eq!(code, 200);
    let ids: Vec<&str> = expired
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [lapsing.as_str()]);
    // The renewal sent no second "ready" e-mail.
    s.drain().await;
    let ready = s
        .sink
        .captured()
        .iter()
        .filter(|m| String::from_utf8_lossy(&m.data).contains("Your Direct address is ready"))
        .count();
    assert_eq!(ready, 2, "one per application");
}
