//! The judges of a message: `xmllint --schema` against the interaction's official schema (when
//! xmllint is there, installed if we are root), and always a structural check in Rust.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use hisp_gateway::xml::{self, Element};

fn schemas() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hl7v3/multicacheschemas")
}

/// Whether xmllint can run: installed here if missing and we are root, else skipped.
fn xmllint() -> bool {
    static HAVE: OnceLock<bool> = OnceLock::new();
    *HAVE.get_or_init(|| {
        let present = || {
            Command::new("xmllint")
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if present() {
            return true;
        }
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if root {
            let _ = Command::new("apt-get")
                .args(["install", "-y", "-q", "libxml2-utils"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let ok = present();
        if !ok {
            eprintln!(
                "SKIP xmllint schema validation: xmllint is not installed and could not be (not root, or apt-get failed); the Rust structural check still runs"
            );
        }
        ok
    })
}

/// Checks `doc` is a valid `interaction`: its root and header in Rust, then the schema.
/// Returns the parsed root.
pub fn valid(doc: &str, interaction: &str) -> Element {
    let root = xml::parse(doc.as_bytes()).unwrap_or_else(|e| panic!("{e}: {doc}"));
    structure(&root, interaction, doc);
    if xmllint() {
        let xsd = schemas().join(format!("{interaction}.xsd"));
        let mut child = Command::new("xmllint")
            .arg("--noout")
            .arg("--schema")
            .arg(&xsd)
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(doc.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{interaction} does not validate:\n{}\n{doc}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    root
}

/// What every message must have whatever xmllint says: the root, namespace, ITS version, an
/// id, the interaction id naming the root, the wrapper's codes and parties; responses an
/// acknowledgement with its target.
fn structure(root: &Element, interaction: &str, doc: &str) {
    assert_eq!(root.name, interaction, "{doc}");
    assert_eq!(root.ns, "urn:hl7-org:v3", "{doc}");
    assert_eq!(root.attr("ITSVersion"), Some("XML_1.0"), "{doc}");
    assert!(
        root.child("id").and_then(|i| i.attr("root")).is_some(),
        "{doc}"
    );
    assert!(root.child("creationTime").is_some(), "{doc}");
    let iid = root.child("interactionId").expect("interactionId");
    assert_eq!(iid.attr("root"), Some("2.16.840.1.113883.1.6"));
    assert_eq!(iid.attr("extension"), Some(interaction));
    for c in ["processingCode", "processingModeCode", "acceptAckCode"] {
        assert!(
            root.child(c).and_then(|e| e.attr("code")).is_some(),
            "{c}: {doc}"
        );
    }
    for p in ["receiver", "sender"] {
        assert!(
            root.child(p)
                .and_then(|r| r.child("device"))
                .and_then(|d| d.child("id"))
                .is_some(),
            "{p}: {doc}"
        );
    }
    let response = matches!(
        interaction,
        "MCCI_IN000002UV01"
            | "PRPM_IN401031UV01"
            | "PRPM_IN403011UV01"
            | "PRPM_IN405110UV01"
            | "PRPM_IN406110UV01"
            | "PRPM_IN406031UV01"
            | "PRPM_IN406041UV01"
    );
    if response {
        let ack = root.child("acknowledgement").expect("acknowledgement");
        assert!(matches!(ack.attr("typeCode"), Some("AA" | "AE" | "AR")));
        assert!(
            ack.child("targetMessage")
                .and_then(|t| t.child("id"))
                .is_some()
        );
    }
    if interaction != "MCCI_IN000002UV01" {
        assert!(root.child("controlActProcess").is_some(), "{doc}");
    }
}
