//! The bench payload both send_ccda and transport send: a real C-CDA grown to a given size.

use anyhow::{Context, ensure};

/// ccd-2.xml with its section `<component>`s repeated inside structuredBody (cycling through
/// them in order) until the document is at least `min` bytes.
pub fn grown(min: usize) -> anyhow::Result<(Vec<u8>, usize, usize)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ccda/ccd-2.xml");
    let doc = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let open = doc
        .find("<structuredBody>")
        .context("no <structuredBody>")?
        + "<structuredBody>".len();
    let close = doc
        .find("</structuredBody>")
        .context("no </structuredBody>")?;
    let inner = &doc[open..close];
    // Top-level components of the body (each holds one section), by nesting depth.
    let mut sections = Vec::new();
    let (mut depth, mut start, mut i) = (0usize, 0usize, 0usize);
    while let Some(rel) = inner[i..].find("component") {
        let at = i + rel;
        if inner[..at].ends_with("</") {
            depth = depth.checked_sub(1).context("unbalanced </component>")?;
            if depth == 0 {
                let end = at + "component>".len();
                sections.push(&inner[start..end]);
            }
        } else if inner[..at].ends_with('<') {
            if depth == 0 {
                start = at - 1;
            }
            depth += 1;
        }
        i = at + "component".len();
    }
    ensure!(
        depth == 0 && !sections.is_empty(),
        "could not split the body into sections"
    );
    let mut out = String::with_capacity(min + doc.len());
    out.push_str(&doc[..close]);
    let mut n = 0;
    while out.len() + (doc.len() - close) < min {
        out.push('\t');
        out.push_str(sections[n % sections.len()]);
        out.push_str("\n\t\t");
        n += 1;
    }
    out.push_str(&doc[close..]);
    Ok((out.into_bytes(), sections.len(), n))
}
