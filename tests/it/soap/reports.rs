//! The daily, weekly and monthly message status reports over whatever message rows exist.

use chrono::{DateTime, TimeZone};

use super::*;

/// An outbound message from `from` (an address of `domain`'s organization) with recipients.
async fn message(
    app: &TestApp,
    domain: &str,
    from: &str,
    at: DateTime<Utc>,
    recipients: &[(&str, &str, Option<&str>)],
) -> String {
    let id = Uuid::new_v4();
    let smtp_id = format!("<{id}@{domain}>");
    sqlx::query(
        "INSERT INTO messages (id, direction, organization_id, from_address, smtp_message_id, size_bytes,
             xdr_message_id, xdr_source_id, xdr_unique_id, xdr_patient_id, created_at)
         SELECT $1, 'outbound', id, $2, $3, 2048, 'urn:uuid:x1', '1.2.3', '1.2.3.4', 'PID^^^&1.2&ISO', $4
         FROM organizations WHERE domain = $5",
    )
    .bind(id)
    .bind(from)
    .bind(&smtp_id)
    .bind(at)
    .bind(domain)
    .execute(&app.db.pool)
    .await
    .unwrap();
    for (to, status, origin) in recipients {
        sqlx::query(
            "INSERT INTO message_recipients (message_id, recipient, status, failure_origin, failure_reason)
             VALUES ($1, $2, $3, $4, CASE WHEN $3 LIKE 'FAILED%' THEN 'no route' END)",
        )
        .bind(id)
        .bind(to)
        .bind(status)
        .bind(origin)
        .execute(&app.db.pool)
        .await
        .unwrap();
    }
    smtp_id
}

fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
}

async fn seed(f: &Fixture) -> (String, String) {
    provision(f, Mode::Soap12, "reports.example.org", "CDO5").await;
    let from = "ada@reports.example.org";
    // Wednesday 2026-11-18: five recipients, one of each status word.
    let day = message(
        &f.app,
        "reports.example.org",
        from,
        at(2026, 11, 18, 9),
        &[
            ("a@peer.example.net", "DISPATCHED", None),
            ("b@peer.example.net", "PROCESSED", None),
            ("c@peer.example.net", "FAILED", Some("local")),
            ("d@peer.example.net", "FAILED", Some("remote")),
            ("e@peer.example.net", "FAILED-TO", None),
        ],
    )
    .await;
    // Monday of the same week, and the first of the month (a week earlier).
    let monday = message(
        &f.app,
        "reports.example.org",
        from,
        at(2026, 11, 16, 0),
        &[("f@peer.example.net", "DISPLAYED", None)],
    )
    .await;
    message(
        &f.app,
        "reports.example.org",
        from,
        at(2026, 11, 1, 12),
        &[("g@peer.example.net", "SMTPINIT", None)],
    )
    .await;
    // Outside November, and another reseller's organization: never in these reports.
    message(
        &f.app,
        "reports.example.org",
        from,
        at(2026, 10, 31, 23),
        &[("h@peer.example.net", "DISPATCHED", None)],
    )
    .await;
    let other = new_reseller(&f.app, "500.00").await;
    let s = login_as(&f.app, Mode::Soap12, &other).await;
    let form = standard_form(&address(8002, "zed", "Passw0rd-123"));
    f.call(
        Mode::Soap12,
        "ProvisionCertifiedProvider",
        &provision_body(&s, "elsewhere.example.org", "CDO1", &form),
    )
    .await
    .assert_code("000", "");
    message(
        &f.app,
        "elsewhere.example.org",
        "zed@elsewhere.example.org",
        at(2026, 11, 18, 10),
        &[("z@peer.example.net", "DISPATCHED", None)],
    )
    .await;
    (day, monday)
}

fn report_body(session: &str, date: &str, csv: bool) -> String {
    format!(
        "<sessionId>{session}</sessionId><reportDate>{date}</reportDate><hasCvData>{csv}</hasCvData>"
    )
}

