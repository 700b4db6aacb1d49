//! Every ResellerAPIResponse code that applies, and that a refused call changes nothing.

use super::*;
use crate::helpers::count;

/// Rows that a refused provisioning must not leave behind.
async fn footprint(f: &Fixture) -> [i64; 5] {
    let pool = &f.app.db.pool;
    [
        count(pool, "organizations").await,
        count(pool, "direct_addresses").await,
        count(pool, "certificates").await,
        count(pool, "orders").await,
        count(pool, "ledger_entries").await,
    ]
}

#[tokio::test]
async fn provisioning_refusals_name_the_problem_and_write_nothing() {
    let f = Fixture::new().await;
    let good = standard_form(&address(8001, "ada", "Str0ng-Passw0rd"));
    let with_org = |org: &str, kind: &str, addresses: &str| {
        format!(
            "<organization>{org}</organization>{addresses}<organizationType>{kind}</organizationType>"
        )
    };
    let ada = address(8001, "ada", "Str0ng-Passw0rd");
    let cases: Vec<(&str, String, &str, String, &str)> = vec![
        // (code, domain, offer, form, text the message must contain)
        (
            "202",
            "a.example.org".into(),
            "CDO1",
            with_org("<certified_id>4242</certified_id>", "CoveredEntity", &ada),
            "4242",
        ),
        (
            "202",
            "a.example.org".into(),
            "CDO1",
            with_org(
                "<name>Nobody Clinic</name><taxid>12-3456789</taxid><state>NJ</state>",
                "CoveredEntity",
                &ada,
            ),
            "Nobody Clinic",
        ),
        (
            "203",
            "a.example.org".into(),
            "CDO1",
            with_org("<certified_id>7002</certified_id>", "CoveredEntity", &ada),
            "7002",
        ),
        (
            "204",
            "a.example.org".into(),
            "CDO1",
            with_org(
                "<name>Harbor Family Medicine</name><taxid>123456789</taxid><state>Jersey</state>",
                "CoveredEntity",
                &ada,
            ),
            "Jersey",
        ),
        (
            "205",
            "a.example.org".into(),
            "CDO1",
            with_org(
                "<certified_id>7001</certified_id>",
                "CoveredEntity",
                &address(9999, "ada", "Str0ng-Passw0rd"),
            ),
            "9999",
        ),
        (
            "206",
            "a.example.org".into(),
            "CDO1",
            with_org("<certified_id>7001</certified_id>", "Dentist", &ada),
            "Dentist",
        ),
        (
            "207",
            "a.example.org".into(),
            "CDO1",
            with_org(
                "<certified_id>7001</certified_id>",
                "CoveredEntity",
                "<directAddresses><idp_id>8001</idp_id><username>ada</username><password>Str0ng-Passw0rd</password><userType>SFTP</userType></directAddresses>",
            ),
            "SFTP",
        ),
        ("209", "a.example.org".into(), "CDO1", "".into(), "form"),
        (
            "209",
            "a.example.org".into(),
            "CDO1",
            "<departmentName>x</departmentName>".into(),
            "organization",
        ),
        (
            "003",
            "a.example.org".into(),
            "CDO11",
            good.clone(),
            "CDO11",
        ),
        (
            "003",
            "a.example.org".into(),
            "CDO1",
            standard_form(&format!("{ada}{}", address(8002, "ben", "Str0ng-Passw0rd"))),
            "CDO1 allows 1",
        ),
        (
            "010",
            "not a domain".into(),
            "CDO1",
            good.clone(),
            "DirectDomain",
        ),
        (
            "010",
            "a.example.org".into(),
            "",
            good.clone(),
            "DirectOfferType",
        ),
        (
            "010",
            "a.example.org".into(),
            "CDO1",
            standard_form(&address(8001, "ada", "short")),
            "password",
        ),
        (
            "002",
            "a.example.org".into(),
            "CDO1",
            standard_form(&address(8001, "a b", "Str0ng-Passw0rd")),
            "invalid user when provisioning new Direct mdEmail account: (a b)",
        ),
        (
            "010",
            "a.example.org".into(),
            "CDO1",
            standard_form(
                "<directAddresses><idp_id>8001</idp_id><password>Str0ng-Passw0rd</password></directAddresses>",
            ),
            "username: is required",
        ),
        (
            "014",
            "a.example.org".into(),
            "CDO2",
            standard_form(&format!("{ada}{}", address(8002, "ADA", "Str0ng-Passw0rd"))),
            "twice",
        ),
        (
            "201",
            "taken.example.org".into(),
            "CDO1",
            good.clone(),
            "taken.example.org",
        ),
    ];
    for (i, mode) in MODES.into_iter().enumerate() {
        let session = f.login(mode).await;
        if i == 0 {
            let r = f
                .call(
                    mode,
                    "ProvisionCertifiedProvider",
                    &provision_body(&session, "taken.example.org", "CDO1", &good),
                )
                .await;
            r.assert_code("000", "");
        }
        let before = footprint(&f).await;
        for (code, domain, offer, form, needle) in &cases {
            let body = if form.is_empty() {
                format!(
                    "<sessionId>{session}</sessionId><DirectDomain>{domain}</DirectDomain><DirectOfferType>{offer}</DirectOfferType>"
                )
            } else {
                provision_body(&session, domain, offer, form)
            };
            let r = f.call(mode, "ProvisionCertifiedProvider", &body).await;
            assert_eq!(r.status, 200);
            r.assert_code(code, needle);
            assert_eq!(footprint(&f).await, before, "code {code} wrote something");
        }
        // A bad session, and no session at all.
        let r = f
            .call(
                mode,
                "ProvisionCertifiedProvider",
                &provision_body("not-a-session", "b.example.org", "CDO1", &good),
            )
            .await;
        r.assert_code("011", "session");
        let r = f.call(mode, "ListProvisionedOrganizations", "").await;
        r.assert_code("010", "sessionId");
        assert_eq!(footprint(&f).await, before);
    }
}

