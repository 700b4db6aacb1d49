//! Bad input: each refused with an acknowledgement (AR when we cannot read it or it lacks the
//! structure its schema requires, AE for a business refusal) whose detail names the element,
//! and nothing written.

use super::messages::{self as m, LICENCE_ROOT, Org};
use super::schema::valid;
use super::{Hl7, footprint, post};

#[tokio::test]
async fn bad_messages_are_refused_naming_the_element_and_nothing_is_written() {
    let h = Hl7::new().await;
    let first = Org::named("Harbor Pharmacy").id(LICENCE_ROOT, "HB-1");
    assert_eq!(
        h.send(&m::request("PRPM_IN401030UV01", "b-0", &first))
            .await
            .ack_code(),
        "AA"
    );
    let before = footprint(h.app()).await;

    let good = m::request(
        "PRPM_IN401030UV01",
        "b-1",
        &Org::named("Bay Clinic").id(LICENCE_ROOT, "BC-1"),
    );
    let cases: Vec<(&str, String, &str, &str, &str)> = vec![
        (
            "malformed XML",
            good[..good.len() - 30].to_owned(),
            "AR",
            "SYN",
            "/",
        ),
        (
            "an entity declaration",
            r#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "e">]><x>&e;</x>"#.to_owned(),
            "AR",
            "SYN",
            "/",
        ),
        (
            "an unknown interaction",
            good.replace("PRPM_IN401030UV01", "PRPM_IN409999UV01"),
            "AR",
            "NS200",
            "/PRPM_IN409999UV01",
        ),
        (
            "a response sent to us",
            good.replace("PRPM_IN401030UV01", "PRPM_IN401031UV01"),
            "AR",
            "NS200",
            "/PRPM_IN401031UV01",
        ),
        (
            "a missing required element",
            good.replace(
                r#"<interactionId root="2.16.840.1.113883.1.6" extension="PRPM_IN401030UV01"/>"#,
                "",
            ),
            "AR",
            "SYN105",
            "/PRPM_IN401030UV01/interactionId",
        ),
        (
            "a missing subject",
            good.replace("<subject1 typeCode=\"SBJ\">", "<subject9 typeCode=\"SBJ\">")
                .replace("</subject1>", "</subject9>"),
            "AR",
            "SYN105",
            "/PRPM_IN401030UV01/controlActProcess/subject/registrationRequest/subject1",
        ),
        (
            "a debugging processingCode",
            m::request_with(
                "PRPM_IN401030UV01",
                "b-2",
                "D",
                &m::entity(&Org::named("Bay Clinic").id(LICENCE_ROOT, "BC-1")),
            ),
            "AR",
            "NS260",
            "/PRPM_IN401030UV01/processingCode",
        ),
        (
            "an id another organization has",
            m::request(
                "PRPM_IN401030UV01",
                "b-3",
                &Org::named("Bay Clinic")
                    .id(LICENCE_ROOT, "BC-1")
                    .id(LICENCE_ROOT, "HB-1"),
            ),
            "AE",
            "KEY205",
            "/PRPM_IN401030UV01/controlActProcess/subject/registrationRequest/subject1/assignedEntity/id[2]",
        ),
        (
            "an add without a name",
            m::request(
                "PRPM_IN401030UV01",
                "b-4",
                &Org::named("").id(LICENCE_ROOT, "BC-9"),
            ),
            "AE",
            "SYN105",
            "/PRPM_IN401030UV01/controlActProcess/subject/registrationRequest/subject1/assignedEntity/name",
        ),
        (
            "an update of an unknown organization",
            m::request(
                "PRPM_IN403010UV01",
                "b-5",
                &Org::named("Nobody").id(LICENCE_ROOT, "NOPE"),
            ),
            "AE",
            "KEY204",
            "/PRPM_IN403010UV01/controlActProcess/subject/registrationRequest/subject1/assignedEntity/id",
        ),
        (
            "an unknown status",
            m::notice(
                "PRPM_IN403030UV01",
                "b-6",
                &Org::named("").id(LICENCE_ROOT, "HB-1").status("sleeping"),
            ),
            "AE",
            "SYN102",
            "/PRPM_IN403030UV01/controlActProcess/subject/registrationEvent/subject1/assignedEntity/statusCode",
        ),
        (
            "a wrong namespace",
            good.replace("urn:hl7-org:v3", "urn:example:other"),
            "AR",
            "SYN",
            "/PRPM_IN401030UV01",
        ),
    ];
    for (what, body, ack, code, location) in cases {
        let a = h.send(&body).await;
        valid(&a.raw, "MCCI_IN000002UV01");
        assert_eq!(a.ack_code(), ack, "{what}: {}", a.raw);
        assert_eq!(a.status, if ack == "AR" { 400 } else { 200 }, "{what}");
        let (c, l, text) = a.detail();
        assert_eq!((c.as_str(), l.as_str()), (code, location), "{what}: {text}");
        assert!(!text.is_empty());
        assert_eq!(
            footprint(h.app()).await,
            before,
            "{what}: the database changed"
        );
    }
    // A collision over SOAP too, and the refusal targets the request's id.
    let dup = m::request(
        "PRPM_IN401030UV01",
        "b-7",
        &Org::named("Again").id(LICENCE_ROOT, "HB-1"),
    );
    let a = post(
        h.app(),
        &h.registry,
        "application/soap+xml",
        m::soap12(&dup),
    )
    .await;
    assert_eq!((a.ack_code(), a.target().as_str()), ("AE", "b-7"));
    assert_eq!(footprint(h.app()).await, before);
}
