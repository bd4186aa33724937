//! The document reading of [`super::xml`] done with a general XML parser (quick-xml): the scanner
//! must agree with it on every document, which the property test below checks.

use std::borrow::Cow;

use super::xml::{Fields, XmlError, append, resolve_reference};

/// The same reading with a general XML parser (quick-xml), to test the scanner against.
pub fn parse_fields(xml: &str) -> Result<Fields<'_>, XmlError> {
    use quick_xml::Reader;
    use quick_xml::events::Event;
    let mut reader = Reader::from_str(xml);
    let mut fields = Fields::from_entries(Vec::with_capacity(12));
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
                    fields.push((local_name(xml, start.name().as_ref()), Cow::Borrowed("")));
                }
            }
            Event::End(_) => {
                if depth == 2
                    && let Some(entry) = current.take()
                {
                    fields.push(entry);
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::XmlError;

    /// Well-formed pieces WeCom documents are made of.
    fn valid_piece() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("<A>1</A>".to_owned()),
            Just("<B><![CDATA[明天 & <ok>]]></B>".to_owned()),
            Just("<C/>".to_owned()),
            Just("<D></D>".to_owned()),
            Just("<E>a &amp; b &#x4E2D; &lt;</E>".to_owned()),
            Just("<F>x\r\ny\rz</F>".to_owned()),
            Just("<G>t<![CDATA[c]]>u</G>".to_owned()),
            Just("<Ext><Item><Name>x</Name></Item><Item/></Ext>".to_owned()),
            Just("<!-- note -->".to_owned()),
            Just("<?pi x?>".to_owned()),
            Just("<H a=\"1\" b='>'>v</H>".to_owned()),
            Just("<ns:I>p</ns:I>".to_owned()),
            Just("  \n ".to_owned()),
            "[a-zA-Z0-9 中文]{0,6}".prop_map(|t| format!("<T>{t}</T>")),
        ]
    }

    /// Anything: well-formed pieces, hostile ones, and noise.
    fn any_piece() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => valid_piece(),
            1 => Just("&bogus;".to_owned()),
            1 => Just("<!DOCTYPE x>".to_owned()),
            1 => Just("<![CDATA[x".to_owned()),
            2 => "[a-zA-Z0-9 <>/&;!\\[\\]?=\"'-]{0,6}",
        ]
    }

    fn document(piece: BoxedStrategy<String>) -> impl Strategy<Value = String> {
        (
            prop::collection::vec(piece, 0..8),
            prop_oneof![Just(""), Just("<?xml version=\"1.0\"?>"), Just(" <!-- c -->\n")],
        )
            .prop_map(|(pieces, prolog)| format!("{prolog}<xml>{}</xml>", pieces.concat()))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn well_formed_documents_read_the_same_as_with_a_general_parser(xml in document(valid_piece().boxed())) {
            let fast = super::super::xml::parse_fields(&xml);
            let reference = super::parse_fields(&xml);
            prop_assert!(fast.is_ok(), "{:?}: {:?}", xml, fast);
            prop_assert_eq!(fast, reference, "{}", xml);
        }

        /// The scanner is stricter than the general parser, never laxer: what it accepts, the
        /// general parser reads the same way; a document with a DOCTYPE it refuses too.
        #[test]
        fn any_document_the_scanner_accepts_reads_the_same(
            xml in document(any_piece().boxed()),
            cut in 0usize..400,
            tail in prop_oneof![Just(""), Just(" "), Just("<x/>"), Just("junk"), Just("</other>")],
        ) {
            let mut xml = format!("{xml}{tail}");
            if cut < xml.chars().count() && cut % 3 == 0 {
                let at = xml.char_indices().map(|(i, _)| i).nth(cut).unwrap_or(xml.len());
                xml.truncate(at);
            }
            let fast = super::super::xml::parse_fields(&xml);
            let reference = super::parse_fields(&xml);
            if fast.is_ok() {
                prop_assert_eq!(&fast, &reference, "{}", xml);
            }
            if reference == Err(XmlError::Doctype) {
                prop_assert!(fast.is_err(), "{:?} has a DOCTYPE: {:?}", xml, fast);
            }
        }
    }
}