#[tokio::test]
async fn payment_refusals_provision_nothing() {
    let f = Fixture::new().await;
    let poor = new_reseller(&f.app, "100.00").await;
    let ops = f.app.create_client(ClientKind::Ops).await;
    let form = standard_form(&address(8001, "ada", "Str0ng-Passw0rd"));
    for mode in MODES {
        let session = login_as(&f.app, mode, &poor).await;
        let before = footprint(&f).await;
        // CDO1 costs 120.00; the account holds 100.00.
        let r = f
            .call(
                mode,
                "ProvisionCertifiedProvider",
                &provision_body(&session, "poor.example.org", "CDO1", &form),
            )
            .await;
        r.assert_code("021", "100.00");
        assert_eq!(footprint(&f).await, before);
    }
    // Funded but on hold: authorization passes, capture fails, and all of it rolls back.
    let resp = f
        .app
        .post_json_as(
            &format!("/api/v1/accounts/{}/credits", poor.0),
            &ops,
            &serde_json::json!({"amount": "500.00", "memo": "top-up"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let resp = f
        .app
        .http
        .put(f.app.url(&format!("/api/v1/accounts/{}/hold", poor.0)))
        .basic_auth(ops.0, Some(&ops.1))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    for mode in MODES {
        let session = login_as(&f.app, mode, &poor).await;
        let before = footprint(&f).await;
        let r = f
            .call(
                mode,
                "ProvisionCertifiedProvider",
                &provision_body(&session, "held.example.org", "CDO1", &form),
            )
            .await;
        r.assert_code("022", "hold");
        assert_eq!(footprint(&f).await, before);
    }
    let resp = f
        .app
        .http
        .delete(f.app.url(&format!("/api/v1/accounts/{}/hold", poor.0)))
        .basic_auth(ops.0, Some(&ops.1))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let session = login_as(&f.app, Mode::Soap12, &poor).await;
    f.call(
        Mode::Soap12,
        "ProvisionCertifiedProvider",
        &provision_body(&session, "held.example.org", "CDO1", &form),
    )
    .await
    .assert_code("000", "");
    // The ledger tells the story: credits, the hold, its release, then one authorize/capture.
    let ledger: serde_json::Value = f
        .app
        .http
        .get(f.app.url(&format!("/api/v1/accounts/{}", poor.0)))
        .basic_auth(ops.0, Some(&ops.1))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = ledger["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "credit",
            "credit",
            "hold",
            "release",
            "authorization",
            "capture"
        ]
    );
    assert_eq!(ledger["balance"], "480.00");
    // Only ops may touch accounts.
    let resp = f
        .app
        .post_json_as(
            &format!("/api/v1/accounts/{}/credits", poor.0),
            &poor,
            &serde_json::json!({"amount": "1.00"}),
        )
        .await;
    assert_eq!(resp.status(), 403);
    let resp = f
        .app
        .post_json_as(
            &format!("/api/v1/accounts/{}/credits", poor.0),
            &ops,
            &serde_json::json!({"amount": "-5"}),
        )
        .await;
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["field"], "amount");
}

#[tokio::test]
async fn add_and_update_calls_check_domain_ownership_and_empty_forms() {
    let f = Fixture::new().await;
    let other = new_reseller(&f.app, "1000.00").await;
    let theirs = login_as(&f.app, Mode::Soap12, &other).await;
    let form = standard_form(&address(8002, "zed", "Passw0rd-123"));
    f.call(
        Mode::Soap12,
        "ProvisionCertifiedProvider",
        &provision_body(&theirs, "theirs.example.org", "CDO5", &form),
    )
    .await
    .assert_code("000", "");
    let ops = [
        ("AddDirectAddressesToCertifiedProvider", address(8001, "new", "Passw0rd-123")),
        ("AddAuthorizedUsersToCertifiedProvider", "<authorizedUsers><idp_id>8001</idp_id></authorizedUsers>".to_owned()),
        ("UpdateDirectAddressPassword", "<directAddresses><username>zed</username><password>Changed-Pass1</password></directAddresses>".to_owned()),
    ];
    for mode in MODES {
        let session = f.login(mode).await;
        for (op, items) in &ops {
            let body = |domain: &str, form: &str| {
                format!(
                    "<sessionId>{session}</sessionId><DirectDomain>{domain}</DirectDomain>{form}"
                )
            };
            let r = f
                .call(
                    mode,
                    op,
                    &body("theirs.example.org", &format!("<form>{items}</form>")),
                )
                .await;
            r.assert_code("013", "another reseller");
            let r = f
                .call(
                    mode,
                    op,
                    &body("ghost.example.org", &format!("<form>{items}</form>")),
                )
                .await;
            r.assert_code("208", "ghost.example.org");
            let r = f
                .call(mode, op, &body("theirs.example.org", "<form/>"))
                .await;
            r.assert_code("209", "empty");
            let r = f
                .call(mode, op, &body("", &format!("<form>{items}</form>")))
                .await;
            r.assert_code("010", "DirectDomain");
        }
    }
    // A disabled organization takes no new addresses (099, with the reason).
    let session = f.login(Mode::Mtom).await;
    let form = standard_form(&address(8001, "ada", "Str0ng-Passw0rd"));
    f.call(
        Mode::Mtom,
        "ProvisionCertifiedProvider",
        &provision_body(&session, "off.example.org", "CDO5", &form),
    )
    .await
    .assert_code("000", "");
    sqlx::query("UPDATE organizations SET status = 'Disabled' WHERE domain = 'off.example.org'")
        .execute(&f.app.db.pool)
        .await
        .unwrap();
    for mode in MODES {
        let session = f.login(mode).await;
        let r = f
            .call(
                mode,
                "AddDirectAddressesToCertifiedProvider",
                &format!("<sessionId>{session}</sessionId><DirectDomain>off.example.org</DirectDomain><form>{}</form>", address(8002, "ben", "Passw0rd-123")),
            )
            .await;
        r.assert_code("099", "Disabled");
    }
    // Nothing of theirs changed.
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM direct_addresses WHERE domain = 'theirs.example.org'",
    )
    .fetch_one(&f.app.db.pool)
    .await
    .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn a_new_address_whose_username_is_no_mailbox_name_is_an_invalid_user() {
    let f = Fixture::new().await;
    let long = "x".repeat(65);
    for mode in MODES {
        let domain = domain("users", mode);
        let session = provision(&f, mode, &domain, "CDO5").await;
        let body = |items: &str| {
            format!(
                "<sessionId>{session}</sessionId><DirectDomain>{domain}</DirectDomain><form>{items}</form>"
            )
        };
        // Per item: the bad usernames fail with 002, the good one is provisioned.
        let r = f
            .call(
                mode,
                "AddDirectAddressesToCertifiedProvider",
                &body(&format!(
                    "{}{}{}",
                    address(8002, "jo..doe", "Passw0rd-123"),
                    address(8002, "ben", "Passw0rd-123"),
                    address(8003, &long, "Passw0rd-123")
                )),
            )
            .await;
        r.assert_code("002", "(jo..doe) must be a mailbox name");
        let items: Vec<(&str, &str)> = r
            .ret()
            .children_named("updatedAddresses")
            .map(|a| {
                (
                    a.child_text("status").unwrap(),
                    a.child_text("message").unwrap(),
                )
            })
            .collect();
        assert_eq!(items.len(), 3, "{}", r.raw);
        assert_eq!(items[0].0, "ProvisionFailed");
        assert!(items[0].1.starts_with("invalid user"), "{}", items[0].1);
        assert_eq!(items[1].0, "Provisioned");
        assert_eq!(items[2].0, "ProvisionFailed");
        assert!(
            items[2].1.contains("at most 64 characters"),
            "{}",
            items[2].1
        );
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM direct_addresses WHERE domain = $1")
            .bind(&domain)
            .fetch_one(&f.app.db.pool)
            .await
            .unwrap();
        assert_eq!(n, 2, "ada and ben only");
        // Updating names an existing address: a bad name is a bad argument, not a new user.
        let r = f
            .call(
                mode,
                "UpdateDirectAddressPassword",
                &body("<directAddresses><username>jo..doe</username><password>Passw0rd-456</password></directAddresses>"),
            )
            .await;
        r.assert_code("010", "username");
    }
}

#[tokio::test]
async fn ops_fund_and_inspect_accounts_from_the_cli() {
    let app = TestApp::spawn().await;
    let reseller = app.create_client(ClientKind::Reseller).await;
    let vendor = app.create_client(ClientKind::Vendor).await;
    let id = reseller.0.to_string();
    let out = app.cli(&["account", "credit", &id, "25.50", "--memo", "first top-up"]);
    assert!(out.status.success(), "{}", crate::helpers::stderr(&out));
    let out = app.cli(&["account", "hold", &id]);
    assert!(out.status.success());
    let out = app.cli(&["account", "ledger", &id]);
    let text = crate::helpers::stdout(&out);
    assert!(text.contains("balance: 25.50"), "{text}");
    assert!(text.contains("capture_hold: true"), "{text}");
    assert!(text.contains("first top-up"), "{text}");
    let out = app.cli(&["account", "credit", &id, "12.345"]);
    assert!(!out.status.success());
    assert!(crate::helpers::stderr(&out).contains("amount"));
    let out = app.cli(&["account", "credit", &vendor.0.to_string(), "5"]);
    assert!(!out.status.success());
    assert!(crate::helpers::stderr(&out).contains("not a reseller"));
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action LIKE 'account.%' AND object_id = $1",
    )
    .bind(&id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(audited, 2);
}
