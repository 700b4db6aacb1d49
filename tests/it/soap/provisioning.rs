//! The provisioning operations end to end, each driven as MTOM, SOAP 1.1 and SOAP 1.2.

use std::time::Duration;

use hisp_gateway::auth::secrets::verify_secret_sync;

use super::*;
use crate::helpers::count;

async fn balance(f: &Fixture) -> i64 {
    sqlx::query_scalar("SELECT balance_cents FROM reseller_accounts WHERE reseller_id = $1")
        .bind(f.reseller.0)
        .fetch_one(&f.app.db.pool)
        .await
        .unwrap()
}

async fn password_hash(f: &Fixture, username: &str, domain: &str) -> String {
    sqlx::query_scalar(
        "SELECT password_hash FROM direct_addresses WHERE username = $1 AND domain = $2",
    )
    .bind(username)
    .bind(domain)
    .fetch_one(&f.app.db.pool)
    .await
    .unwrap()
}

fn items<'a>(r: &'a Reply, name: &'a str) -> Vec<(String, String, String)> {
    r.ret()
        .children_named(name)
        .map(|i| {
            let key = i
                .child_text("username")
                .or(i.child_text("idp_id"))
                .unwrap_or_default();
            (
                key.to_owned(),
                i.child_text("status").unwrap_or_default().to_owned(),
                i.child_text("success").unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn provisioning_charges_the_offer_and_the_organization_becomes_activated() {
    let f = Fixture::new().await;
    for mode in MODES {
        let domain = domain("harbor", mode);
        let session = f.login(mode).await;
        let before = balance(&f).await;
        let form = standard_form(&format!(
            "{}<directAddresses><firstName>Ben</firstName><lastName>Ray</lastName><ssn4>2222</ssn4><dob>1980-06-15</dob>\
             <username>Ben.Ray</username><password>An0ther-Secret</password>\
             <addressSettings><settingName>timely_and_reliable_flag</settingName><settingValue>true</settingValue></addressSettings>\
             <addressSettings><settingName>favourite_colour</settingName><settingValue>blue</settingValue></addressSettings></directAddresses>",
            address(8001, "ada", "Str0ng-Passw0rd")
        ));
        let r = f
            .call(
                mode,
                "ProvisionCertifiedProvider",
                &provision_body(&session, &domain, "CDO2", &form),
            )
            .await;
        r.assert_code("000", "");
        let pay = r
            .ret()
            .child("paymentConfirmation")
            .expect("paymentConfirmation");
        assert_eq!(
            pay.child_text("amount"),
            Some("240.00"),
            "CDO2 = 2 x 120.00"
        );
        let product = pay.child("products").unwrap();
        assert_eq!(product.child_text("name"), Some("CDO2"));
        assert_eq!(product.child_text("quantity"), Some("1"));
        assert_eq!(product.child_text("salePrice"), Some("240.00"));
        let today = Utc::now().date_naive();
        assert_eq!(
            product.child_text("startDate"),
            Some(today.to_string().as_str())
        );
        assert!(pay.child_text("orderId").unwrap().parse::<i64>().unwrap() > 0);
        assert_eq!(
            items(&r, "updatedAddresses"),
            vec![
                ("ada".into(), "Provisioned".into(), "true".into()),
                ("ben.ray".into(), "Provisioned".into(), "true".into())
            ]
        );
        assert_eq!(
            items(&r, "updatedAuthorizedUsers"),
            vec![("8003".into(), "Provisioned".into(), "true".into())]
        );
        assert_eq!(
            balance(&f).await,
            before - 24000,
            "captured in the same commit"
        );
        let hash = password_hash(&f, "ada", &domain).await;
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_secret_sync("Str0ng-Passw0rd", &hash));

        // Before the CA job runs the organization waits for its certificate.
        let check_body =
            format!("<sessionId>{session}</sessionId><DirectDomain>{domain}</DirectDomain>");
        let check = |op| f.call(mode, op, &check_body);
        let r = check("CheckProvisionedOrganization").await;
        r.assert_code("000", "");
        let org = r.ret().child("organizations").unwrap();
        assert_eq!(
            org.child_text("organizationStatus"),
            Some("CertificatePending")
        );
        f.app.worker.run_until_idle().await.unwrap();

        let r = check("CheckProvisionedOrganizationWithOtherInfo").await;
        r.assert_code("000", "");
        let org = r.ret().child("organizations").unwrap();
        assert_eq!(org.child_text("organizationStatus"), Some("Activated"));
        assert_eq!(org.child_text("certified_id"), Some("7001"));
        assert_eq!(org.child_text("directDomain"), Some(domain.as_str()));
        assert_eq!(org.child_text("name"), Some("Harbor Family Medicine"));
        assert_eq!(
            org.child_text("createdDate"),
            Some(today.to_string().as_str())
        );
        assert_eq!(org.child_text("numOfAddresses"), Some("2"));
        assert_eq!(org.child_text("numOfAuthorizedUsers"), Some("1"));
        assert_eq!(org.child_text("taxid"), Some("12-3456789"));
        assert_eq!(org.child_text("npi"), Some("1234567893"));
        assert_eq!(org.child_text("address"), Some("10 Main St, Suite 2"));
        assert_eq!(org.child_text("state"), Some("NJ"));
        assert_eq!(org.child_text("zipcode"), Some("08601"));
        assert_eq!(org.child_text("certificateCategory"), Some("CoveredEntity"));
        let entry = org.child("otherInfo").unwrap().child("entry").unwrap();
        assert_eq!(entry.child_text("key"), Some("hasTrustedAgent"));
        assert_eq!(entry.child_text("value"), Some("0"));
        // Settings: the organization turned notify off; Ben turned timely & reliable on; the
        // unknown setting is ignored; nothing else moves from its default.
        let settings = |el: &Element, name: &str| -> Vec<(String, String)> {
            el.children_named(name)
                .map(|s| {
                    (
                        s.child_text("settingName").unwrap().to_owned(),
                        s.child_text("settingValue").unwrap().to_owned(),
                    )
                })
                .collect()
        };
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        assert_eq!(
            settings(org, "organizationDefaultSettings"),
            pairs(&[
                ("comsume_mdn_flag", "false"),
                ("is_private_flag", "true"),
                ("notify_flag", "false"),
                ("timely_and_reliable_flag", "false")
            ])
        );
        let ben = org
            .children_named("directAddresses")
            .find(|a| a.child_text("username") == Some("ben.ray"))
            .unwrap();
        assert_eq!(
            ben.child_text("idp_id"),
            Some("8002"),
            "matched by name, ssn4 and dob"
        );
        assert_eq!(ben.child("password"), None, "passwords never leave");
        assert_eq!(
            settings(ben, "addressSettings"),
            pairs(&[
                ("comsume_mdn_flag", "false"),
                ("is_private_flag", "true"),
                ("notify_flag", "false"),
                ("timely_and_reliable_flag", "true")
            ])
        );
        // The certificate is domain-bound, with the covered-entity policy.
        let serial: String = sqlx::query_scalar(
            "SELECT serial FROM certificates WHERE subject_name = $1 AND status = 'issued'",
        )
        .bind(&domain)
        .fetch_one(&f.app.db.pool)
        .await
        .unwrap();
        let (cert, x509) = service::pki::by_serial(&f.app.db.pool, &serial)
            .await
            .unwrap();
        assert_eq!(cert.category.as_str(), "CoveredEntity");
        let text = String::from_utf8(x509.to_text().unwrap()).unwrap();
        assert!(text.contains(&format!("DNS:{domain}")));
        assert!(text.contains("1.3.6.1.4.1.41179.2.1"));
    }
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action IN ('organization.provision', 'address.provision')",
    )
    .fetch_one(&f.app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        audited,
        3 * 3,
        "one organization and two addresses per mode"
    );
}

#[tokio::test]
async fn added_addresses_are_per_item_prorated_and_capped_by_the_offer() {
    let f = Fixture::new().await;
    for mode in MODES {
        let domain = domain("caps", mode);
        let start = f.app.state.clock.now().date_naive();
        provision(&f, mode, &domain, "CDO3").await;
        // 73 days later that part of the service year is gone from the price of an address
        // (a fifth of a 365-day year: 120.00 becomes 96.00).
        f.app.state.clock.advance(Duration::from_secs(73 * 86_400));
        let session = f.login(mode).await;
        let form = format!(
            "{}{}<directAddresses><idp_id>9999</idp_id><username>ghost</username><password>Passw0rd-123</password></directAddresses>\
             <directAddresses><idp_id>8002</idp_id><username>fax</username><password>Passw0rd-123</password><userType>XD</userType></directAddresses>",
            address(8002, "ben", "Passw0rd-123"),
            address(8003, "ada", "Passw0rd-123"),
        );
        let r = f
            .call(
                mode,
                "AddDirectAddressesToCertifiedProvider",
                &format!("<sessionId>{session}</sessionId><DirectDomain>{domain}</DirectDomain><form>{form}</form>"),
            )
            .await;
        // The first failing item decides the code; the good one is provisioned anyway.
        r.assert_code("014", "ada@");
        assert_eq!(
            items(&r, "updatedAddresses"),
            vec![
                ("ben".into(), "Provisioned".into(), "true".into()),
                ("ada".into(), "ProvisionFailed".into(), "false".into()),
                ("ghost".into(), "ProvisionFailed".into(), "false".into()),
                ("fax".into(), "ProvisionFailed".into(), "false".into()),
            ]
        );
        let messages: Vec<&str> = r
            .ret()
            .children_named("updatedAddresses")
            .map(|i| i.child_text("message").unwrap())
            .collect();
        assert!(messages[1].contains("already exists"));
        assert!(messages[2].contains("9999"), "{}", messages[2]);
        assert!(messages[3].contains("XD"), "{}", messages[3]);
        let pay = r.ret().child("paymentConfirmation").unwrap();
        let product = pay.child("products").unwrap();
        assert_eq!(product.child_text("quantity"), Some("1"));
        assert_eq!(product.child_text("offerPrice"), Some("120.00"));
        let expire = start + chrono::Months::new(12);
        let year = (expire - start).num_days();
        let left = year - 73;
        let expected = format!("{:.2}", (12000 * left) as f64 / year as f64 / 100.0);
        if year == 365 {
            assert_eq!(expected, "96.00");
        }
        assert_eq!(product.child_text("salePrice"), Some(expected.as_str()));
        assert_eq!(pay.child_text("amount"), Some(expected.as_str()));
        assert_eq!(
            product.child_text("expireDate"),
            Some(expire.to_string().as_str())
        );

        // Two addresses exist under CDO3: two more would exceed it, so neither is added.
        let over = format!(
            "{}{}",
            address(8002, "one", "Passw0rd-123"),
            address(8002, "two", "Passw0rd-123")
        );
        let r = f
            .call(
                mode,
                "AddDirectAddressesToCertifiedProvider",
                &format!("<sessionId>{session}</sessionId><DirectDomain>{domain}</DirectDomain><form>{over}</form>"),
            )
            .await;
        r.assert_code("003", "CDO3");
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM direct_addresses WHERE domain = $1")
            .bind(&domain)
            .fetch_one(&f.app.db.pool)
            .await
            .unwrap();
        assert_eq!(n, 2);
        let r = f
            .call(
                mode,
                "AddDirectAddressesToCertifiedProvider",
                &format!("<sessionId>{session}</sessionId><DirectDomain>{domain}</DirectDomain><form>{}</form>", address(8003, "cy", "Passw0rd-123")),
            )
            .await;
        r.assert_code("000", "");
    }
}

#[tokio::test]
async fn authorized_users_and_password_updates_report_each_item() {
    let f = Fixture::new().await;
    for mode in MODES {
        let domain = domain("people", mode);
        let session = provision(&f, mode, &domain, "CDO5").await;
        let r = f
            .call(
                mode,
                "AddAuthorizedUsersToCertifiedProvider",
                &format!(
                    "<sessionId>{session}</sessionId><DirectDomain>{domain}</DirectDomain><form>\
                     <authorizedUsers><idp_id>8001</idp_id></authorizedUsers>\
                     <authorizedUsers><idp_id>8003</idp_id></authorizedUsers>\
                     <authorizedUsers><firstName>Ada</firstName><lastName>Stone</lastName><ssn4>9999</ssn4><dob>1975-03-02</dob></authorizedUsers>\
                     </form>"
                ),
            )
            .await;
        r.assert_code("205", "Ada Stone");
        assert_eq!(
            items(&r, "updatedAuthorizedUsers"),
            vec![
                ("8001".into(), "Provisioned".into(), "true".into()),
                ("8003".into(), "Updated".into(), "true".into()),
                ("".into(), "ProvisionFailed".into(), "false".into()),
            ]
        );

        let before = password_hash(&f, "ada", &domain).await;
        let r = f
            .call(
                mode,
                "UpdateDirectAddressPassword",
                &format!(
                    "<sessionId>{session}</sessionId><DirectDomain>{domain}</DirectDomain><form>\
                     <directAddresses><username>ada</username><password></password></directAddresses>\
                     <directAddresses><username>nobody</username><password>Whatever-123</password></directAddresses>\
                     </form>"
                ),
            )
            .await;
        r.assert_code("210", &format!("nobody@{domain}"));
        assert_eq!(
            items(&r, "updatedAddresses"),
            vec![
                ("ada".into(), "Updated".into(), "true".into()),
                ("nobody".into(), "UpdateFailed".into(), "false".into()),
            ]
        );
        assert_eq!(
            password_hash(&f, "ada", &domain).await,
            before,
            "empty password ignored"
        );

        let r = f
            .call(
                mode,
                "UpdateDirectAddressPassword",
                &format!(
                    "<sessionId>{session}</sessionId><DirectDomain>{domain}</DirectDomain><form>\
                     <directAddresses><username>ADA</username><password>Brand-New-Pass1</password></directAddresses></form>"
                ),
            )
            .await;
        r.assert_code("000", "");
        let after = password_hash(&f, "ada", &domain).await;
        assert!(verify_secret_sync("Brand-New-Pass1", &after));
        assert!(!verify_secret_sync("Str0ng-Passw0rd", &after));
    }
    assert_eq!(count(&f.app.db.pool, "organizations").await, 3);
}

#[tokio::test]
async fn listing_shows_only_the_callers_organizations() {
    let f = Fixture::new().await;
    let other = new_reseller(&f.app, "1000.00").await;
    let mode = Mode::Soap12;
    provision(&f, mode, "mine-a.example.org", "CDO1").await;
    provision(&f, mode, "mine-b.example.org", "CDONLP2").await;
    let other_session = login_as(&f.app, mode, &other).await;
    let form = standard_form(&address(8002, "zed", "Passw0rd-123"));
    f.call(
        mode,
        "ProvisionCertifiedProvider",
        &provision_body(&other_session, "theirs.example.org", "CDO1", &form),
    )
    .await
    .assert_code("000", "");
    for mode in MODES {
        let session = f.login(mode).await;
        let r = f
            .call(
                mode,
                "ListProvisionedOrganizations",
                &format!("<sessionId>{session}</sessionId>"),
            )
            .await;
        r.assert_code("000", "");
        let domains: Vec<&str> = r
            .ret()
            .children_named("organizations")
            .map(|o| o.child_text("directDomain").unwrap())
            .collect();
        assert_eq!(domains, ["mine-a.example.org", "mine-b.example.org"]);
        for op in [
            "CheckProvisionedOrganization",
            "CheckProvisionedOrganizationWithOtherInfo",
        ] {
            let r = f
                .call(mode, op, &format!("<sessionId>{session}</sessionId><DirectDomain>theirs.example.org</DirectDomain>"))
                .await;
            r.assert_code("013", "another reseller");
            let r = f
                .call(mode, op, &format!("<sessionId>{session}</sessionId><DirectDomain>nowhere.example.org</DirectDomain>"))
                .await;
            r.assert_code("208", "domain(nowhere.example.org)");
        }
    }
}

/// Whether the address has a password hash at all.
async fn has_password(f: &Fixture, username: &str, domain: &str) -> bool {
    sqlx::query_scalar(
        "SELECT password_hash IS NOT NULL FROM direct_addresses WHERE username = $1 AND domain = $2",
    )
    .bind(username)
    .bind(domain)
    .fetch_one(&f.app.db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn an_empty_password_is_ignored_and_the_address_has_none() {
    let f = Fixture::new().await;
    for mode in MODES {
        let domain = domain("nopass", mode);
        let session = f.login(mode).await;
        // Empty, and absent: both provisioned, neither with a password.
        let form = standard_form(&format!(
            "{}<directAddresses><idp_id>8002</idp_id><username>ben</username><userType>SMTP</userType></directAddresses>",
            address(8001, "ada", "")
        ));
        let r = f
            .call(
                mode,
                "ProvisionCertifiedProvider",
                &provision_body(&session, &domain, "CDO5", &form),
            )
            .await;
        r.assert_code("000", "");
        assert_eq!(
            items(&r, "updatedAddresses"),
            vec![
                ("ada".into(), "Provisioned".into(), "true".into()),
                ("ben".into(), "Provisioned".into(), "true".into()),
            ]
        );
        let message = r.ret().child("updatedAddresses").unwrap();
        assert!(
            message
                .child_text("message")
                .unwrap()
                .contains("without a password"),
            "{}",
            r.raw
        );
        assert!(!has_password(&f, "ada", &domain).await);
        assert!(!has_password(&f, "ben", &domain).await);

        // Adding: whitespace only is no password either; a given password is checked as before.
        let add = |items: String| {
            format!(
                "<sessionId>{session}</sessionId><DirectDomain>{domain}</DirectDomain><form>{items}</form>"
            )
        };
        let r = f
            .call(
                mode,
                "AddDirectAddressesToCertifiedProvider",
                &add(format!(
                    "{}{}{}",
                    address(8003, "cy", " \n\t "),
                    address(8003, "dee", "short"),
                    address(8003, "eve", "Passw0rd-123")
                )),
            )
            .await;
        r.assert_code("010", "password: must be 8 to 128 characters");
        assert_eq!(
            items(&r, "updatedAddresses"),
            vec![
                ("cy".into(), "Provisioned".into(), "true".into()),
                ("dee".into(), "ProvisionFailed".into(), "false".into()),
                ("eve".into(), "Provisioned".into(), "true".into()),
            ]
        );
        assert!(!has_password(&f, "cy", &domain).await);
        assert!(has_password(&f, "eve", &domain).await);

        // A password set later is the address's first.
        let r = f
            .call(
                mode,
                "UpdateDirectAddressPassword",
                &add("<directAddresses><username>ada</username><password>First-Passw0rd</password></directAddresses>".into()),
            )
            .await;
        r.assert_code("000", "");
        assert_eq!(
            r.ret()
                .child("updatedAddresses")
                .and_then(|a| a.child_text("message")),
            Some("password updated")
        );
        assert!(verify_secret_sync(
            "First-Passw0rd",
            &password_hash(&f, "ada", &domain).await
        ));
        assert!(!has_password(&f, "ben", &domain).await);
    }
}
