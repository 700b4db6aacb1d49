//! The wire: all 18 interactions (the 12 we receive, as the tests send them, and the 6
//! responses plus the 4 notifications we send) validate against their official schemas; the
//! three forms (HL7 XML, text/xml, SOAP 1.2) are answered in kind; who may send what.

use std::time::Duration;

use hisp_gateway::service::Actor;
use hisp_gateway::service::registry::informer;
use hisp_gateway::webhooks::EndpointAuth;

use super::messages::{self as m, Candidates, LICENCE_ROOT, NPI, Org, TAX_ID};
use super::schema::valid;
use super::{Hl7, REGISTRY_ROOT, all, post};
use crate::helpers::receiver::Receiver;

#[tokio::test]
async fn all_eighteen_interactions_validate_against_their_schemas() {
    let h = Hl7::new().await;
    let rx = Receiver::start().await;
    informer::add_subscriber(
        &h.app().db.pool,
        &h.app().state.registry,
        &rx.url("/hl7"),
        Some(EndpointAuth::Basic {
            username: "tracker".into(),
            password: "s3cret".into(),
        }),
        &Actor::cli(),
    )
    .await
    .unwrap();
    let mut seen = std::collections::BTreeSet::new();
    fn sent(
        seen: &mut std::collections::BTreeSet<&'static str>,
        req: String,
        interaction: &'static str,
    ) -> String {
        valid(&req, interaction);
        seen.insert(interaction);
        req
    }

    // Fulfiller: add, then update.
    let org = Org::named("People's Pharmacy")
        .id(LICENCE_ROOT, "PH-1001")
        .id(NPI, "1234567893")
        .id(TAX_ID, "12-3456789")
        .code("PHARM")
        .addr("1 Main St", "Ann Arbor", "MI", "48104")
        .telecom("tel:+1-734-555-0100");
    let a = h
        .send(&sent(
            &mut seen,
            m::request("PRPM_IN401030UV01", "w-1", &org),
            "PRPM_IN401030UV01",
        ))
        .await;
    assert_eq!((a.status, a.ack_code()), (200, "AA"), "{}", a.raw);
    valid(&a.raw, "PRPM_IN401031UV01");
    seen.insert("PRPM_IN401031UV01");
    assert_eq!(a.target(), "w-1");
    let cid = a.certified_id();

    let upd = Org::named("People's Pharmacy")
        .id(LICENCE_ROOT, "PH-1001")
        .telecom("mailto:rx@peoples.example.org");
    let a = h
        .send(&sent(
            &mut seen,
            m::request("PRPM_IN403010UV01", "w-2", &upd),
            "PRPM_IN403010UV01",
        ))
        .await;
    assert_eq!(a.ack_code(), "AA", "{}", a.raw);
    valid(&a.raw, "PRPM_IN403011UV01");
    seen.insert("PRPM_IN403011UV01");

    // Tracker: notifications, each accepted with MCCI_IN000002UV01.
    let group = Org::named("Cardiology Services Group").id(LICENCE_ROOT, "CARD-1");
    for (req, interaction) in [
        (
            m::notice("PRPM_IN401010UV01", "w-3", &group),
            "PRPM_IN401010UV01",
        ),
        (
            m::notice(
                "PRPM_IN403030UV01",
                "w-4",
                &group.clone().telecom("tel:+1-555-0101"),
            ),
            "PRPM_IN403030UV01",
        ),
        (
            m::status_notice("PRPM_IN402011UV01", "w-5", LICENCE_ROOT, "CARD-1", ""),
            "PRPM_IN402011UV01",
        ),
        (
            m::status_notice("PRPM_IN404011UV01", "w-6", LICENCE_ROOT, "CARD-1", ""),
            "PRPM_IN404011UV01",
        ),
        (
            m::status_notice(
                "PRPM_IN402010UV01",
                "w-7",
                LICENCE_ROOT,
                "CARD-1",
                "Cardiology Services Group",
            ),
            "PRPM_IN402010UV01",
        ),
        (
            m::status_notice(
                "PRPM_IN404010UV01",
                "w-8",
                LICENCE_ROOT,
                "CARD-1",
                "Cardiology Services Group",
            ),
            "PRPM_IN404010UV01",
        ),
    ] {
        let a = h.send(&sent(&mut seen, req, interaction)).await;
        assert_eq!(
            (a.status, a.ack_code()),
            (200, "AA"),
            "{interaction}: {}",
            a.raw
        );
        valid(&a.raw, "MCCI_IN000002UV01");
    }

    // Query fulfiller.
    let q = m::candidates(
        "w-9",
        &Candidates {
            query_id: "q1",
            name: Some("People"),
            ..Default::default()
        },
    );
    let a = h.send(&sent(&mut seen, q, "PRPM_IN405010UV01")).await;
    assert_eq!(a.ack_code(), "AA", "{}", a.raw);
    valid(&a.raw, "PRPM_IN405110UV01");
    seen.insert("PRPM_IN405110UV01");
    let cid_s = cid.to_string();
    let q = m::details(
        "w-10",
        &[(REGISTRY_ROOT, &cid_s), (LICENCE_ROOT, "CARD-1")],
        true,
    );
    let a = h.send(&sent(&mut seen, q, "PRPM_IN406010UV01")).await;
    assert_eq!(a.ack_code(), "AA", "{}", a.raw);
    valid(&a.raw, "PRPM_IN406110UV01");
    seen.insert("PRPM_IN406110UV01");
    let a = h
        .send(&sent(
            &mut seen,
            m::report("w-11", None),
            "PRPM_IN406030UV01",
        ))
        .await;
    assert_eq!(a.ack_code(), "AA", "{}", a.raw);
    valid(&a.raw, "PRPM_IN406031UV01");
    seen.insert("PRPM_IN406031UV01");
    let a = h
        .send(&sent(
            &mut seen,
            m::admin_report("w-12", "20260101", "20991231"),
            "PRPM_IN406040UV01",
        ))
        .await;
    assert_eq!(a.ack_code(), "AA", "{}", a.raw);
    valid(&a.raw, "PRPM_IN406041UV01");
    seen.insert("PRPM_IN406041UV01");

    // Informer: what the subscriber received, each valid, with our credentials.
    h.app().worker.run_until_idle().await.unwrap();
    let got = rx.wait_accepted(8, Duration::from_secs(10)).await;
    for r in &got {
        let body = String::from_utf8(r.body.clone()).unwrap();
        let root = hisp_gateway::xml::parse(body.as_bytes()).unwrap();
        let interaction: &'static str = match root.name.as_str() {
            "PRPM_IN401010UV01" => "PRPM_IN401010UV01",
            "PRPM_IN403030UV01" => "PRPM_IN403030UV01",
            "PRPM_IN402010UV01" => "PRPM_IN402010UV01",
            "PRPM_IN404010UV01" => "PRPM_IN404010UV01",
            other => panic!("unexpected notification {other}"),
        };
        valid(&body, interaction);
        assert_eq!(r.header("content-type"), "application/hl7-v3+xml");
        assert!(r.header("authorization").starts_with("Basic "));
    }
    let kinds: std::collections::BTreeSet<String> = got
        .iter()
        .map(|r| hisp_gateway::xml::parse(&r.body).unwrap().name)
        .collect();
    assert_eq!(kinds.len(), 4, "{kinds:?}");
    seen.insert("MCCI_IN000002UV01");
    // 12 received + 6 responses = the 18 PRPM interactions (+ the MCCI accept ack).
    assert_eq!(
        seen.iter().filter(|s| s.starts_with("PRPM")).count(),
        18,
        "{seen:?}"
    );
}

