//! The candidate filters beyond name and address: organization ids, role type code and status,
//! alone and with a name.

use super::messages::{self as m, Candidates, LICENCE_ROOT, Org};
use super::{Answer, Hl7, all};

fn names(a: &Answer) -> Vec<String> {
    let mut n: Vec<String> = all(&a.root, "subject1")
        .into_iter()
        .filter_map(|s| s.child("assignedEntity"))
        .map(|o| o.child_text("name").unwrap().to_owned())
        .collect();
    n.sort();
    n
}

async fn ask(h: &Hl7, msg_id: &str, c: Candidates<'_>) -> Answer {
    h.send(&m::candidates(msg_id, &c)).await
}

#[tokio::test]
async fn candidates_are_found_by_id_by_type_code_and_by_status() {
    let h = Hl7::new().await;
    for (i, (name, code)) in [
        ("Lakeside Cardiology", "CARD"),
        ("Lakeside Pharmacy", "PHARM"),
        ("Hilltop Cardiology", "CARD"),
    ]
    .into_iter()
    .enumerate()
    {
        let o = Org::named(name)
            .id(LICENCE_ROOT, &format!("F-{i}"))
            .code(code);
        let a = h
            .send(&m::request("PRPM_IN401030UV01", &format!("f-add-{i}"), &o))
            .await;
        assert_eq!(a.ack_code(), "AA", "{}", a.raw);
    }
    // Hilltop is suspended by its licensing body.
    let a = h
        .send(&m::notice(
            "PRPM_IN403030UV01",
            "f-suspend",
            &Org::named("").id(LICENCE_ROOT, "F-2").status("suspended"),
        ))
        .await;
    assert_eq!(a.ack_code(), "AA", "{}", a.raw);

    // By the licence id: exactly that organization; an unknown id finds nothing.
    let a = ask(
        &h,
        "f-q1",
        Candidates {
            query_id: "f1",
            ids: &[(LICENCE_ROOT, "F-1")],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(a.ack_code(), "AA", "{}", a.raw);
    assert_eq!(names(&a), ["Lakeside Pharmacy"]);
    let a = ask(
        &h,
        "f-q2",
        Candidates {
            query_id: "f2",
            ids: &[(LICENCE_ROOT, "F-9")],
            ..Default::default()
        },
    )
    .await;
    assert!(names(&a).is_empty(), "{}", a.raw);

    // By the role type code, alone and with a name prefix.
    let a = ask(
        &h,
        "f-q3",
        Candidates {
            query_id: "f3",
            code: Some("CARD"),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(names(&a), ["Hilltop Cardiology", "Lakeside Cardiology"]);
    let a = ask(
        &h,
        "f-q4",
        Candidates {
            query_id: "f4",
            name: Some("Lakeside"),
            code: Some("CARD"),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(names(&a), ["Lakeside Cardiology"]);

    // By status: the suspended one only, and the active cardiologists only.
    let a = ask(
        &h,
        "f-q5",
        Candidates {
            query_id: "f5",
            status: Some("suspended"),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(names(&a), ["Hilltop Cardiology"]);
    let a = ask(
        &h,
        "f-q6",
        Candidates {
            query_id: "f6",
            code: Some("CARD"),
            status: Some("active"),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(names(&a), ["Lakeside Cardiology"]);
}
