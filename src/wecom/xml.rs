//! A flat reading of WeCom's XML: `<xml><Name>value</Name>…</xml>`, values either plain text or
//! CDATA, read with quick-xml. WeCom documents are one level deep (a few optional fields nest
//! further; their children are skipped), so the reader collects the root's direct children,
//! borrowing what it can from the input, and refuses a DOCTYPE outright instead of relying on
//! entities not being expanded: only XML's predefined entities and character references resolve.

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
    // The child element open at depth 2, and the text gathered for it so far.
    let mut current: Option<(&str, Cow<'_, str>)> = None;
    loop {
        let event = reader.read_event().map_err(|e| malformed(&e.to_string()))?;
        match event {
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Start(start) => {
                depth += 1;
                if depth == 1 {
                    root(&mut seen_root)?;
                } else if depth == 2 {
                    current = Some((element_name(xml, start.name().as_ref()), Cow::Borrowed("")));
                }
            }
            Event::Empty(start) => match depth {
                0 => root(&mut seen_root)?,
                1 => fields
                    .entries
                    .push((element_name(xml, start.name().as_ref()), Cow::Borrowed(""))),
                _ => {}
            },
            Event::End(_) => {
                if depth == 2
                    && let Some(entry) = current.take()
                {
                    fields.entries.push(entry);
                }
                depth = depth.checked_sub(1).ok_or_else(|| malformed("unbalanced end tag"))?;
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
                if depth == 0 && !text.into_inner().trim_ascii().is_empty() {
                    return Err(malformed("text outside the root element"));
                }
            }
            Event::Eof => break,
            Event::CData(_) | Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
        }
    }
    if depth != 0 {
        return Err(malformed("document ends inside an element"));
    }
    if !seen_root {
        return Err(XmlError::Empty);
    }
    Ok(fields)
}

/// The text of every element named in `names`, at any depth, in document order — for the few
/// callbacks whose data nests (a card click's `SelectedItems`). Read only when such a callback is
/// recognised, so the flat reading above stays the one every callback pays for.
pub fn nested_values(xml: &str, names: &[&str]) -> Result<Vec<(String, String)>, XmlError> {
    let mut reader = Reader::from_str(xml);
    let mut values = Vec::new();
    let mut current: Option<(String, String)> = None;
    loop {
        match reader.read_event().map_err(|e| malformed(&e.to_string()))? {
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Start(start) => {
                let name = element_name(xml, start.name().as_ref());
                current = names.contains(&name).then(|| (name.to_owned(), String::new()));
            }
            Event::Text(text) => {
                if let Some((_, value)) = current.as_mut() {
                    value.push_str(&text.xml10_content());
                }
            }
            Event::CData(cdata) => {
                if let Some((_, value)) = current.as_mut() {
                    value.push_str(&cdata.into_inner());
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = resolve_reference(&reference.into_inner())?;
                if let Some((_, value)) = current.as_mut() {
                    value.push_str(&resolved);
                }
            }
            Event::End(_) => {
                if let Some((name, value)) = current.take() {
                    values.push((name, value.trim().to_owned()));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(values)
}

fn root(seen: &mut bool) -> Result<(), XmlError> {
    if std::mem::replace(seen, true) {
        return Err(malformed("more than one root element"));
    }
    Ok(())
}

fn malformed(what: &str) -> XmlError {
    XmlError::Malformed(what.to_owned())
}

/// The local name (`ns:Name` → `Name`) of an element, re-borrowed from the input so that it
/// outlives the event: a reader over a `&str` hands out slices of it (the pointers are compared; a
/// name that is not one yields an empty name, never a panic).
fn element_name<'a>(xml: &'a str, name: &str) -> &'a str {
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
    fn nested_values_are_found_at_any_depth_in_order() {
        let xml = "<xml><Event>template_card_event</Event><SelectedItems><SelectedItem><QuestionKey><![CDATA[r]]></QuestionKey><OptionIds><OptionId><![CDATA[12]]></OptionId><OptionId>13</OptionId></OptionIds></SelectedItem></SelectedItems></xml>";
        let values = nested_values(xml, &["QuestionKey", "OptionId"]).unwrap();
        assert_eq!(
            values,
            vec![
                ("QuestionKey".to_owned(), "r".to_owned()),
                ("OptionId".to_owned(), "12".to_owned()),
                ("OptionId".to_owned(), "13".to_owned())
            ]
        );
        assert!(nested_values("<xml><A>1</A></xml>", &["B"]).unwrap().is_empty());
    }

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

    mod properties {
        use proptest::prelude::*;

        use super::super::{XmlError, parse_fields};

        /// A value as WeCom may write it: plain (escaped) text or CDATA.
        fn field() -> impl Strategy<Value = (String, String, bool)> {
            ("[A-Z][A-Za-z]{0,8}", "[a-zA-Z0-9 中文&<>'\"]{0,12}", any::<bool>())
        }

        fn escape(text: &str) -> String {
            text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            /// Every field reads back exactly, however it was written, in order.
            #[test]
            fn fields_read_back_as_written(fields in prop::collection::vec(field(), 0..10)) {
                let body: String = fields
                    .iter()
                    .map(|(name, value, cdata)| if *cdata {
                        format!("<{name}><![CDATA[{value}]]></{name}>")
                    } else {
                        format!("<{name}>{}</{name}>", escape(value))
                    })
                    .collect();
                let xml = format!("<xml>{body}</xml>");
                let parsed = parse_fields(&xml).unwrap();
                let read: Vec<(&str, &str)> = parsed.iter().collect();
                let expected: Vec<(&str, &str)> = fields.iter().map(|(n, v, _)| (n.as_str(), v.as_str())).collect();
                prop_assert_eq!(read, expected);
            }

            /// Nothing panics, and a DOCTYPE anywhere in front of the root is refused.
            #[test]
            fn anything_is_a_document_or_an_error(noise in "[a-zA-Z0-9 <>/&;!\\[\\]?=\"'-]{0,40}") {
                let _ = parse_fields(&noise);
                let with_doctype = format!("<!DOCTYPE x><xml>{noise}</xml>");
                prop_assert_eq!(parse_fields(&with_doctype), Err(XmlError::Doctype));
            }
        }
    }
}
