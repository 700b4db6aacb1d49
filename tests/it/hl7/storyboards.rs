//! The storyboards of the Organization topic (spec seed 003), each as a test.

use super::messages::{self as m, Candidates, LICENCE_ROOT, Org, TAX_ID};
use super::schema::valid;
use super::{Answer, Hl7, REGISTRY_ROOT, all};
use crate::soap::{Mode, address, provision_body};

/// Details of one organization by one of its ids (current, or every version).
async fn details(h: &Hl7, msg: &str, root: &str, ext: &str, history: bool) -> Answer {
    let a = h.send(&m::details(msg, &[(root, ext)], history)).await;
    assert_eq!(a.ack_code(), "AA", "{}", a.raw);
    valid(&a.raw, "PRPM_IN406110UV01");
    a
}

/// The organizations (subject1/assignedEntity) of a query response.
fn orgs(a: &Answer) -> Vec<&hisp_gateway::xml::Element> {
    all(&a.root, "subject1")
        .into_iter()
        .filter_map(|s| s.child("assignedEntity"))
        .collect()
}

fn telecoms(e: &hisp_gateway::xml::Element) -> Vec<String> {
    e.children_named("telecom")
        .map(|t| t.attr("value").unwrap().to_owned())
        .collect()
}

fn status(e: &hisp_gateway::xml::Element) -> String {
    e.child("statusCode")
        .unwrap()
        .attr("code")
        .unwrap()
        .to_owned()
}

fn query_ack(a: &Answer) -> (String, i64, i64, i64) {
    let q = a
        .root
        .child("controlActProcess")
        .unwrap()
        .child("queryAck")
        .unwrap();
    let n = |name: &str| {
        q.child(name)
            .unwrap()
            .attr("value")
            .unwrap()
            .parse()
            .unwrap()
    };
    (
        q.child("queryResponseCode")
            .unwrap()
            .attr("code")
            .unwrap()
            .to_owned(),
        n("resultTotalQuantity"),
        n("resultCurrentQuantity"),
        n("resultRemainingQuantity"),
    )
}

#[tokio::test]
async fn the_college_of_pharmacists_adds_then_updates_peoples_pharmacy() {
    let h = Hl7::new().await;
    let pharmacy = Org::named("People's Pharmacy")
        .id(LICENCE_ROOT, "PH-2201")
        .code("PHARM")
        .addr("12 Liberty St", "Ann Arbor", "MI", "48104");
    let a = h
        .send(&m::request("PRPM_IN401030UV01", "cp-1", &pharmacy))
        .await;
    assert_eq!(a.ack_code(), "AA", "{}", a.raw);
    valid(&a.raw, "PRPM_IN401031UV01");
    // The confirmation carries the key identifiers: ours and the licence number.
    let confirmed = &orgs(&a)[0];
    let ids: Vec<_> = confirmed
        .children_named("id")
        .map(|i| (i.attr("root").unwrap(), i.attr("extension").unwrap()))
        .collect();
    let cid = a.certified_id().to_string();
    assert_eq!(
        ids,
        [(REGISTRY_ROOT, cid.as_str()), (LICENCE_ROOT, "PH-2201")]
    );

    // New contact information, identified by the licence number.
    let contact = Org::named("")
        .id(LICENCE_ROOT, "PH-2201")
        .telecom("mailto:pharmacist@peoples.example.org")
        .telecom("tel:+1-734-555-0199");
    let a = h
        .send(&m::request("PRPM_IN403010UV01", "cp-2", &contact))
        .await;
    assert_eq!(a.ack_code(), "AA", "{}", a.raw);
    valid(&a.raw, "PRPM_IN403011UV01");
    assert_eq!(a.certified_id().to_string(), cid);

    let d = details(&h, "cp-3", LICENCE_ROOT, "PH-2201", false).await;
    let now = &orgs(&d)[0];
    assert_eq!(now.child_text("name"), Some("People's Pharmacy"));
    assert_eq!(
        telecoms(now),
        [
            "mailto:pharmacist@peoples.example.org",
            "tel:+1-734-555-0199"
        ]
    );
    // Both versions are kept.
    let d = details(&h, "cp-4", REGISTRY_ROOT, &cid, true).await;
    let versions = orgs(&d);
    assert_eq!(versions.len(), 2);
    assert!(telecoms(versions[0]).is_empty());
}