#[tokio::test]
async fn every_form_is_answered_in_kind_and_clients_are_checked() {
    let h = Hl7::new().await;
    let org = Org::named("Good Home Health").id(LICENCE_ROOT, "GHH-1");
    let req = m::request("PRPM_IN401030UV01", "f-1", &org);

    // SOAP 1.2 in, SOAP 1.2 out.
    let a = post(
        h.app(),
        &h.registry,
        "application/soap+xml; charset=utf-8",
        m::soap12(&req),
    )
    .await;
    assert_eq!(a.status, 200);
    assert!(
        a.content_type.starts_with("application/soap+xml"),
        "{}",
        a.content_type
    );
    assert_eq!(a.ack_code(), "AA", "{}", a.raw);
    valid(&a.raw, "PRPM_IN401031UV01");

    // text/xml in, text/xml out.
    let q = m::candidates(
        "f-2",
        &Candidates {
            query_id: "f",
            name: Some("Good"),
            ..Default::default()
        },
    );
    let a = post(h.app(), &h.vendor, "text/xml", q.clone()).await;
    assert!(a.content_type.starts_with("text/xml"), "{}", a.content_type);
    assert_eq!(a.ack_code(), "AA");
    assert_eq!(all(&a.root, "registrationEvent").len(), 1);

    // A vendor may query, not change.
    let upd = m::request("PRPM_IN403010UV01", "f-3", &org);
    let a = post(h.app(), &h.vendor, "application/hl7-v3+xml", upd).await;
    assert_eq!((a.status, a.ack_code()), (403, "AR"));
    assert!(a.content_type.starts_with("application/hl7-v3+xml"));
    valid(&a.raw, "MCCI_IN000002UV01");

    // No credentials, wrong credentials: 401 with an acknowledgement; repeated failures are
    // throttled like every other door.
    let r = h
        .app()
        .http
        .post(h.app().url(super::PATH))
        .header("Content-Type", "application/hl7-v3+xml")
        .body(q.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let bad = (h.registry.0, "wrong-secret".to_owned());
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let a = post(h.app(), &bad, "application/hl7-v3+xml", q.clone()).await;
        assert_eq!(a.ack_code(), "AR");
        statuses.push(a.status);
    }
    assert_eq!(statuses[0], 401);
    assert!(statuses.contains(&429), "{statuses:?}");

    // An unsupported media type.
    let a = post(h.app(), &h.registry, "application/json", "{}".into()).await;
    assert_eq!((a.status, a.ack_code()), (415, "AR"));
}

