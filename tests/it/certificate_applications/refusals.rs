//! Every refusal names its cause and leaves the database as it was: each bad field (400),
//! wrong credentials (401), another organization's TA (404), a taken address (409), a second
//! approval (409) and two officers racing (one 200, one 409).

use serde_json::json;

use super::*;

#[tokio::test]
async fn each_bad_field_wrong_credentials_and_taken_addresses_change_nothing() {
    let s = Setup::new().await;
    let unlinked = s.w.f.app.create_client(ClientKind::TrustedAgent).await;
    let before = s.snapshot().await;
    let cases: Vec<(&str, serde_json::Value)> = vec![
        ("hipaaType", json!("2")),
        ("hipaaType", json!(9)),
        ("durationYears", json!(4)),
        ("durationYears", json!(0)),
        ("durationYears", json!("three")),
        ("directAddress", json!(format!("pat@{OTHER_DOMAIN}"))),
        ("directAddress", json!("not an address")),
        ("identityAttestation", json!("no")),
        ("identityAttestation", json!(false)),
        ("notificationEmail", json!("pat at example")),
        ("organizationName", json!("Harbor Family Medicine")),
        ("autoRenew", json!("sometimes")),
        ("firstName", json!(12)),
        ("notes", json!("x".repeat(4001))),
    ];
    for (field, value) in &cases {
        let mut body = patient("pat.bad");
        body[*field] = value.clone();
        let (code, v) = s.apply(&s.ta, &body).await;
        assert_eq!(code, 400, "{field}={value}: {v}");
        assert_eq!(v["error"]["code"], "invalid", "{v}");
        assert_eq!(v["error"]["field"], *field, "{field}={value}: {v}");
    }
    for field in [
        "trustedAgentName",
        "organizationName",
        "hipaaType",
        "firstName",
        "lastName",
        "city",
        "state",
        "country",
        "durationYears",
        "certificateName",
        "directAddress",
        "autoRenew",
        "identityAttestation",
        "notificationEmail",
    ] {
        let mut body = patient("pat.bad");
        body.as_object_mut().unwrap().remove(field);
        let (code, v) = s.apply(&s.ta, &body).await;
        assert_eq!(code, 400, "without {field}: {v}");
        assert_eq!(v["error"]["field"], field, "{v}");
    }
    assert_eq!(
        s.snapshot().await,
        before,
        "nothing written for a bad field"
    );

    // Wrong credentials, in the TA headers and in Basic: 401, nothing written.
    let wrong = (s.ta.0, "not-the-secret".to_owned());
    let (code, v) = s.apply(&wrong, &patient("pat.x")).await;
    assert_eq!(code, 401, "{v}");
    let r =
        s.w.f
            .app
            .http
            .post(s.url(PATH))
            .header("X-TA-Username", "not-a-client-id")
            .header("X-TA-Password", "whatever")
            .json(&patient("pat.x"))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 401);
    let r =
        s.w.f
            .app
            .post_json_as(PATH, &wrong, &patient("pat.x"))
            .await;
    assert_eq!(r.status(), 401);
    // Only the username header: no credentials at all.
    let r =
        s.w.f
            .app
            .http
            .post(s.url(PATH))
            .header("X-TA-Username", s.ta.0.to_string())
            .json(&patient("pat.x"))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 401);
    // A vendor is not a trusted agent; an unlinked TA cannot apply.
    let r =
        s.w.f
            .app
            .post_json_as(PATH, &s.w.vendor_b, &patient("pat.x"))
            .await;
    assert_eq!(r.status(), 403);
    let (code, v) = s.apply(&unlinked, &patient("pat.x")).await;
    assert_eq!(code, 403, "{v}");
    assert_eq!(s.snapshot().await, before, "nothing written for a refusal");

    // A taken address: an existing one (ben), then one an open application holds.
    let (code, v) = s.apply(&s.ta, &patient("ben")).await;
    assert_eq!(code, 409, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("directAddress")
    );
    assert_eq!(s.snapshot().await, before);
    let id = s.apply_ok(&patient("pat.doe")).await;
    let after_first = s.snapshot().await;
    let mut again = patient("PAT.DOE");
    again["firstName"] = json!("Other");
    let (code, v) = s.apply(&s.ta, &again).await;
    assert_eq!(code, 409, "{v}");
    assert_eq!(s.snapshot().await, after_first);

    // Another organization's TA: 404 on the id and an empty list by address; its own
    // organization's other TA sees it.
    let harbor_ta = s.w.f.app.create_client(ClientKind::TrustedAgent).await;
    s.link(&harbor_ta, OTHER_DOMAIN).await;
    let linked = s.snapshot().await;
    let (code, v) = s.get(&harbor_ta, &format!("{PATH}/{id}")).await;
    assert_eq!(code, 404, "{v}");
    let (code, v) = s
        .get(&harbor_ta, &format!("{PATH}/{}", uuid::Uuid::new_v4()))
        .await;
    assert_eq!(code, 404, "{v}");
    let (code, v) = s
        .get(&harbor_ta, &format!("{PATH}?address=pat.doe@{DOMAIN_B}"))
        .await;
    assert_eq!(code, 200);
    assert_eq!(v, json!([]));
    // Nor may it decide (it is no officer); a rejection needs a reason.
    let (code, _) = s
        .review(&harbor_ta, &id, "reject", &json!({"reason": "x"}))
        .await;
    assert_eq!(code, 403);
    let (code, v) = s.review(&s.officer, &id, "reject", &json!({})).await;
    assert_eq!((code, v["error"]["field"].as_str()), (400, Some("reason")));
    assert_eq!(s.snapshot().await, linked);
    let colleague = s.w.f.app.create_client(ClientKind::TrustedAgent).await;
    s.link(&colleague, DOMAIN_B).await;
    let (code, v) = s.get(&colleague, &format!("{PATH}/{id}")).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], "Submitted");
    // A TA cannot review.
    let (code, _) = s.review(&s.ta, &id, "approve", &json!({})).await;
    assert_eq!(code, 403);

    // One approval; a second is refused and changes nothing.
    s.approve_ok(&id).await;
    let approved = s.snapshot().await;
    let (code, v) = s.review(&s.officer, &id, "approve", &json!({})).await;
    assert_eq!(code, 409, "{v}");
    let (code, _) = s
        .review(&s.officer, &id, "reject", &json!({"reason": "late"}))
        .await;
    assert_eq!(code, 409);
    assert_eq!(
        s.snapshot().await,
        approved,
        "a second decision writes nothing"
    );
    let (code, _) = s
        .review(
            &s.officer,
            &uuid::Uuid::new_v4().to_string(),
            "approve",
            &json!({}),
        )
        .await;
    assert_eq!(code, 404);
    // Failed TA logins are throttled like every other authentication: 429 with Retry-After,
    // still nothing written.
    let before = s.snapshot().await;
    let mut throttled = None;
    for _ in 0..10 {
        let r =
            s.w.f
                .app
                .http
                .post(s.url(PATH))
                .header("X-TA-Username", s.ta.0.to_string())
                .header("X-TA-Password", "guess")
                .json(&patient("pat.guess"))
                .send()
                .await
                .unwrap();
        if r.status() == 429 {
            throttled = Some(r);
            break;
        }
        assert_eq!(r.status(), 401);
    }
    let r = throttled.expect("throttled within 10 failures");
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(s.snapshot().await, before);
}

