//! A small, bounded XML tree for untrusted documents (SOAP requests, XDM metadata, later HL7
//! v3 messages), and escaping for the XML we write.
//!
//! Input is untrusted: any DOCTYPE is refused (so no DTD, external entity or entity
//! expansion is ever processed), only the five predefined entities and character references are
//! accepted, and the depth and number of elements are capped.

use quick_xml::NsReader;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;

/// Deepest element nesting a request may have (a SOAP envelope of ours needs about 8).
pub const MAX_DEPTH: usize = 32;
/// Most elements a request may have (a form with hundreds of addresses stays far below).
pub const MAX_ELEMENTS: usize = 100_000;
/// Most attributes one element may have (ours need a handful). Checking a new attribute
/// against the earlier ones for duplicates is what makes thousands of them expensive.
pub const MAX_ATTRIBUTES: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// Namespace URI, empty for unqualified elements.
    pub ns: String,
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum XmlError {
    #[error("malformed XML: {0}")]
    Malformed(String),
    #[error("DOCTYPE declarations are not accepted")]
    Doctype,
    #[error("entity reference &{0}; is not allowed (only the predefined XML entities are)")]
    Entity(String),
    #[error("XML nesting deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("more than {MAX_ELEMENTS} XML elements")]
    TooManyElements,
    #[error("an element with more than {MAX_ATTRIBUTES} attributes")]
    TooManyAttributes,
}

impl Element {
    /// The first child with this local name, whatever its namespace (our schema's children are
    /// unqualified, but some toolkits qualify them).
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Trimmed text of a child; `None` when the child is absent or blank.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name)
            .map(|c| c.text.trim())
            .filter(|t| !t.is_empty())
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name || k.rsplit(':').next() == Some(name))
            .map(|(_, v)| v.as_str())
    }
}

fn malformed(e: impl std::fmt::Display) -> XmlError {
    XmlError::Malformed(e.to_string())
}

fn open(reader: &NsReader<&[u8]>, e: &BytesStart<'_>) -> Result<Element, XmlError> {
    let (ns, local) = reader.resolver().resolve_element(e.name());
    let ns = match ns {
        ResolveResult::Bound(n) => n.as_ref().to_owned(),
        ResolveResult::Unbound => String::new(),
        ResolveResult::Unknown(p) => {
            return Err(XmlError::Malformed(format!(
                "undeclared namespace prefix {p}"
            )));
        }
    };
    let mut attrs = Vec::new();
    for a in e.attributes() {
        if attrs.len() == MAX_ATTRIBUTES {
            return Err(XmlError::TooManyAttributes);
        }
        let a = a.map_err(malformed)?;
        let key = a.key.as_ref().to_owned();
        let value = unescape_attr(&a.value)?;
        attrs.push((key, value));
    }
    Ok(Element {
        ns,
        name: local.as_ref().to_owned(),
        attrs,
        children: Vec::new(),
        text: String::new(),
    })
}

/// Resolves the references allowed in attribute values (predefined and character references).
fn unescape_attr(raw: &str) -> Result<String, XmlError> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let end = rest[i..]
            .find(';')
            .ok_or_else(|| malformed("unterminated entity reference in an attribute"))?;
        out.push_str(&resolve_reference(&rest[i + 1..i + end])?);
        rest = &rest[i + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn resolve_reference(name: &str) -> Result<String, XmlError> {
    let s = match name {
        "amp" => "&",
        "lt" => "<",
        "gt" => ">",
        "quot" => "\"",
        "apos" => "'",
        _ => {
            let code = if let Some(hex) = name.strip_prefix("#x") {
                u32::from_str_radix(hex, 16).ok()
            } else if let Some(dec) = name.strip_prefix('#') {
                dec.parse().ok()
            } else {
                return Err(XmlError::Entity(name.to_owned()));
            };
            return code
                .and_then(char::from_u32)
                .map(String::from)
                .ok_or_else(|| malformed(format!("bad character reference &{name};")));
        }
    };
    Ok(s.to_owned())
}

/// Parses a whole document into its root element.
pub fn parse(input: &[u8]) -> Result<Element, XmlError> {
    let mut reader = NsReader::from_reader(input);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut count = 0usize;
    loop {
        let event = reader.read_event().map_err(malformed)?;
        match event {
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Start(ref e) | Event::Empty(ref e) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(XmlError::TooManyElements);
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                let el = open(&reader, e)?;
                if matches!(event, Event::Empty(_)) {
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(el),
                        None => return finish(&mut reader, el),
                    }
                } else {
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or_else(|| malformed("unexpected end tag"))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => return finish(&mut reader, el),
                }
            }
            Event::Text(t) => {
                let text = t.xml10_content();
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&text),
                    None if text.trim().is_empty() => {}
                    None => return Err(malformed("text outside the root element")),
                }
            }
            Event::CData(t) => {
                let text = t.xml10_content().into_owned();
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&text);
                }
            }
            Event::GeneralRef(r) => {
                let name: &str = r.as_ref();
                let text = resolve_reference(name)?;
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&text);
                }
            }
            Event::Eof => return Err(malformed("the document ends before its root element")),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
}

