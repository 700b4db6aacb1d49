//! Real clients: the served WSDL driven by Python's zeep and by suds (a second, independent
//! SOAP stack that reads only plain SOAP 1.1 answers), and responses checked against our XSD by
//! xmllint. Each installs its tool when it can and skips with the reason when not.

use std::path::Path;
use std::process::Command;

use super::*;

fn have(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// xmllint, installed with apt when missing (CI runs as root on Debian).
fn xmllint() -> bool {
    if have("xmllint", &["--version"]) {
        return true;
    }
    let _ = Command::new("apt-get")
        .args(["install", "-y", "-q", "libxml2-utils"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output();
    if !have("xmllint", &["--version"]) {
        let _ = Command::new("sh")
            .args([
                "-c",
                "apt-get update -q && apt-get install -y -q libxml2-utils",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output();
    }
    have("xmllint", &["--version"])
}

/// A Python package importable as `module`, installed with pip (`package`) when missing.
fn python_package(module: &str, package: &str) -> bool {
    let import = format!("import {module}");
    if have("python3", &["-c", &import]) {
        return true;
    }
    let _ = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--break-system-packages",
            package,
        ])
        .output();
    if !have("python3", &["-c", &import]) {
        let _ = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", package])
            .output();
    }
    have("python3", &["-c", &import])
}

fn zeep() -> bool {
    python_package("zeep", "zeep")
}

fn suds() -> bool {
    python_package("suds.client", "suds-community")
}

/// The served WSDL, its address pointing at the test server, in `dir`.
async fn local_wsdl(app: &TestApp, dir: &Path) -> std::path::PathBuf {
    let base = format!("http://{}", app.addr);
    let served = app
        .http
        .get(format!("{base}{PATH}?wsdl"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let file = dir.join("service.wsdl");
    std::fs::write(
        &file,
        served.replace(&app.state.config.http.public_base_url, &base),
    )
    .unwrap();
    file
}

#[tokio::test]
async fn the_wsdl_names_every_operation_and_our_address() {
    let mut opts = TestOptions::default();
    opts.config.http.public_base_url = "https://hisp.example.net/".into();
    let app = TestApp::spawn_with(opts).await;
    let resp = app
        .http
        .get(app.url(&format!("{PATH}?wsdl")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/xml")
    );
    let wsdl = resp.text().await.unwrap();
    let doc = xml::parse(wsdl.as_bytes()).unwrap();
    let port_type = doc.child("portType").unwrap();
    let ops: Vec<&str> = port_type
        .children_named("operation")
        .map(|o| o.attr("name").unwrap())
        .collect();
    assert_eq!(
        ops,
        [
            "Login",
            "ProvisionCertifiedProvider",
            "AddDirectAddressesToCertifiedProvider",
            "AddAuthorizedUsersToCertifiedProvider",
            "UpdateDirectAddressPassword",
            "ListProvisionedOrganizations",
            "CheckProvisionedOrganization",
            "CheckProvisionedOrganizationWithOtherInfo",
            "GetMonthlyMessageStatusReport",
            "GetWeeklyMessageStatusReport",
            "GetDailyMessageStatusReport",
        ]
    );
    let schema = doc.child("types").unwrap().child("schema").unwrap();
    let types: Vec<&str> = schema
        .children_named("complexType")
        .chain(schema.children_named("simpleType"))
        .map(|t| t.attr("name").unwrap())
        .collect();
    for t in [
        "ResellerAPIResponse",
        "LoginResponseType",
        "UserPassword",
        "SubmitDirectFormResponseType",
        "GetProvisionedOrganizationsResponseType",
        "GetProvisionedOrganizationsWithOtherInfoResponseType",
        "PaymentConfirmation",
        "Product",
        "UpdatedDirectAddressType",
        "UpdatedAuthorizedUserType",
        "UpdatedItemType",
        "CertifiedDirectForm",
        "CertifiedOrganization",
        "IDProofedIndividual",
        "DirectAddress",
        "DirectAddressSettingType",
        "ProvisionedOrganizationDetailType",
        "ProvisionedOrganizationDetailWithOtherInfoType",
        "ProvisionedOrganizationMetadataType",
        "ProvisionedOrganizationMiniMetaType",
        "GetMessageStatusReportResponseType",
        "DirectMessageLogCollection",
        "ProvisionStatusType",
        "DirectUserType",
        "CertificateCategoryType",
        "OrganizationStatusType",
    ] {
        assert!(types.contains(&t), "the schema lacks {t}");
    }
    let addresses: Vec<&str> = doc
        .child("service")
        .unwrap()
        .children_named("port")
        .map(|p| p.children[0].attr("location").unwrap())
        .collect();
    assert_eq!(
        addresses,
        ["https://hisp.example.net/registration/services/OrganizationRegistrationService"; 2]
    );
    let binding = doc.children_named("binding").next().unwrap();
    assert_eq!(
        binding.children[0].ns,
        "http://schemas.xmlsoap.org/wsdl/soap12/"
    );
}

/// The response element (the Body's child) of a plain SOAP response, as text.
fn body_child(raw: &str) -> &str {
    let start = raw.find("<soap:Body>").unwrap() + "<soap:Body>".len();
    let end = raw.rfind("</soap:Body>").unwrap();
    &raw[start..end]
}

#[tokio::test]
async fn responses_validate_against_our_schema() {
    if !xmllint() {
        eprintln!("skipped: xmllint is not installed and apt-get could not install libxml2-utils");
        return;
    }
    let mut opts = TestOptions::default();
    opts.config.soap.mtom_responses = MtomResponses::Never;
    let f = Fixture::with(opts).await;
    let mode = Mode::Soap12;
    let session = f.login(mode).await;
    let dom = "schema.example.org";
    let with = |inner: &str| {
        format!("<sessionId>{session}</sessionId><DirectDomain>{dom}</DirectDomain>{inner}")
    };
    let mut replies = vec![
        f.call(mode, "Login", "<username>x</username><password>y</password>").await,
        f.call(mode, "ProvisionCertifiedProvider", &provision_body(&session, dom, "CDO3", &standard_form(&address(8001, "ada", "Str0ng-Passw0rd")))).await,
        f.call(mode, "ProvisionCertifiedProvider", &provision_body(&session, "x.example.org", "CDO1", &standard_form(&address(9999, "ada", "Str0ng-Passw0rd")))).await,
        f.call(mode, "AddDirectAddressesToCertifiedProvider", &with(&format!("<form>{}{}</form>", address(8002, "ben", "Passw0rd-123"), address(8002, "ben", "Passw0rd-123")))).await,
        f.call(mode, "AddAuthorizedUsersToCertifiedProvider", &with("<form><authorizedUsers><idp_id>8002</idp_id></authorizedUsers><authorizedUsers><firstName>No</firstName></authorizedUsers></form>")).await,
        f.call(mode, "UpdateDirectAddressPassword", &with("<form><directAddresses><username>ada</username><password>New-Passw0rd</password></directAddresses></form>")).await,
        f.call(mode, "ListProvisionedOrganizations", &format!("<sessionId>{session}</sessionId>")).await,
        f.call(mode, "CheckProvisionedOrganization", &with("")).await,
        f.call(mode, "CheckProvisionedOrganizationWithOtherInfo", &with("")).await,
        f.call(mode, "CheckProvisionedOrganizationWithOtherInfo", "<sessionId>bad</sessionId>").await,
    ];
    sqlx::query(
        "INSERT INTO messages (id, direction, organization_id, from_address, smtp_message_id, size_bytes)
         SELECT $1, 'outbound', id, 'ada@schema.example.org', '<m1@schema.example.org>', 10 FROM organizations WHERE domain = $2",
    )
    .bind(Uuid::new_v4())
    .bind(dom)
    .execute(&f.app.db.pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO message_recipients (message_id, recipient, status) SELECT id, 'x@peer.example.net', 'PROCESSED' FROM messages")
        .execute(&f.app.db.pool)
        .await
        .unwrap();
    for (op, csv) in [
        ("GetDailyMessageStatusReport", true),
        ("GetWeeklyMessageStatusReport", false),
        ("GetMonthlyMessageStatusReport", true),
    ] {
        replies.push(
            f.call(
                mode,
                op,
                &format!("<sessionId>{session}</sessionId><hasCvData>{csv}</hasCvData>"),
            )
            .await,
        );
    }
    replies.push(
        f.call(
            mode,
            "GetDailyMessageStatusReport",
            "<sessionId>bad</sessionId>",
        )
        .await,
    );
    assert!(replies[10].ret().child("csvData").is_some());
    assert!(replies[11].ret().child("messageLogs").is_some());

    let dir = tempfile::tempdir().unwrap();
    let xsd = Path::new(env!("CARGO_MANIFEST_DIR")).join("wsdl/OrganizationRegistration.xsd");
    for (i, r) in replies.iter().enumerate() {
        let file = dir.path().join(format!("r{i}.xml"));
        std::fs::write(&file, body_child(&r.raw)).unwrap();
        let out = Command::new("xmllint")
            .arg("--noout")
            .arg("--schema")
            .arg(&xsd)
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "response {i} does not validate: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            body_child(&r.raw)
        );
    }
}

const ZEEP_CLIENT: &str = r#"
import json, sys
import zeep

wsdl, user, secret, domain, report_day = sys.argv[1:6]
client = zeep.Client(wsdl)
svc = client.service
out = {}
login = svc.Login(username=user, password=secret)
out["login"] = login.code
sid = login.sessionId
form = {
    "organization": {"certified_id": 7001},
    "authorizedUsers": [{"idp_id": 8003}],
    "directAddresses": [{"idp_id": 8001, "username": "ada", "password": "Str0ng-Passw0rd", "userType": "SMTP"}],
    "organizationType": "CoveredEntity",
}
r = svc.ProvisionCertifiedProvider(sessionId=sid, DirectDomain=domain, DirectOfferType="CDO3", form=form)
out["provision"] = [r.code, float(r.paymentConfirmation.amount), [(a.username, a.status) for a in r.updatedAddresses]]
r = svc.AddDirectAddressesToCertifiedProvider(sessionId=sid, DirectDomain=domain, form={
    "directAddresses": [{"idp_id": 8002, "username": "ben", "password": "An0ther-Secret"}]})
out["add"] = [r.code, [(a.username, a.status, a.success) for a in r.updatedAddresses]]
r = svc.ListProvisionedOrganizations(sessionId=sid)
out["list"] = [r.code, [(o.directDomain, o.numOfAddresses, o.organizationStatus) for o in r.organizations]]
r = svc.CheckProvisionedOrganizationWithOtherInfo(sessionId=sid, DirectDomain=domain)
o = r.organizations[0]
out["check"] = [r.code, o.name, o.certified_id, sorted(a.username for a in o.directAddresses),
                [(e.key, e.value) for e in o.otherInfo.entry]]
r = svc.GetDailyMessageStatusReport(sessionId=sid, reportDate=report_day, hasCvData=True)
out["report"] = [r.code, r.hasCvData, (r.csvData or b"").decode()]
print(json.dumps(out))
"#;

#[tokio::test]
async fn a_wsdl_driven_zeep_client_works_end_to_end() {
    if !zeep() {
        eprintln!("skipped: python3 with zeep is not available and pip could not install it");
        return;
    }
    let f = Fixture::new().await;
    // The WSDL's address must be where the test server listens.
    let dir = tempfile::tempdir().unwrap();
    let wsdl_file = local_wsdl(&f.app, dir.path()).await;
    let script = dir.path().join("client.py");
    std::fs::write(&script, ZEEP_CLIENT).unwrap();

    // One message sent today from the address zeep is about to create.
    let domain = "zeep.example.org";
    let today = f.app.state.clock.now().date_naive();
    let (id, secret) = (f.reseller.0.to_string(), f.reseller.1.clone());
    let wsdl_arg = wsdl_file.display().to_string();
    let script_arg = script.display().to_string();
    let day = today.to_string();
    let pool = f.app.db.pool.clone();
    let seeder = tokio::spawn(async move {
        // Wait until the organization exists, then add a message for the report.
        for _ in 0..600 {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM direct_addresses WHERE domain = 'zeep.example.org'",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            if n > 0 {
                let mid = Uuid::new_v4();
                sqlx::query("INSERT INTO messages (id, direction, organization_id, from_address, smtp_message_id, size_bytes) SELECT $1, 'outbound', id, 'ada@zeep.example.org', '<z1@zeep.example.org>', 321 FROM organizations WHERE domain = 'zeep.example.org'")
                    .bind(mid).execute(&pool).await.unwrap();
                sqlx::query("INSERT INTO message_recipients (message_id, recipient, status) VALUES ($1, 'doc@peer.example.net', 'DISPATCHED')")
                    .bind(mid).execute(&pool).await.unwrap();
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    });
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args([&script_arg, &wsdl_arg, &id, &secret, domain, &day])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    seeder.await.unwrap();
    assert!(
        out.status.success(),
        "zeep failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["login"], "000");
    assert_eq!(
        v["provision"],
        serde_json::json!(["000", 360.0, [["ada", "Provisioned"]]])
    );
    assert_eq!(
        v["add"],
        serde_json::json!(["000", [["ben", "Provisioned", true]]])
    );
    assert_eq!(
        v["list"],
        serde_json::json!(["000", [[domain, 2, "CertificatePending"]]])
    );
    assert_eq!(
        v["check"],
        serde_json::json!([
            "000",
            "Harbor Family Medicine",
            7001,
            ["ada", "ben"],
            [["hasTrustedAgent", "0"]]
        ])
    );
    assert_eq!(v["report"][0], "000");
    assert_eq!(v["report"][1], true);
    let csv = v["report"][2].as_str().unwrap();
    assert!(
        csv.starts_with("From,To,Message ID,Message Size,Status,Sent Time"),
        "{csv}"
    );
    assert!(
        csv.contains(
            "ada@zeep.example.org,doc@peer.example.net,<z1@zeep.example.org>,321,Delivered"
        ),
        "{csv}"
    );
}

const SUDS_CLIENT: &str = r#"
import base64, json, sys
from suds.client import Client

wsdl, user, secret, domain, report_day = sys.argv[1:6]
# suds speaks SOAP 1.1 only: it sends text/xml and cannot read a multipart (MTOM) answer.
client = Client("file://" + wsdl, port="OrganizationRegistrationService_Port_Soap11", cache=None)
svc, new = client.service, client.factory.create
out = {}
login = svc.Login(username=user, password=secret)
out["login"] = [login.code, login.success, bool(login.sessionId)]
sid = login.sessionId

form = new("CertifiedDirectForm")
form.organization = new("CertifiedOrganization")
form.organization.certified_id = 7001
form.organizationType = "CoveredEntity"
user_ = new("IDProofedIndividual")
user_.idp_id = 8003
form.authorizedUsers = [user_]
ada = new("DirectAddress")
ada.idp_id, ada.username, ada.password, ada.userType = 8001, "ada", "Str0ng-Passw0rd", "SMTP"
form.directAddresses = [ada]
r = svc.ProvisionCertifiedProvider(sessionId=sid, DirectDomain=domain, DirectOfferType="CDO3", form=form)
out["provision"] = [r.code, r.success, float(r.paymentConfirmation.amount),
                    [(a.username, str(a.status), a.success) for a in r.updatedAddresses]]

form = new("CertifiedDirectForm")
ben = new("DirectAddress")
ben.idp_id, ben.username, ben.password = 8002, "ben", "An0ther-Secret"
bad = new("DirectAddress")
bad.idp_id, bad.username, bad.password = 8003, "no way", "An0ther-Secret"
form.directAddresses = [ben, bad]
r = svc.AddDirectAddressesToCertifiedProvider(sessionId=sid, DirectDomain=domain, form=form)
out["add"] = [r.code, [(a.username, str(a.status), a.success) for a in r.updatedAddresses]]

r = svc.ListProvisionedOrganizations(sessionId=sid)
out["list"] = [r.code, sorted((o.directDomain, o.numOfAddresses, str(o.organizationStatus),
                               sorted(a.username for a in o.directAddresses))
                              for o in r.organizations)]

r = svc.CheckProvisionedOrganizationWithOtherInfo(sessionId=sid, DirectDomain="ghost.example.org")
out["check_unknown"] = [r.code, r.success, r.errorMessage]

r = svc.GetDailyMessageStatusReport(sessionId=sid, reportDate=report_day, hasCvData=True)
csv = r.csvData
csv = base64.b64decode(csv).decode() if isinstance(csv, str) else csv.decode()
out["report"] = [r.code, r.hasCvData, csv]
print(json.dumps(out))
"#;

#[tokio::test]
async fn suds_reads_the_plain_answers_to_its_plain_requests() {
    if !suds() {
        eprintln!(
            "skipped: python3 with suds is not available and pip could not install suds-community"
        );
        return;
    }
    let f = Fixture::new().await;
    // An organization with a message sent today, for the report suds pulls.
    provision(&f, Mode::Soap11, "pre.example.org", "CDO1").await;
    let mid = Uuid::new_v4();
    sqlx::query("INSERT INTO messages (id, direction, organization_id, from_address, smtp_message_id, size_bytes) SELECT $1, 'outbound', id, 'ada@pre.example.org', '<s1@pre.example.org>', 654 FROM organizations WHERE domain = 'pre.example.org'")
        .bind(mid).execute(&f.app.db.pool).await.unwrap();
    sqlx::query("INSERT INTO message_recipients (message_id, recipient, status) VALUES ($1, 'doc@peer.example.net', 'FAILED-TO')")
        .bind(mid).execute(&f.app.db.pool).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let wsdl = local_wsdl(&f.app, dir.path()).await;
    let script = dir.path().join("client.py");
    std::fs::write(&script, SUDS_CLIENT).unwrap();
    let domain = "suds.example.org";
    let day = f.app.state.clock.now().date_naive().to_string();
    let args = [
        script.display().to_string(),
        wsdl.display().to_string(),
        f.reseller.0.to_string(),
        f.reseller.1.clone(),
        domain.to_owned(),
        day,
    ];
    let out = tokio::task::spawn_blocking(move || Command::new("python3").args(args).output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "suds failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["login"], serde_json::json!(["000", true, true]), "{v}");
    assert_eq!(
        v["provision"],
        serde_json::json!(["000", true, 360.0, [["ada", "Provisioned", true]]])
    );
    assert_eq!(v["add"][0], "002", "{v}");
    assert_eq!(
        v["add"][1],
        serde_json::json!([
            ["ben", "Provisioned", true],
            ["no way", "ProvisionFailed", false]
        ])
    );
    assert_eq!(
        v["list"],
        serde_json::json!([
            "000",
            [
                ["pre.example.org", 1, "CertificatePending", ["ada"]],
                [domain, 2, "CertificatePending", ["ada", "ben"]]
            ]
        ])
    );
    assert_eq!(v["check_unknown"][0], "208");
    assert_eq!(v["check_unknown"][1], false);
    assert!(
        v["check_unknown"][2]
            .as_str()
            .unwrap()
            .contains("ghost.example.org"),
        "{v}"
    );
    assert_eq!(v["report"][0], "000");
    assert_eq!(v["report"][1], true);
    let csv = v["report"][2].as_str().unwrap();
    assert!(
        csv.starts_with("From,To,Message ID,Message Size,Status,Sent Time"),
        "{csv}"
    );
    assert!(
        csv.contains(
            "ada@pre.example.org,doc@peer.example.net,<s1@pre.example.org>,654,NO MDN Received"
        ),
        "{csv}"
    );
}