#[tokio::test]
async fn the_cardiology_group_is_added_updated_suspended_resumed_and_nullified() {
    let h = Hl7::new().await;
    let group = Org::named("Telemedicine Diagnostic Services")
        .id(LICENCE_ROOT, "TDS-1")
        .code("CARD")
        .telecom("tel:+1-555-0100");
    let step = |n: &str, msg: String| {
        valid(
            &msg,
            &msg[msg.find("<PRPM").unwrap() + 1..msg.find(" xmlns").unwrap()],
        );
        (n.to_owned(), msg)
    };
    let sequence = [
        step("add", m::notice("PRPM_IN401010UV01", "cg-1", &group)),
        step(
            "update",
            m::notice(
                "PRPM_IN403030UV01",
                "cg-2",
                &group.clone().telecom("tel:+1-555-0111"),
            ),
        ),
        step(
            "suspend",
            m::notice(
                "PRPM_IN403030UV01",
                "cg-3",
                &Org::named("").id(LICENCE_ROOT, "TDS-1").status("suspended"),
            ),
        ),
    ];
    for (n, msg) in &sequence {
        let a = h.send(msg).await;
        assert_eq!(a.ack_code(), "AA", "{n}: {}", a.raw);
        valid(&a.raw, "MCCI_IN000002UV01");
    }
    let d = details(&h, "cg-4", LICENCE_ROOT, "TDS-1", false).await;
    let g = orgs(&d)[0];
    assert_eq!(status(g), "suspended");
    assert_eq!(telecoms(g), ["tel:+1-555-0100", "tel:+1-555-0111"]);
    let cid = d.certified_id();

    // While suspended, a reseller cannot provision it over SOAP: code 202 with the reason.
    let session = h.f.login(Mode::Soap12).await;
    let form = provision_form(cid);
    let r =
        h.f.call(
            Mode::Soap12,
            "ProvisionCertifiedProvider",
            &provision_body(&session, "tds.direct.example.org", "CDO1", &form),
        )
        .await;
    r.assert_code("202", "suspended");

    // Resumed: provisioning works again.
    let resume = m::notice(
        "PRPM_IN403030UV01",
        "cg-5",
        &Org::named("").id(LICENCE_ROOT, "TDS-1").status("active"),
    );
    assert_eq!(h.send(&resume).await.ack_code(), "AA");
    let r =
        h.f.call(
            Mode::Soap12,
            "ProvisionCertifiedProvider",
            &provision_body(&session, "tds.direct.example.org", "CDO1", &form),
        )
        .await;
    r.assert_code("000", "");

    // Nullified: only the key identifier is sent.
    let nullify = m::status_notice("PRPM_IN402011UV01", "cg-6", LICENCE_ROOT, "TDS-1", "");
    valid(&nullify, "PRPM_IN402011UV01");
    assert_eq!(h.send(&nullify).await.ack_code(), "AA");
    let d = details(&h, "cg-7", LICENCE_ROOT, "TDS-1", true).await;
    let versions = orgs(&d);
    let statuses: Vec<String> = versions.iter().map(|v| status(v)).collect();
    assert_eq!(
        statuses,
        ["active", "active", "suspended", "active", "nullified"],
        "add, update, suspend, resume, nullify"
    );
    let r =
        h.f.call(
            Mode::Soap12,
            "ProvisionCertifiedProvider",
            &provision_body(&session, "tds2.direct.example.org", "CDO1", &form),
        )
        .await;
    r.assert_code("202", "nullified");
}

/// A provisioning form for a registry organization, by its certified_id.
pub fn provision_form(cid: i64) -> String {
    format!(
        "<organization><certified_id>{cid}</certified_id></organization>{}<organizationType>CoveredEntity</organizationType>",
        address(8001, "ada", "Str0ng-Passw0rd")
    )
}