#[tokio::test]
async fn two_officers_racing_get_one_approval_and_one_conflict() {
    let s = Setup::new().await;
    let other = s.w.f.app.create_client(ClientKind::Officer).await;
    for round in 0..3 {
        let id = s.apply_ok(&patient(&format!("race{round}"))).await;
        let before = s.snapshot().await;
        let (empty, reasoned) = (json!({}), json!({"reason": "checked"}));
        let (a, b) = tokio::join!(
            s.review(&s.officer, &id, "approve", &empty),
            s.review(&other, &id, "approve", &reasoned),
        );
        let mut codes = [a.0, b.0];
        codes.sort();
        assert_eq!(codes, [200, 409], "{a:?} {b:?}");
        let loser = if a.0 == 409 { &a.1 } else { &b.1 };
        assert!(
            loser["error"]["message"]
                .as_str()
                .unwrap()
                .contains("already reviewed"),
            "{loser}"
        );
        let after = s.snapshot().await;
        let certificates =
            |snap: &[(&str, i64)]| snap.iter().find(|(t, _)| *t == "certificates").unwrap().1;
        assert_eq!(
            certificates(&after),
            certificates(&before) + 1,
            "one certificate request"
        );
        let addresses = |snap: &[(&str, i64)]| {
            snap.iter()
                .find(|(t, _)| *t == "direct_addresses")
                .unwrap()
                .1
        };
        assert_eq!(addresses(&after), addresses(&before) + 1, "one address");
    }
    // A rejection: its reason is kept, its e-mail goes, and nothing is requested.
    let id = s.apply_ok(&patient("rejected.one")).await;
    let before = s.snapshot().await;
    let (code, v) = s
        .review(
            &s.officer,
            &id,
            "reject",
            &json!({"reason": "identity documents did not match"}),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], "Rejected");
    assert_eq!(v["reviewReason"], "identity documents did not match");
    assert!(v["rejectedAt"].is_string());
    let after = s.snapshot().await;
    let n = |snap: &[(&str, i64)], t: &str| snap.iter().find(|(x, _)| *x == t).unwrap().1;
    assert_eq!(n(&after, "certificates"), n(&before, "certificates"));
    assert_eq!(
        n(&after, "direct_addresses"),
        n(&before, "direct_addresses")
    );
    s.drain().await;
    let rejections: Vec<_> = s
        .sink
        .captured()
        .into_iter()
        .filter(|m| String::from_utf8_lossy(&m.data).contains("was not approved"))
        .collect();
    assert_eq!(rejections.len(), 1);
    let text = String::from_utf8_lossy(&rejections[0].data);
    assert!(
        !text.contains("identity documents"),
        "the reason stays out of the mail"
    );
    // A rejected application frees its address.
    s.apply_ok(&patient("rejected.one")).await;
}
