//! The import rules of DESIGN.md §2, checked over the source: dependencies point inward, no
//! front door imports another (or the application's wiring), and the shared HTTP stack knows
//! no door. A new upward import fails here with the file and line that made it.

use std::fs;
use std::path::{Path, PathBuf};

/// Modules that are front doors: each brings its own router (or listener) and error form.
const DOORS: &[&str] = &["rest", "soap", "ops", "smtp", "credentialing", "hl7"];
/// What only the service layer uses: doors go through `service`.
const LOWER_THAN_SERVICE: &[&str] = &["store", "jobs"];
/// Where the doors are wired together; nothing below may import these.
const WIRING: &[&str] = &["app", "cli", "main", "lib"];
/// What a door may use of the shared HTTP stack: the request id extractor and the shape of its
/// own limits.
const HTTP_FOR_DOORS: &[&str] = &["request_id", "door"];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a source file belongs to (`src/rest/messaging.rs` → `rest`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// Every `crate::a::b…` path in the file, with its line number; `use crate::{a, b::c}` counts
/// each of `a` and `b::c`. Comments are skipped.
fn crate_paths(text: &str) -> Vec<(usize, Vec<String>)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or("");
                for item in inner.split(',') {
                    out.push((n + 1, segments(item.trim())));
                }
            } else {
                out.push((n + 1, segments(rest)));
            }
        }
    }
    out
}

fn segments(path: &str) -> Vec<String> {
    path.split("::")
        .map(|s| {
            s.chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .take_while(|s| !s.is_empty())
        .collect()
}

/// Why `from` may not import `path`, if it may not.
fn violation(from: &str, path: &[String]) -> Option<String> {
    let to = path.first()?.as_str();
    if to == from {
        return None;
    }
    if WIRING.contains(&to) && !WIRING.contains(&from) {
        return Some(format!("{from} imports the wiring ({to})"));
    }
    let from_door = DOORS.contains(&from);
    if DOORS.contains(&to) && !WIRING.contains(&from) {
        return Some(if from_door {
            format!("the {from} door imports another door ({to})")
        } else {
            format!("{from} imports a door ({to})")
        });
    }
    if to == "http" && !WIRING.contains(&from) {
        let allowed = from_door
            && path
                .get(1)
                .is_some_and(|m| HTTP_FOR_DOORS.contains(&m.as_str()));
        if !allowed {
            return Some(format!(
                "{from} imports the HTTP stack's internals ({})",
                path.join("::")
            ));
        }
    }
    if from_door && LOWER_THAN_SERVICE.contains(&to) {
        return Some(format!(
            "the {from} door reaches past the service layer into {to}"
        ));
    }
    if from == "domain" && to != "domain" {
        return Some(format!("domain imports {to}: domain has no dependencies"));
    }
    None
}

#[test]
fn dependencies_point_inward() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    for file in &files {
        let from = module_of(&src, file);
        let text = fs::read_to_string(file).unwrap();
        for (line, path) in crate_paths(&text) {
            if let Some(why) = violation(&from, &path) {
                problems.push(format!(
                    "{}:{line}: {why}",
                    file.strip_prefix(&src).unwrap().display()
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "upward imports:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_check_catches_what_it_is_for() {
    let path = |s: &str| segments(s);
    assert!(violation("rest", &path("soap::xml")).is_some());
    assert!(violation("service", &path("rest::messaging")).is_some());
    assert!(violation("http", &path("soap::fault_for")).is_some());
    assert!(violation("rest", &path("http::middleware")).is_some());
    assert!(violation("store", &path("app::AppState")).is_some());
    assert!(violation("domain", &path("store::clients")).is_some());
    assert!(violation("rest", &path("store::pki::CertificateRecord")).is_some());
    assert!(violation("rest", &path("http::request_id::RequestId")).is_none());
    assert!(violation("rest", &path("service::messaging")).is_none());
    assert!(violation("app", &path("rest::router")).is_none());
    assert!(violation("cli", &path("app::App")).is_none());
    assert!(violation("soap", &path("http::door::DoorLimits")).is_none());
    let found =
        crate_paths("use crate::{jobs, store::x};\n// crate::rest::y\nlet a = crate::soap::b;");
    let found: Vec<_> = found.into_iter().map(|(l, p)| (l, p.join("::"))).collect();
    assert_eq!(
        found,
        vec![
            (1, "jobs".to_owned()),
            (1, "store::x".to_owned()),
            (3, "soap::b".to_owned())
        ]
    );
}
