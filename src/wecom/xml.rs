//! A flat reader for WeCom's XML: `<xml><Name>value</Name>…</xml>`, values either plain text or
//! CDATA. WeCom documents are one level deep (a few optional fields nest further; their children
//! are skipped), so a pull parser that collects top-level children is both simpler and much faster
//! than serde, and lets us reject DOCTYPE declarations outright instead of relying on entities not
//! being expanded.

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::events::Event;

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("XML with a DOCTYPE or entity declarations is not accepted")]
    Doctype,
    #[error("unknown entity reference &{0};")]
    UnknownEntity(String),
    #[error("malformed XML: {0}")]
    Malformed(String),
    #[error("XML document has no root element")]
    Empty,
}

/// The direct children of the root element, in document order, with their text content.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Fields<'a> {
    entries: Vec<(&'a str, Cow<'a, str>)>,
}

impl<'a> Fields<'a> {
    /// The value of the first child named `name` (case-sensitive, as WeCom names are fixed).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_ref())
    }

    /// Like [`Fields::get`], but trimmed and `None` when empty.
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).map(str::trim).filter(|v| !v.is_empty())
    }

    pub fn take(&mut self, name: &str) -> Option<Cow<'a, str>> {
        let pos = self.entries.iter().position(|(n, _)| *n == name)?;
        Some(self.entries.swap_remove(pos).1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &str)> {
        self.entries.iter().map(|(n, v)| (*n, v.as_ref()))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Parses a document into its root's direct children. Nested elements contribute nothing to their
/// parent's value; their names are not reported.
pub fn parse_fields(xml: &str) -> Result<Fields<'_>, XmlError> {
    let mut reader = Reader::from_str(xml);
    let mut fields = Fields {
        entries: Vec::with_capacity(12),
    };
    let mut depth = 0usize;
    let mut seen_root = false;
    // The child element currently open at depth 2 and the text gathered for it so far.
    let mut current: Option<(&str, Cow<'_, str>)> = None;
    loop {
        let event = reader.read_event().map_err(|e| XmlError::Malformed(e.to_string()))?;
        match event {
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Start(start) => {
                depth += 1;
                if depth == 1 {
                    if seen_root {
                        return Err(XmlError::Malformed("more than one root element".into()));
                    }
                    seen_root = true;
                } else if depth == 2 {
                    current = Some((local_name(xml, start.name().as_ref()), Cow::Borrowed("")));
                }
            }
            Event::Empty(start) => {
                if depth == 0 {
                    if seen_root {
                        return Err(XmlError::Malformed("more than one root element".into()));
                    }
                    seen_root = true;
                } else if depth == 1 {
                    fields
                        .entries
                        .push((local_name(xml, start.name().as_ref()), Cow::Borrowed("")));
                }
            }
            Event::End(_) => {
                if depth == 2
                    && let Some(entry) = current.take()
                {
                    fields.entries.push(entry);
                }
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| XmlError::Malformed("unbalanced end tag".into()))?;
            }
            Event::Text(text) if depth == 2 => {
                if let Some((_, value)) = current.as_mut() {
                    append(value, text.xml10_content());
                }
            }
            Event::CData(cdata) if depth == 2 => {
                if let Some((_, value)) = current.as_mut() {
                    append(value, cdata.into_inner());
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = resolve_reference(&reference.into_inner())?;
                if depth == 2
                    && let Some((_, value)) = current.as_mut()
                {
                    append(value, resolved);
                }
            }
            Event::Text(text) => {
                if depth == 0 && !text.into_inner().trim().is_empty() {
                    return Err(XmlError::Malformed("text outside the root element".into()));
                }
            }
            Event::Eof => break,
            Event::CData(_) | Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
        }
    }
    if depth != 0 {
        return Err(XmlError::Malformed("document ends inside an element".into()));
    }
    if !seen_root {
        return Err(XmlError::Empty);
    }
    Ok(fields)
}

/// Re-borrows an element name from the input so it outlives the event. A reader over a `&str`
/// always hands out slices of that input; anything else yields an empty name rather than a panic.
fn local_name<'a>(xml: &'a str, name: &str) -> &'a str {
    let start = (name.as_ptr() as usize).wrapping_sub(xml.as_ptr() as usize);
    let full = xml
        .get(start..start.saturating_add(name.len()))
        .filter(|s| s.as_ptr() == name.as_ptr())
        .unwrap_or("");
    full.rsplit_once(':').map_or(full, |(_, local)| local)
}

fn append<'a>(value: &mut Cow<'a, str>, more: Cow<'a, str>) {
    if value.is_empty() {
        *value = more;
    } else {
        value.to_mut().push_str(&more);
    }
}

fn resolve_reference(name: &str) -> Result<Cow<'static, str>, XmlError> {
    let predefined = match name {
        "amp" => "&",
        "lt" => "<",
        "gt" => ">",
        "quot" => "\"",
        "apos" => "'",
        _ => "",
    };
    if !predefined.is_empty() {
        return Ok(Cow::Borrowed(predefined));
    }
    let number = name
        .strip_prefix('#')
        .ok_or_else(|| XmlError::UnknownEntity(name.chars().take(32).collect()))?;
    let code = match number.strip_prefix('x') {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => number.parse::<u32>(),
    }
    .map_err(|_| XmlError::Malformed(format!("invalid character reference &{name};")))?;
    match char::from_u32(code) {
        Some(c) if c != '\0' => Ok(Cow::Owned(c.to_string())),
        _ => Err(XmlError::Malformed(format!("invalid character reference &{name};"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cdata_and_plain_text_alike() {
        let f = parse_fields("<xml><A><![CDATA[明天 & <ok>]]></A><B>42</B><C/><D></D><E>a &amp; b &#x4E2D;</E></xml>")
            .unwrap();
        assert_eq!(f.get("A"), Some("明天 & <ok>"));
        assert_eq!(f.get("B"), Some("42"));
        assert_eq!(f.get("C"), Some(""));
        assert_eq!(f.get("D"), Some(""));
        assert_eq!(f.get("E"), Some("a & b 中"));
        assert_eq!(f.get("Missing"), None);
    }

    #[test]
    fn nested_children_are_skipped() {
        let f = parse_fields("<xml><A>1</A><ExtAttr><Item><Name>x</Name></Item></ExtAttr><B>2</B></xml>").unwrap();
        assert_eq!(f.get("A"), Some("1"));
        assert_eq!(f.get("ExtAttr"), Some(""));
        assert_eq!(f.get("Name"), None);
        assert_eq!(f.get("B"), Some("2"));
    }

    #[test]
    fn doctype_is_rejected_even_when_unused() {
        let xml = r#"<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "b">]><xml><A>1</A></xml>"#;
        assert_eq!(parse_fields(xml), Err(XmlError::Doctype));
    }

    #[test]
    fn billion_laughs_is_rejected_without_expansion() {
        let xml = r#"<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><xml><A>&lol2;</A></xml>"#;
        assert_eq!(parse_fields(xml), Err(XmlError::Doctype));
        assert!(matches!(
            parse_fields("<xml><A>&lol2;</A></xml>"),
            Err(XmlError::UnknownEntity(_))
        ));
    }

    #[test]
    fn broken_documents_are_errors() {
        for bad in [
            "",
            "   ",
            "<xml><A>1</B></xml>",
            "<xml><A>1</A>",
            "text",
            "<xml/><xml/>",
            "<xml></xml>junk",
        ] {
            assert!(parse_fields(bad).is_err(), "{bad:?} should fail");
        }
    }
}
