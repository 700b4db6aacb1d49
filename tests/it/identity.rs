//! `hisp-gateway identity import`: every row valid, or nothing imported.

use hisp_gateway::auth::secrets::keyed_hash;
use hisp_gateway::service::identity_import::SSN_HASH_PURPOSE;

use crate::helpers::{TEST_IDENTITY_KEY, TestApp, count, stderr, stdout};

const ORGS_HEADER: &str = "certified_id,name,tax_id,state,npi,address_line1,address_line2,city,zip,healthcare_provider,verified_at\n";
const INDS: &str = "idp_id,first_name,last_name,date_of_birth,ssn_last4,verified_at\n\
    5001,Robin,Quill,1970-01-31,4821,2026-05-01\n\
    5002,Sam,Ledger,1988-07-04,0093,2026-05-02T09:30:00Z\n";

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[tokio::test]
async fn one_bad_row_imports_nothing_and_names_the_line() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let bad_orgs = format!(
        "{ORGS_HEADER}\
         6001,North Clinic,11-2223333,MA,1234567893,1 Elm St,,Salem,01970,true,2026-04-01\n\
         6002,South Clinic,11-2224444,MA,1234567890,2 Elm St,,Salem,01970,true,2026-04-01\n\
         6003,East Clinic,11-2225555,MA,,3 Elm St,,Salem,01970,false,2026-04-01\n"
    );
    let orgs = write(dir.path(), "orgs.csv", &bad_orgs);
    let inds = write(dir.path(), "people.csv", INDS);

    let out = app.cli(&[
        "identity",
        "import",
        "--orgs",
        &orgs,
        "--individuals",
        &inds,
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("orgs.csv: line 3: npi: check digit does not match"),
        "{err}"
    );
    assert!(err.contains("nothing was imported"), "{err}");
    assert_eq!(count(&app.db.pool, "verified_organizations").await, 0);
    assert_eq!(
        count(&app.db.pool, "verified_individuals").await,
        0,
        "the good file is not imported either"
    );
    assert_eq!(count(&app.db.pool, "audit_log").await, 0);

    let good_orgs = bad_orgs.replace("1234567890", "1987654328");
    let orgs = write(dir.path(), "orgs.csv", &good_orgs);
    let out = app.cli(&[
        "identity",
        "import",
        "--orgs",
        &orgs,
        "--individuals",
        &inds,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("imported 3 organizations and 2 individuals"));

    // The SSN digits are kept only as a keyed hash.
    let hash: String =
        sqlx::query_scalar("SELECT ssn_last4_hash FROM verified_individuals WHERE idp_id = 5001")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(
        hash,
        keyed_hash(TEST_IDENTITY_KEY.as_bytes(), SSN_HASH_PURPOSE, "4821")
    );
    assert!(!hash.contains("4821"));
    let npi: Option<String> =
        sqlx::query_scalar("SELECT npi FROM verified_organizations WHERE certified_id = 6003")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(npi, None);
    // The audit log names identities by id only.
    let audit: Vec<String> = sqlx::query_scalar(
        "SELECT concat_ws(' ', actor, action, object_type, object_id) FROM audit_log",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(audit.len(), 5);
    assert!(
        audit
            .iter()
            .all(|a| !a.contains("Robin") && !a.contains("Clinic") && !a.contains("1970")),
        "{audit:?}"
    );

    // A second import of the same ids updates them instead of failing.
    let renamed = good_orgs.replace("North Clinic", "North Family Clinic");
    let orgs = write(dir.path(), "orgs.csv", &renamed);
    let out = app.cli(&["identity", "import", "--orgs", &orgs]);
    assert!(out.status.success(), "{}", stderr(&out));
    let name: String =
        sqlx::query_scalar("SELECT name FROM verified_organizations WHERE certified_id = 6001")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(name, "North Family Clinic");
    assert_eq!(count(&app.db.pool, "verified_organizations").await, 3);
}