#[tokio::test]
async fn reports_cover_their_period_with_the_spec_columns_and_status_words() {
    let f = Fixture::new().await;
    let (day_id, _) = seed(&f).await;
    for mode in MODES {
        let session = f.login(mode).await;
        let r = f
            .call(
                mode,
                "GetDailyMessageStatusReport",
                &report_body(&session, "2026-11-18", true),
            )
            .await;
        r.assert_code("000", "");
        assert_eq!(r.text("hasCvData"), "true");
        assert_eq!(r.ret().child("messageLogs"), None);
        // An MTOM answer (to an MTOM request) carries the CSV as an XOP attachment; a plain
        // answer carries it inline.
        let inc = r.ret().child("csvData").unwrap().child("Include");
        assert_eq!(inc.is_some(), mode == Mode::Mtom, "csvData: {}", r.raw);
        assert_eq!(r.attachments.len(), usize::from(mode == Mode::Mtom));
        let csv = String::from_utf8(csv_data(&r).unwrap()).unwrap();
        let mut reader = ::csv::Reader::from_reader(csv.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .unwrap()
            .iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(
            header,
            [
                "From",
                "To",
                "Message ID",
                "Message Size",
                "Status",
                "Sent Time",
                "XDR Message ID",
                "XDR Source ID",
                "XDR Unique ID",
                "XDR Patient ID"
            ]
        );
        let rows: Vec<Vec<String>> = reader
            .records()
            .map(|r| r.unwrap().iter().map(str::to_owned).collect())
            .collect();
        let statuses: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r[1].as_str(), r[4].as_str()))
            .collect();
        assert_eq!(
            statuses,
            [
                ("a@peer.example.net", "Delivered"),
                ("b@peer.example.net", "Waiting"),
                ("c@peer.example.net", "Locally Failed"),
                ("d@peer.example.net", "Remotely Failed"),
                ("e@peer.example.net", "NO MDN Received"),
            ]
        );
        assert_eq!(rows[0][0], "ada@reports.example.org");
        assert_eq!(rows[0][2], day_id);
        assert_eq!(rows[0][3], "2048");
        assert_eq!(rows[0][5], "2026-11-18T09:00:00Z");
        assert_eq!(
            &rows[0][6..],
            ["urn:uuid:x1", "1.2.3", "1.2.3.4", "PID^^^&1.2&ISO"]
        );

        let weekly = f
            .call(
                mode,
                "GetWeeklyMessageStatusReport",
                &report_body(&session, "2026-11-22", false),
            )
            .await;
        weekly.assert_code("000", "");
        assert_eq!(weekly.text("hasCvData"), "false");
        assert_eq!(weekly.ret().child("csvData"), None);
        let logs: Vec<(String, String)> = weekly
            .ret()
            .child("messageLogs")
            .unwrap()
            .children_named("messageLog")
            .map(|l| {
                (
                    l.child_text("to").unwrap().to_owned(),
                    l.child_text("status").unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(logs.len(), 6, "Monday 16th through Sunday 22nd: {logs:?}");
        assert_eq!(
            logs[0],
            ("f@peer.example.net".to_owned(), "Delivered".to_owned())
        );
        let failed = weekly
            .ret()
            .child("messageLogs")
            .unwrap()
            .children_named("messageLog")
            .find(|l| l.child_text("to") == Some("c@peer.example.net"))
            .unwrap();
        assert_eq!(failed.child_text("statusDetails"), Some("no route"));

        let monthly = f
            .call(
                mode,
                "GetMonthlyMessageStatusReport",
                &report_body(&session, "2026-11-30", true),
            )
            .await;
        let csv = String::from_utf8(csv_data(&monthly).unwrap()).unwrap();
        assert_eq!(
            csv.lines().count(),
            1 + 7,
            "November only, our organization only"
        );
        assert!(!csv.contains("h@peer") && !csv.contains("z@peer"));

        // No messages that day: success, and nothing to carry.
        let empty = f
            .call(
                mode,
                "GetDailyMessageStatusReport",
                &report_body(&session, "2026-11-19", true),
            )
            .await;
        empty.assert_code("000", "");
        assert_eq!(empty.ret().child("csvData"), None);
        let bad = f
            .call(
                mode,
                "GetDailyMessageStatusReport",
                &report_body(&session, "18/11/2026", true),
            )
            .await;
        bad.assert_code("010", "reportDate");
        assert_eq!(bad.text("success"), "false");
    }
}

#[tokio::test]
async fn plain_soap_responses_carry_the_csv_inline() {
    let mut opts = TestOptions::default();
    opts.config.soap.mtom_responses = MtomResponses::Never;
    let f = Fixture::with(opts).await;
    seed(&f).await;
    for mode in MODES {
        let session = f.login(mode).await;
        let r = f
            .call(
                mode,
                "GetDailyMessageStatusReport",
                &report_body(&session, "2026-11-18", true),
            )
            .await;
        r.assert_code("000", "");
        assert!(r.attachments.is_empty());
        assert_eq!(r.ret().child("csvData").unwrap().child("Include"), None);
        let csv = String::from_utf8(csv_data(&r).unwrap()).unwrap();
        assert_eq!(csv.lines().count(), 6);
    }
}

#[tokio::test]
async fn a_report_for_one_domain_must_name_one_of_the_callers_organizations() {
    let f = Fixture::new().await;
    seed(&f).await;
    for mode in MODES {
        let session = f.login(mode).await;
        let with = |domain: &str| {
            format!(
                "{}<DirectDomain>{domain}</DirectDomain>",
                report_body(&session, "2026-11-18", true)
            )
        };
        let r = f
            .call(
                mode,
                "GetDailyMessageStatusReport",
                &with("Reports.Example.org"),
            )
            .await;
        r.assert_code("000", "");
        let csv = String::from_utf8(csv_data(&r).unwrap()).unwrap();
        assert_eq!(csv.lines().count(), 6, "{csv}");
        // Not an empty report: the domain is someone else's, or nobody's, or no domain.
        for (domain, code, needle) in [
            ("elsewhere.example.org", "013", "another reseller"),
            (
                "ghost.example.org",
                "208",
                "No organization is found for domain(ghost.example.org)",
            ),
            ("not a domain", "010", "DirectDomain"),
        ] {
            let r = f
                .call(mode, "GetWeeklyMessageStatusReport", &with(domain))
                .await;
            r.assert_code(code, needle);
            assert_eq!(r.text("hasCvData"), "false");
            assert_eq!(r.ret().child("csvData"), None);
        }
    }
}