#[tokio::test]
async fn a_body_over_the_limit_gets_an_acknowledgement_announced_or_streamed() {
    let mut opts = crate::helpers::TestOptions::default();
    opts.config.http.body_limit_bytes = 2048;
    let h = Hl7::with(opts).await;
    let before = super::footprint(h.app()).await;
    let mut org = Org::named("Big Clinic").id(LICENCE_ROOT, "BIG-1");
    for i in 0..40 {
        org = org.telecom(&format!("tel:+1-555-01{i:02}"));
    }
    let big = m::request("PRPM_IN401030UV01", "l-1", &org);
    assert!(big.len() > 2048, "{}", big.len());
    // Announced by Content-Length.
    let a = post(h.app(), &h.registry, "application/hl7-v3+xml", big.clone()).await;
    assert_eq!((a.status, a.ack_code()), (413, "AR"));
    valid(&a.raw, "MCCI_IN000002UV01");
    // Streamed without a length.
    let chunks: Vec<Result<String, std::io::Error>> = big
        .as_bytes()
        .chunks(1000)
        .map(|c| Ok(String::from_utf8(c.to_vec()).unwrap()))
        .collect();
    let r = h
        .app()
        .http
        .post(h.app().url(super::PATH))
        .basic_auth(h.registry.0, Some(&h.registry.1))
        .header("Content-Type", "application/hl7-v3+xml")
        .body(reqwest::Body::wrap_stream(tokio_stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    let a = super::answer(r).await;
    assert_eq!((a.status, a.ack_code()), (413, "AR"));
    assert_eq!(super::footprint(h.app()).await, before);
}