#[tokio::test]
async fn the_physician_groups_are_added_and_a_member_leaves() {
    let h = Hl7::new().await;
    let physician = "2.16.840.1.113883.19.5.50";
    let together = Org::named("DoctorsTogether Physician Group")
        .id(TAX_ID, "94-1111111")
        .addr("3 Oak Ave", "SmallCommunity", "CA", "90001")
        .member(physician, "FAY", "Fay Family")
        .member(physician, "FLORA", "Flora Fern")
        .member(physician, "KAREN", "Karen Kidder");
    let apart = Org::named("DoctorsApart Physician Group")
        .id(TAX_ID, "94-2222222")
        .addr("8 Elm St", "NextDoorTown", "CA", "90002")
        .member(physician, "FLORA", "Flora Fern");
    for (i, o) in [&together, &apart].into_iter().enumerate() {
        let msg = m::notice("PRPM_IN401010UV01", &format!("pg-{i}"), o);
        valid(&msg, "PRPM_IN401010UV01");
        assert_eq!(h.send(&msg).await.ack_code(), "AA");
    }
    // The tax id is the group's identifier, and becomes the verified organization's.
    let tax: String = sqlx::query_scalar(
        "SELECT v.tax_id FROM verified_organizations v JOIN registry_organizations r USING (certified_id) WHERE r.name = 'DoctorsTogether Physician Group'",
    )
    .fetch_one(&h.app().db.pool)
    .await
    .unwrap();
    assert_eq!(tax, "94-1111111");

    // Dr. Fern leaves DoctorsTogether.
    let mut without = together.clone();
    without.members.retain(|(_, e, _)| e != "FLORA");
    let msg = m::notice("PRPM_IN403030UV01", "pg-3", &without);
    valid(&msg, "PRPM_IN403030UV01");
    assert_eq!(h.send(&msg).await.ack_code(), "AA");

    let members = |a: &Answer| -> Vec<String> {
        let org = orgs(a)[0];
        org.children_named("relatedTo")
            .map(|r| {
                r.child("assignedEntity")
                    .unwrap()
                    .child_text("name")
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    let d = details(&h, "pg-4", TAX_ID, "94-1111111", false).await;
    assert_eq!(members(&d), ["Fay Family", "Karen Kidder"]);
    let d = details(&h, "pg-5", TAX_ID, "94-2222222", false).await;
    assert_eq!(members(&d), ["Flora Fern"]);
}

#[tokio::test]
async fn dr_hippocrates_finds_good_home_health_then_gets_its_details() {
    let h = Hl7::new().await;
    for (i, (name, city)) in [
        ("Good Home Health", "Ann Arbor"),
        ("Good Health Hospital", "Ann Arbor"),
        ("Good Nursing Home", "Ypsilanti"),
        ("Best Home Health", "Ann Arbor"),
    ]
    .into_iter()
    .enumerate()
    {
        let o = Org::named(name)
            .id(LICENCE_ROOT, &format!("GH-{i}"))
            .addr(&format!("{i} Main St"), city, "MI", "48104")
            .telecom(&format!("tel:+1-734-555-010{i}"));
        assert_eq!(
            h.send(&m::request("PRPM_IN401030UV01", &format!("gh-{i}"), &o))
                .await
                .ack_code(),
            "AA"
        );
    }
    let names = |a: &Answer| -> Vec<String> {
        orgs(a)
            .iter()
            .map(|o| o.child_text("name").unwrap().to_owned())
            .collect()
    };
    let ask = |msg: &str, c: Candidates<'_>| m::candidates(msg, &c);

    // "Good", a prefix, sorted by name.
    let q = ask(
        "gh-q1",
        Candidates {
            query_id: "q1",
            name: Some("good"),
            sort: Some(("name", "A")),
            ..Default::default()
        },
    );
    valid(&q, "PRPM_IN405010UV01");
    let a = h.send(&q).await;
    valid(&a.raw, "PRPM_IN405110UV01");
    assert_eq!(
        names(&a),
        [
            "Good Health Hospital",
            "Good Home Health",
            "Good Nursing Home"
        ]
    );
    assert_eq!(query_ack(&a), ("OK".into(), 3, 3, 0));

    // Contains, and an address part; descending.
    let q = ask(
        "gh-q2",
        Candidates {
            query_id: "q2",
            name: Some("Home"),
            contains: true,
            city: Some("Ann Arbor"),
            sort: Some(("name", "D")),
            ..Default::default()
        },
    );
    let a = h.send(&q).await;
    assert_eq!(names(&a), ["Good Home Health", "Best Home Health"]);

    // Paging: two now, the rest on continuation.
    let q = ask(
        "gh-q3",
        Candidates {
            query_id: "q3",
            name: Some("Good"),
            initial_quantity: Some(2),
            sort: Some(("name", "A")),
            ..Default::default()
        },
    );
    let a = h.send(&q).await;
    assert_eq!(names(&a), ["Good Health Hospital", "Good Home Health"]);
    assert_eq!(query_ack(&a), ("OK".into(), 3, 2, 1));
    let q = ask(
        "gh-q4",
        Candidates {
            query_id: "q3",
            continued: true,
            name: Some("Good"),
            initial_quantity: Some(2),
            sort: Some(("name", "A")),
            ..Default::default()
        },
    );
    valid(&q, "PRPM_IN405010UV01");
    let a = h.send(&q).await;
    assert_eq!(names(&a), ["Good Nursing Home"]);
    assert_eq!(query_ack(&a), ("OK".into(), 3, 1, 0));

    // Nothing found.
    let a = h
        .send(&ask(
            "gh-q5",
            Candidates {
                query_id: "q5",
                name: Some("Zebra"),
                ..Default::default()
            },
        ))
        .await;
    assert_eq!(query_ack(&a).0, "NF");

    // He picks Good Home Health: its details, by the id the candidate list gave.
    let a = h
        .send(&ask(
            "gh-q6",
            Candidates {
                query_id: "q6",
                name: Some("Good Home"),
                ..Default::default()
            },
        ))
        .await;
    let cid = a.certified_id().to_string();
    let d = details(&h, "gh-d", REGISTRY_ROOT, &cid, false).await;
    let org = orgs(&d)[0];
    assert_eq!(org.child_text("name"), Some("Good Home Health"));
    assert_eq!(telecoms(org), ["tel:+1-734-555-0100"]);
    assert_eq!(
        org.child("addr").unwrap().child_text("city"),
        Some("Ann Arbor")
    );
}

#[tokio::test]
async fn the_report_and_the_administrative_report_are_html_documents() {
    let h = Hl7::new().await;
    for (i, (name, code)) in [
        ("Lakeside Pharmacy", "PHARM"),
        ("Hilltop Pharmacy", "PHARM"),
        ("Riverside Clinic", "CLIN"),
    ]
    .into_iter()
    .enumerate()
    {
        let o = Org::named(name)
            .id(LICENCE_ROOT, &format!("R-{i}"))
            .code(code);
        assert_eq!(
            h.send(&m::request("PRPM_IN401030UV01", &format!("r-{i}"), &o))
                .await
                .ack_code(),
            "AA"
        );
    }
    let suspend = m::notice(
        "PRPM_IN403030UV01",
        "r-s",
        &Org::named("").id(LICENCE_ROOT, "R-2").status("suspended"),
    );
    assert_eq!(h.send(&suspend).await.ack_code(), "AA");

    let q = m::report("r-q", Some("active"));
    valid(&q, "PRPM_IN406030UV01");
    let a = h.send(&q).await;
    valid(&a.raw, "PRPM_IN406031UV01");
    let text = all(&a.root, "documentEvent")[0].child("text").unwrap();
    assert_eq!(text.attr("mediaType"), Some("text/html"));
    assert!(
        text.text.contains("<td>Lakeside Pharmacy</td>"),
        "{}",
        text.text
    );
    assert!(text.text.contains("<td>Hilltop Pharmacy</td>"));
    assert!(!text.text.contains("Riverside"), "suspended, filtered out");
    assert_eq!(query_ack(&a).1, 2);

    let q = m::admin_report("r-a", "20000101", "20991231");
    valid(&q, "PRPM_IN406040UV01");
    let a = h.send(&q).await;
    valid(&a.raw, "PRPM_IN406041UV01");
    let html = &all(&a.root, "documentEvent")[0].child("text").unwrap().text;
    assert!(
        html.contains("<td>active</td><td>PHARM</td><td>2</td>"),
        "{html}"
    );
    assert!(
        html.contains("<td>suspended</td><td>CLIN</td><td>1</td>"),
        "{html}"
    );
    assert!(html.contains("<td>add</td><td></td><td>3</td>"), "{html}");
    assert!(
        html.contains("<td>suspend</td><td></td><td>1</td>"),
        "{html}"
    );
    // A period before any change counts none.
    let a = h
        .send(&m::admin_report("r-b", "20000101", "20010101"))
        .await;
    let html = &all(&a.root, "documentEvent")[0].child("text").unwrap().text;
    assert!(!html.contains("<td>add</td>"), "{html}");
}
