//! The fingerprint of a send request, stored with the message, that tells a replay of a
//! messageId (the same request again: the first reply) from its reuse (another request: 409).
//!
//! It covers the request's JSON values, not its bytes, so a replay whose JSON is laid out
//! differently (spacing, key order, escapes) is still the same request.
//!
//! Two versions exist, and a stored fingerprint says which it is by its length:
//! - **1** (32 bytes, untagged): SHA-256 of the request serialized again by serde_json. Every
//!   string was escaped once more to be hashed; for a C-CDA this serializing and hashing took a
//!   quarter of the gateway's CPU per send (perf, BENCHMARKS.md).
//! - **2** (33 bytes, the first is 2): BLAKE3 of the values walked in key order, each tagged
//!   with its type and length, so strings go in as they are.
//!
//! New messages get version 2; a replay of a message stored under version 1 is checked with
//! version 1, so replays keep working across an upgrade.

use serde_json::Value;
use sha2::{Digest, Sha256};

const V2: u8 = 2;
const V1_LEN: usize = 32;

/// The fingerprint new messages are stored with.
pub fn of(body: &Value) -> Vec<u8> {
    let mut hasher = blake3::Hasher::new();
    walk(&mut hasher, body);
    let mut out = Vec::with_capacity(1 + blake3::OUT_LEN);
    out.push(V2);
    out.extend_from_slice(hasher.finalize().as_bytes());
    out
}

/// Whether `body` is the request that `stored` was made from, whichever version made it.
/// Nothing stored (a message not sent through `send_ccda`) matches no request.
pub fn matches(stored: &[u8], body: &Value) -> bool {
    match stored {
        [V2, ..] if stored.len() == 1 + blake3::OUT_LEN => of(body) == stored,
        _ if stored.len() == V1_LEN => v1(body).as_slice() == stored,
        _ => false,
    }
}

fn v1(body: &Value) -> [u8; V1_LEN] {
    struct Hashing(Sha256);
    impl std::io::Write for Hashing {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut hashing = Hashing(Sha256::new());
    // Writing a Value into memory cannot fail.
    serde_json::to_writer(&mut hashing, body).expect("a JSON value serializes");
    hashing.0.finalize().into()
}

/// Each value as a tag, then a length where it has one, then its contents: no two different
/// values give the same sequence of bytes (`["ab","c"]` and `["a","bc"]` differ in lengths).
fn walk(h: &mut blake3::Hasher, v: &Value) {
    match v {
        Value::Null => {
            h.update(b"n");
        }
        Value::Bool(b) => {
            h.update(if *b { b"t" } else { b"f" });
        }
        Value::Number(n) => {
            let n = n.to_string();
            h.update(b"d");
            bytes(h, n.as_bytes());
        }
        Value::String(s) => {
            h.update(b"s");
            bytes(h, s.as_bytes());
        }
        Value::Array(items) => {
            h.update(b"a");
            h.update(&(items.len() as u64).to_le_bytes());
            for item in items {
                walk(h, item);
            }
        }
        Value::Object(map) => {
            // Sorted here rather than trusting the map's order: a dependency that turns on
            // serde_json's `preserve_order` would otherwise make key order count.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            h.update(b"o");
            h.update(&(entries.len() as u64).to_le_bytes());
            for (key, value) in entries {
                bytes(h, key.as_bytes());
                walk(h, value);
            }
        }
    }
}

fn bytes(h: &mut blake3::Hasher, b: &[u8]) {
    h.update(&(b.len() as u64).to_le_bytes());
    h.update(b);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request() -> Value {
        json!({
            "messageId": "urn:uuid:1",
            "fromDirectAddress": "ada@harbor.example",
            "toDirectAddress": "ben@lakeside.example",
            "xdm": false,
            "emailAttachmentList": [{"attachmentContent": "PGE+PC9hPg==", "attachmentClass": "text/xml"}],
            "patientAge": 42,
            "note": null
        })
    }

    #[test]
    fn the_same_values_laid_out_otherwise_are_the_same_request() {
        let compact = r#"{"messageId":"urn:uuid:1","xdm":false,"note":null,"patientAge":42,"fromDirectAddress":"ada@harbor.example","toDirectAddress":"ben@lakeside.example","emailAttachmentList":[{"attachmentClass":"text/xml","attachmentContent":"PGE+PC9hPg=="}]}"#;
        let spaced = serde_json::to_string_pretty(&request()).unwrap();
        let escaped = compact.replace("urn:uuid:1", "urn:uuid:\\u0031");
        for text in [compact, spaced.as_str(), escaped.as_str()] {
            let parsed: Value = serde_json::from_str(text).unwrap();
            assert_eq!(of(&parsed), of(&request()), "{text}");
        }
    }

    #[test]
    fn any_change_of_a_value_is_another_request() {
        let base = of(&request());
        let changes: [fn(&mut Value); 8] = [
            |v| v["messageId"] = json!("urn:uuid:2"),
            |v| v["xdm"] = json!(true),
            |v| v["patientAge"] = json!(43),
            |v| v["patientAge"] = json!("42"),
            |v| v["note"] = json!(""),
            |v| v["emailAttachmentList"][0]["attachmentContent"] = json!("PGI+PC9iPg=="),
            |v| {
                v.as_object_mut().unwrap().remove("note");
            },
            |v| v["extra"] = json!([]),
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut v = request();
            change(&mut v);
            assert_ne!(of(&v), base, "change {i}");
        }
    }

    #[test]
    fn where_one_string_ends_and_the_next_begins_counts() {
        assert_ne!(of(&json!(["ab", "c"])), of(&json!(["a", "bc"])));
        assert_ne!(of(&json!({"ab": "c"})), of(&json!({"a": "bc"})));
        assert_ne!(of(&json!([["a"], []])), of(&json!([[], ["a"]])));
        assert_ne!(of(&json!([1, 2])), of(&json!([12])));
    }

    #[test]
    fn new_fingerprints_are_version_2_and_match_their_request_only() {
        let stored = of(&request());
        assert_eq!((stored.len(), stored[0]), (33, 2));
        assert!(matches(&stored, &request()));
        let mut other = request();
        other["xdm"] = json!(true);
        assert!(!matches(&stored, &other));
    }

    /// What gateways before version 2 stored: SHA-256 of serde_json's serialization.
    #[test]
    fn a_version_1_fingerprint_still_matches_its_request() {
        let stored = Sha256::digest(serde_json::to_vec(&request()).unwrap()).to_vec();
        assert!(matches(&stored, &request()));
        let mut other = request();
        other["messageId"] = json!("urn:uuid:2");
        assert!(!matches(&stored, &other));
    }

    #[test]
    fn a_fingerprint_of_no_known_version_matches_nothing() {
        let mut v2 = of(&request());
        assert!(!matches(&[], &request()));
        assert!(
            !matches(&v2[1..], &request()),
            "a version 2 digest without its tag"
        );
        v2[0] = 3;
        assert!(!matches(&v2, &request()));
    }
}