/// After the root closes only whitespace, comments and processing instructions may follow.
fn finish(reader: &mut NsReader<&[u8]>, root: Element) -> Result<Element, XmlError> {
    loop {
        match reader.read_event().map_err(malformed)? {
            Event::Eof => return Ok(root),
            Event::Text(t) if t.xml10_content().trim().is_empty() => {}
            Event::Comment(_) | Event::PI(_) => {}
            Event::DocType(_) => return Err(XmlError::Doctype),
            _ => return Err(malformed("content after the root element")),
        }
    }
}

/// Escapes text for element content and attribute values.
pub fn escape(s: &str) -> String {
    escape_as(s, false)
}

/// `escape`, with line ends and tabs as character references too, so that attribute-value
/// normalisation in other parsers cannot turn them into spaces (XDM metadata read by others).
pub fn escape_keeping_whitespace(s: &str) -> String {
    escape_as(s, true)
}

fn escape_as(s: &str, whitespace_as_references: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' if whitespace_as_references => out.push_str("&#10;"),
            '\r' if whitespace_as_references => out.push_str("&#13;"),
            '\t' if whitespace_as_references => out.push_str("&#9;"),
            // Control characters other than tab/newline/CR are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// Appends `<name>text</name>` (escaped) to `out`.
pub fn leaf(out: &mut String, name: &str, text: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    out.push_str(&escape(text));
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_text_and_references_resolve() {
        let doc = br#"<?xml version="1.0"?>
            <a:root xmlns:a="urn:a"><child x="1 &amp; 2">x &lt; y&#65;<![CDATA[<z>]]></child><b:n xmlns:b="urn:b"/></a:root>"#;
        let root = parse(doc).unwrap();
        assert_eq!((root.ns.as_str(), root.name.as_str()), ("urn:a", "root"));
        let child = root.child("child").unwrap();
        assert_eq!(child.ns, "");
        assert_eq!(child.text, "x < yA<z>");
        assert_eq!(child.attr("x"), Some("1 & 2"));
        assert_eq!(root.child("n").unwrap().ns, "urn:b");
    }

    #[test]
    fn doctype_custom_entities_and_depth_are_refused() {
        let lol = br#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><lolz>&lol2;</lolz>"#;
        assert_eq!(parse(lol), Err(XmlError::Doctype));
        assert_eq!(parse(b"<a>&ext;</a>"), Err(XmlError::Entity("ext".into())));
        let deep = format!(
            "{}{}",
            "<a>".repeat(MAX_DEPTH + 1),
            "</a>".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(parse(deep.as_bytes()), Err(XmlError::TooDeep));
        assert!(matches!(parse(b"<a><b></a>"), Err(XmlError::Malformed(_))));
        assert!(matches!(parse(b"<a/><b/>"), Err(XmlError::Malformed(_))));
        assert!(matches!(parse(b"<p:a/>"), Err(XmlError::Malformed(_))));
        let attrs: String = (0..=MAX_ATTRIBUTES).map(|i| format!(" a{i}='x'")).collect();
        assert_eq!(
            parse(format!("<a{attrs}/>").as_bytes()),
            Err(XmlError::TooManyAttributes)
        );
    }

    #[test]
    fn escape_round_trips_through_the_parser() {
        let s = "a<b>&\"c'\u{1}";
        let doc = format!("<r a=\"{0}\">{0}</r>", escape(s));
        let root = parse(doc.as_bytes()).unwrap();
        assert_eq!(root.text, "a<b>&\"c'");
        assert_eq!(root.attr("a"), Some("a<b>&\"c'"));
    }

    fn depth(e: &Element) -> usize {
        1 + e.children.iter().map(depth).max().unwrap_or(0)
    }

    proptest::proptest! {
        #![proptest_config(crate::fuzzing::config())]

        /// Damaged XML: an error or a tree within the caps, never a panic.
        #[test]
        fn fuzz_xml_never_panics(doc in crate::fuzzing::mutated(vec![
            br#"<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><ns:Login xmlns:ns="urn:x"><username a="1" b='&amp;'>u&lt;1&#x41;</username><password><![CDATA[p]]></password></ns:Login></s:Body></s:Envelope>"#.to_vec(),
            b"<a><b c=\"d\"/><!-- c --><?pi x?><e>t</e></a>".to_vec(),
        ])) {
            if let Ok(root) = parse(&doc) {
                proptest::prop_assert!(depth(&root) <= MAX_DEPTH);
            }
        }
    }
}
