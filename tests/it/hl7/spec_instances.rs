//! The two sample instances shipped with the spec's schemas (`hl7v3/test-instances`, copied
//! unchanged into `tests/fixtures/hl7v3/instances/`), sent as they are: the add is accepted and
//! the details query by the same NPI finds what it added.

use super::schema::valid;
use super::{Hl7, all};

fn instance(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hl7v3/instances")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

#[tokio::test]
async fn the_spec_sample_add_and_details_query_work_as_published() {
    let h = Hl7::new().await;
    let a = h.send(&instance("PRPM_IN401030UV01-minimal.xml")).await;
    assert_eq!(a.ack_code(), "AA", "{}", a.raw);
    assert_eq!(a.target(), "MSG-0001");
    valid(&a.raw, "PRPM_IN401031UV01");

    let d = h.send(&instance("PRPM_IN406010UV01-minimal.xml")).await;
    assert_eq!(d.ack_code(), "AA", "{}", d.raw);
    valid(&d.raw, "PRPM_IN406110UV01");
    let names: Vec<&str> = all(&d.root, "assignedEntity")
        .into_iter()
        .filter_map(|e| e.child_text("name"))
        .collect();
    assert!(
        names.contains(&"Example Clinic Direct Org"),
        "{names:?}: {}",
        d.raw
    );
}
