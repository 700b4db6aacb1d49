//! The acceptance story: ops links a TA, the TA applies for a patient, an officer approves,
//! the CA job issues, the address comes alive for a vendor, and the applicant gets one e-mail
//! per step.

use serde_json::{Value, json};

use super::*;
use crate::messaging::{BEN, SENDER, message};

#[tokio::test]
async fn a_patient_application_ends_with_a_live_address_and_one_mail_per_step() {
    let s = Setup::new().await;
    let patient_address = format!("pat.doe@{DOMAIN_B}");

    // The SOAP door sees the same link: Lakeside has a trusted agent now.
    let session = s.w.f.login(crate::soap::Mode::Soap12).await;
    let r =
        s.w.f
            .call(
                crate::soap::Mode::Soap12,
                "CheckProvisionedOrganizationWithOtherInfo",
                &format!("<sessionId>{session}</sessionId><DirectDomain>{DOMAIN_B}</DirectDomain>"),
            )
            .await;
    r.assert_code("000", "");
    let entry = r
        .ret()
        .child("organizations")
        .unwrap()
        .child("otherInfo")
        .unwrap()
        .child("entry")
        .unwrap();
    assert_eq!(entry.child_text("key"), Some("hasTrustedAgent"));
    assert_eq!(entry.child_text("value"), Some("1"));

    // The TA applies; the application waits for review.
    let id = s.apply_ok(&patient("pat.doe")).await;
    let (code, v) = s.get(&s.ta, &format!("{PATH}/{id}")).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], "Submitted");
    assert_eq!(v["notes"], "Identity checked in clinic with two documents.");
    assert_eq!(v["categoryOid"], "1.3.6.1.4.1.41179.2.4");
    assert!(v["serialNumber"].is_null());
    // The status check by address, with the TA headers (the spec's way).
    let r =
        s.w.f
            .app
            .http
            .get(s.url(&format!("{PATH}?address={patient_address}")))
            .header("X-TA-Username", s.ta.0.to_string())
            .header("X-TA-Password", &s.ta.1)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    let listed: Vec<Value> = r.json().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());

    // Officers see it among the pending ones.
    let (code, pending) = s.get(&s.officer, PATH).await;
    assert_eq!(code, 200);
    assert!(
        pending
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == id.as_str())
    );

    // Approval: the address exists, pending, until the certificate is issued.
    let approved = s.approve_ok(&id).await;
    assert!(approved["approvedAt"].is_string());
    let pool = &s.w.f.app.db.pool;
    let address_status = || async {
        sqlx::query_scalar::<_, String>(
            "SELECT status FROM direct_addresses WHERE lower(username) = 'pat.doe'",
        )
        .fetch_one(pool)
        .await
        .unwrap()
    };
    assert_eq!(address_status().await, "pending");
    let auto_renew: bool = sqlx::query_scalar(
        "SELECT auto_renew FROM certificates WHERE lower(subject_name) = lower($1)",
    )
    .bind(&patient_address)
    .fetch_one(pool)
    .await
    .unwrap();
    assert!(auto_renew, "auto-renew is kept on the certificate request");

    // The CA job runs (and the e-mail jobs): Provisioned, with the serial.
    s.drain().await;
    let v = s.status(&id).await;
    assert_eq!(v["status"], "Provisioned", "{v}");
    assert_eq!(address_status().await, "active");
    for step in [
        "submittedAt",
        "approvedAt",
        "certificateIssuedAt",
        "provisionedAt",
    ] {
        assert!(v[step].is_string(), "{step}: {v}");
    }
    let serial = v["serialNumber"].as_str().unwrap().to_owned();

    // The certificate: rfc822Name = the patient's address, category policy .2.4.
    let pem = s.certificate_pem(&serial).await;
    let (emails, dns, text) = read_certificate(&pem);
    assert_eq!(emails, std::slice::from_ref(&patient_address));
    assert!(dns.is_empty());
    assert!(text.contains("1.3.6.1.4.1.41179.2.4"), "{text}");
    if let Some(judged) = openssl_text(&pem) {
        assert!(
            judged.contains(&format!("email:{patient_address}")),
            "{judged}"
        );
        assert!(judged.contains("Policy: 1.3.6.1.4.1.41179.2.4"), "{judged}");
    }

    // A vendor granted Lakeside sends from the patient's address and receives at it.
    s.w.put_endpoint(
        &s.w.vendor_b,
        &patient_address,
        json!({ "inboundUrl": s.w.inbox.url("/inbound") }),
    )
    .await;
    let mut from_patient = message("urn:uuid:7d1f0f6e-3b8a-4d4e-9a51-0c2d8e6f1a01", BEN, false);
    from_patient["fromDirectAddress"] = json!(patient_address);
    let r =
        s.w.f
            .app
            .post_json_as(crate::messaging::SEND, &s.w.vendor_b, &from_patient)
            .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    s.w.send_ok(&message(
        "urn:uuid:7d1f0f6e-3b8a-4d4e-9a51-0c2d8e6f1a02",
        &patient_address,
        false,
    ))
    .await;
    s.drain().await;
    let pushes: Vec<Value> = s.w.inbox.accepted().iter().map(|p| p.json()).collect();
    assert!(
        pushes
            .iter()
            .any(|p| p["fromDirectAddress"] == patient_address.as_str()
                && p["toDirectAddress"] == BEN),
        "{pushes:#?}"
    );
    assert!(
        pushes.iter().any(|p| p["fromDirectAddress"] == SENDER
            && p["toDirectAddress"] == patient_address.as_str()),
        "{pushes:#?}"
    );

    // One e-mail per step, none twice, with the first name and the id only.
    s.drain().await;
    let mails = s.sink.captured();
    assert_eq!(mails.len(), 3, "{mails:#?}");
    let mut subjects = Vec::new();
    for m in &mails {
        assert_eq!(m.rcpt_to, [NOTIFY_TO]);
        let text = String::from_utf8_lossy(&m.data).into_owned();
        assert!(text.contains("Hello Patricia,"), "{text}");
        assert!(text.contains(&id), "{text}");
        for secret in ["Doe-Sample", "pat.doe@", "Albany", "clinic"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        let subject = text
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap()
            .to_owned();
        subjects.push(subject);
    }
    subjects.sort();
    assert_eq!(
        subjects,
        [
            "Your Direct address is ready",
            "Your certificate application was approved",
            "Your certificate application was received",
        ]
    );
    let sent: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM certificate_application_notifications WHERE sent_at IS NOT NULL",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(sent, 3);

    // Every step audited, without PHI.
    let actions: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, actor FROM audit_log WHERE object_type = 'certificate_application' AND object_id = $1 ORDER BY id",
    )
    .bind(&id)
    .fetch_all(pool)
    .await
    .unwrap();
    let names: Vec<&str> = actions.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        names,
        [
            "certificate_application.submit",
            "certificate_application.approve",
            "certificate_application.provision"
        ]
    );
    assert_eq!(actions[0].1, format!("client:{}", s.ta.0));
    assert_eq!(actions[1].1, format!("client:{}", s.officer.0));
    let link_audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'trusted_agent.link' AND object_id = $1",
    )
    .bind(s.ta.0.to_string())
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(link_audited, 1);
}
