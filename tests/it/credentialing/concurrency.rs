//! Two events about one license, processed by two workers at once or in the wrong order: the
//! standing is the one of the event that happened later, by its own timestamp.

use chrono::{Duration, Utc};
use hisp_gateway::domain::client::ClientKind;
use hisp_gateway::jobs::Worker;
use uuid::Uuid;

use super::*;
use crate::soap::Fixture;

#[tokio::test]
async fn the_later_event_decides_whichever_job_finishes_last() {
    let f = Fixture::new().await;
    let app = &f.app;
    give_ada_her_npi(app).await;
    let ops = app.create_client(ClientKind::Ops).await;
    let src = FakeSource::register(app, &ops).await;
    let p = Uuid::new_v4();
    let now = Utc::now();
    src.send(
        "ProviderStatusChanged",
        &provider(p, "Credentialed", false, now - Duration::days(30)),
    )
    .await;
    app.worker.run_until_idle().await.unwrap();
    let mut jobs = app.state.config.jobs.clone();
    jobs.concurrency = 1;
    let second = Worker::new(app.db.pool.clone(), app.state.job_registry(), &jobs);
    let first = app.worker.clone();

    let expired = |lic, at| license(p, lic, at, "Expired", at, "None");
    let renewed = |lic, at| license(p, lic, at, "Active", now + Duration::days(700), "None");
    // The event that happened earlier is delivered (and so processed) last.
    let lic = Uuid::new_v4();
    src.send("LicenseChanged", &renewed(lic, now - Duration::hours(1)))
        .await;
    first.run_until_idle().await.unwrap();
    src.send("LicenseExpired", &expired(lic, now - Duration::hours(5)))
        .await;
    second.run_until_idle().await.unwrap();
    assert_eq!(standing_of(app, &ops, 8001).await["standing"], "good");

    // Both delivered, two workers at once, in both orders and both outcomes.
    for round in 0..6 {
        let lic = Uuid::new_v4();
        let (early, late) = (
            now - Duration::hours(4),
            now - Duration::hours(3) + Duration::minutes(round),
        );
        let restrict_last = round % 2 == 0;
        let (kind_early, early_body, kind_late, late_body, want) = if restrict_last {
            (
                "LicenseChanged",
                renewed(lic, early),
                "LicenseExpired",
                expired(lic, late),
                "restricted",
            )
        } else {
            (
                "LicenseExpired",
                expired(lic, early),
                "LicenseChanged",
                renewed(lic, late),
                "good",
            )
        };
        if round % 4 < 2 {
            src.send(kind_late, &late_body).await;
            src.send(kind_early, &early_body).await;
        } else {
            src.send(kind_early, &early_body).await;
            src.send(kind_late, &late_body).await;
        }
        let (a, b) = tokio::join!(first.run_until_idle(), second.run_until_idle());
        a.unwrap();
        b.unwrap();
        let v = standing_of(app, &ops, 8001).await;
        assert_eq!(v["standing"], want, "round {round}: {v}");
        // Put the license right again for the next round.
        if want == "restricted" {
            src.send("LicenseChanged", &renewed(lic, now)).await;
            first.run_until_idle().await.unwrap();
            assert_eq!(standing_of(app, &ops, 8001).await["standing"], "good");
        }
    }
}
