//! Login and sessions: ten minutes by the service clock, valid on every replica.

use std::time::Duration;

use super::*;
use crate::helpers::TestDb;

#[tokio::test]
async fn login_answers_each_kind_of_bad_credentials_with_its_code() {
    let f = Fixture::new().await;
    let vendor = f.app.create_client(ClientKind::Vendor).await;
    let disabled = new_reseller(&f.app, "0").await;
    service::clients::disable(&f.app.db.pool, disabled.0, &Actor::cli())
        .await
        .unwrap();
    for mode in MODES {
        let (id, secret) = &f.reseller;
        let r = f
            .call(
                mode,
                "Login",
                &format!("<username>{id}</username><password>{secret}</password>"),
            )
            .await;
        r.assert_code("000", "");
        assert_eq!(r.text("sessionId").len(), 43);
        for (user, pass) in [
            (id.to_string(), "wrong".to_owned()),
            ("not-a-uuid".to_owned(), secret.clone()),
            (vendor.0.to_string(), vendor.1.clone()),
            (disabled.0.to_string(), disabled.1.clone()),
        ] {
            let r = f
                .call(
                    mode,
                    "Login",
                    &format!("<username>{user}</username><password>{pass}</password>"),
                )
                .await;
            r.assert_code("011", "authentication failed");
            assert_eq!(r.ret().child("sessionId"), None);
        }
        let r = f
            .call(mode, "Login", &format!("<username>{id}</username>"))
            .await;
        r.assert_code("010", "password");
    }
}

#[tokio::test]
async fn a_session_expires_after_ten_minutes_and_works_on_a_second_replica() {
    let f = Fixture::new().await;
    let second_db = TestDb {
        name: f.app.db.name.clone(),
        url: f.app.db.url.clone(),
        pool: f.app.db.second_pool().await,
    };
    // Each replica has its own clock; the test moves both past the deadline together.
    let replica = TestApp::spawn_on(second_db, TestOptions::default()).await;

    let list = |session: &str| format!("<sessionId>{session}</sessionId>");
    let session = f.login(Mode::Soap12).await;
    let r = call(
        &replica,
        Mode::Soap11,
        "ListProvisionedOrganizations",
        &list(&session),
    )
    .await;
    r.assert_code("000", "");

    f.app.state.clock.advance(Duration::from_secs(9 * 60 + 59));
    replica
        .state
        .clock
        .advance(Duration::from_secs(9 * 60 + 59));
    f.call(Mode::Mtom, "ListProvisionedOrganizations", &list(&session))
        .await
        .assert_code("000", "");
    call(
        &replica,
        Mode::Mtom,
        "ListProvisionedOrganizations",
        &list(&session),
    )
    .await
    .assert_code("000", "");

    f.app.state.clock.advance(Duration::from_secs(2));
    replica.state.clock.advance(Duration::from_secs(2));
    for app in [&f.app, &replica] {
        for mode in MODES {
            call(app, mode, "ListProvisionedOrganizations", &list(&session))
                .await
                .assert_code("011", "expired");
        }
    }
    // A new login works again.
    let fresh = login_as(&replica, Mode::Soap11, &f.reseller).await;
    f.call(Mode::Soap12, "ListProvisionedOrganizations", &list(&fresh))
        .await
        .assert_code("000", "");
}
