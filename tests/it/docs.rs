//! The documentation stays true to the code: the README's two commands are the ones CI runs,
//! every setting is documented, and every relative link leads somewhere.

use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Every `section.key` of `config/default.toml` (tables of values, like `offers.prices`, by
/// their own name).
fn settings() -> Vec<String> {
    let mut out = Vec::new();
    let mut section = String::new();
    for line in read("config/default.toml").lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
            if section == "offers.prices" {
                out.push(section.clone());
            }
        } else if !line.starts_with('#')
            && let Some((key, _)) = line.split_once('=')
            && !section.is_empty()
            && section != "offers.prices"
        {
            out.push(format!("{section}.{}", key.trim()));
        }
    }
    out
}

#[test]
fn every_setting_is_documented() {
    let settings = settings();
    assert!(settings.len() > 50, "{settings:?}");
    let doc = read("docs/configuration.md");
    let missing: Vec<&String> = settings
        .iter()
        .filter(|s| !doc.contains(&format!("`{s}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "settings of config/default.toml missing from docs/configuration.md: {missing:?}"
    );
}

#[test]
fn the_readme_starts_with_the_two_commands_and_ci_runs_the_second() {
    let readme = read("README.md");
    let block = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a sh block");
    let commands: Vec<&str> = block.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(commands, ["cargo run --release", "cargo test"]);
    let before = &readme[..readme.find("```sh").unwrap()];
    assert!(
        before.lines().filter(|l| !l.trim().is_empty()).count() == 1,
        "the two commands come first, right after the title"
    );
    let ci = read(".ci/run");
    let last = ci.lines().rev().find(|l| !l.trim().is_empty()).unwrap();
    assert_eq!(
        last.trim(),
        "cargo test",
        "CI runs the README's test command last"
    );
    assert!(readme.lines().count() <= 150, "the README is a front page");
}

#[test]
fn relative_links_lead_somewhere() {
    let mut broken = Vec::new();
    let mut files = vec![root().join("README.md")];
    for e in fs::read_dir(root().join("docs")).unwrap() {
        files.push(e.unwrap().path());
    }
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        let dir = file.parent().unwrap();
        for (i, _) in text.match_indices("](") {
            let target = text[i + 2..].split(')').next().unwrap();
            let path = target.split('#').next().unwrap();
            if path.is_empty() || path.contains("://") || path.starts_with("mailto:") {
                continue;
            }
            if !Path::new(&dir.join(path)).exists() {
                broken.push(format!("{}: {target}", file.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links: {broken:?}");
}
