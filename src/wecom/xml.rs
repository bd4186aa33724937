//! A flat reader for WeCom's XML: `<xml><Name>value</Name>…</xml>`, values either plain text or
//! CDATA. WeCom documents are one level deep (a few optional fields nest further; their children
//! are skipped), so a scanner that collects top-level children is both simpler and much faster than
//! a general XML parser with serde, and rejects DOCTYPE declarations outright instead of relying on
//! entities not being expanded.

use std::borrow::Cow;

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

#[cfg(test)]
impl<'a> Fields<'a> {
    pub(super) fn from_entries(entries: Vec<(&'a str, Cow<'a, str>)>) -> Self {
        Self { entries }
    }

    pub(super) fn push(&mut self, entry: (&'a str, Cow<'a, str>)) {
        self.entries.push(entry);
    }
}

/// Parses a document into its root's direct children. Nested elements contribute nothing to their
/// parent's value; their names are not reported.
///
/// A hand-written scanner: WeCom's documents are flat and small, and this is the hot path of
/// every callback (the envelope, then the decrypted message), so it borrows everything it can and
/// allocates only the list of fields.
pub fn parse_fields(xml: &str) -> Result<Fields<'_>, XmlError> {
    let mut scanner = Scanner { xml, pos: 0 };
    let mut fields = Fields {
        entries: Vec::with_capacity(12),
    };
    scanner.skip_misc()?;
    if scanner.at_end() {
        return Err(XmlError::Empty);
    }
    if !scanner.eat("<") {
        return Err(malformed("text outside the root element"));
    }
    let (root, root_empty) = scanner.start_tag()?;
    if !root_empty {
        loop {
            if let Some((name, value)) = scanner.simple_child() {
                fields.entries.push((name, Cow::Borrowed(value)));
                continue;
            }
            match scanner.next_item()? {
                Item::Text(text) => resolve_text(text, |_| {})?,
                Item::CData(_) | Item::Skipped => {}
                Item::End(name) if name == root => break,
                Item::End(_) => return Err(malformed("end tag does not match its start tag")),
                Item::Start(name, true) => fields.entries.push((local(name), Cow::Borrowed(""))),
                Item::Start(name, false) => {
                    let value = scanner.child_value(name)?;
                    fields.entries.push((local(name), value));
                }
                Item::Eof => return Err(malformed("document ends inside an element")),
            }
        }
    }
    scanner.skip_misc()?;
    if !scanner.at_end() {
        return Err(if scanner.rest().starts_with('<') {
            malformed("more than one root element")
        } else {
            malformed("text outside the root element")
        });
    }
    Ok(fields)
}

fn malformed(what: &str) -> XmlError {
    XmlError::Malformed(what.to_owned())
}

/// The local part of a possibly prefixed name (`ns:Name` → `Name`).
fn local(name: &str) -> &str {
    match memchr::memrchr(b':', name.as_bytes()) {
        Some(colon) => &name[colon + 1..],
        None => name,
    }
}

/// What comes next inside an element.
enum Item<'a> {
    Text(&'a str),
    CData(&'a str),
    /// A comment or processing instruction.
    Skipped,
    /// A start tag, and whether it closes itself (`<A/>`).
    Start(&'a str, bool),
    End(&'a str),
    Eof,
}

struct Scanner<'a> {
    xml: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn rest(&self) -> &'a str {
        &self.xml[self.pos..]
    }

    fn at_end(&self) -> bool {
        self.pos >= self.xml.len()
    }

    fn eat(&mut self, prefix: &str) -> bool {
        if self.rest().starts_with(prefix) {
            self.pos += prefix.len();
            true
        } else {
            false
        }
    }

    /// Moves past `end`, returning what came before it.
    fn until(&mut self, end: &str, what: &str) -> Result<&'a str, XmlError> {
        let rest = self.rest();
        let at = find_str(rest, end).ok_or_else(|| malformed(what))?;
        self.pos += at + end.len();
        Ok(&rest[..at])
    }

    /// Whitespace, comments, processing instructions and the XML declaration: what may stand
    /// around the root element. A DOCTYPE is refused wherever it appears.
    fn skip_misc(&mut self) -> Result<(), XmlError> {
        loop {
            let trimmed = self.rest().trim_start();
            self.pos = self.xml.len() - trimmed.len();
            if self.eat("<?") {
                self.until("?>", "unterminated processing instruction")?;
            } else if self.eat("<!--") {
                self.until("-->", "unterminated comment")?;
            } else if self.rest().starts_with("<!") {
                return Err(self.declaration());
            } else {
                return Ok(());
            }
        }
    }

    /// The error for a `<!…>` that is neither a comment nor CDATA.
    fn declaration(&self) -> XmlError {
        let after = self.rest().get(2..11).unwrap_or_default();
        if after.eq_ignore_ascii_case("DOCTYPE") || after.starts_with("DOCTYPE") {
            XmlError::Doctype
        } else {
            malformed("unexpected markup declaration")
        }
    }

    /// After `<`: the element's name, its attributes (checked for balanced quotes, then
    /// ignored), and whether it closes itself.
    fn start_tag(&mut self) -> Result<(&'a str, bool), XmlError> {
        let rest = self.rest();
        let mut name_len = 0;
        for &b in rest.as_bytes() {
            match NAME_BYTE[b as usize] {
                NAME | COLON => name_len += 1,
                NAME_END => break,
                _ => return Err(malformed("invalid element name")),
            }
        }
        if name_len == rest.len() {
            return Err(malformed("unterminated start tag"));
        }
        if name_len == 0 {
            return Err(malformed("invalid element name"));
        }
        let name = &rest[..name_len];
        self.pos += name_len;
        if rest.as_bytes()[name_len] == b'>' {
            self.pos += 1;
            return Ok((name, false));
        }
        let mut quote: Option<u8> = None;
        let bytes = self.xml.as_bytes();
        while self.pos < bytes.len() {
            let b = bytes[self.pos];
            self.pos += 1;
            match (quote, b) {
                (Some(q), b) if b == q => quote = None,
                (Some(_), _) => {}
                (None, b'"' | b'\'') => quote = Some(b),
                (None, b'<') => return Err(malformed("'<' inside a start tag")),
                (None, b'>') => return Ok((name, bytes[self.pos - 2] == b'/')),
                (None, _) => {}
            }
        }
        Err(malformed("unterminated start tag"))
    }

    fn next_item(&mut self) -> Result<Item<'a>, XmlError> {
        let rest = self.rest();
        let bytes = rest.as_bytes();
        match bytes.first() {
            None => return Ok(Item::Eof),
            Some(b'<') => {}
            Some(_) => {
                let len = memchr::memchr(b'<', bytes).unwrap_or(rest.len());
                self.pos += len;
                return Ok(Item::Text(&rest[..len]));
            }
        }
        // Dispatch on the byte after `<`: one comparison for the common cases.
        match bytes.get(1) {
            Some(b'/') => {
                self.pos += 2;
                let name = self.until(">", "unterminated end tag")?;
                let name = match name.as_bytes().last() {
                    Some(b' ' | b'\t' | b'\r' | b'\n') => name.trim_end(),
                    _ => name,
                };
                Ok(Item::End(name))
            }
            Some(b'!') => {
                if self.eat("<![CDATA[") {
                    Ok(Item::CData(self.until("]]>", "unterminated CDATA section")?))
                } else if self.eat("<!--") {
                    self.until("-->", "unterminated comment")?;
                    Ok(Item::Skipped)
                } else {
                    Err(self.declaration())
                }
            }
            Some(b'?') => {
                self.pos += 2;
                self.until("?>", "unterminated processing instruction")?;
                Ok(Item::Skipped)
            }
            _ => {
                self.pos += 1;
                let (name, empty) = self.start_tag()?;
                Ok(Item::Start(name, empty))
            }
        }
    }

    /// The text of a child element opened with `name`: its text and CDATA joined, nested
    /// elements skipped. Borrowed from the input when it is one piece needing no decoding.
    fn child_value(&mut self, name: &'a str) -> Result<Cow<'a, str>, XmlError> {
        if let Some(value) = self.simple_value(name) {
            return Ok(Cow::Borrowed(value));
        }
        let mut value: Cow<'a, str> = Cow::Borrowed("");
        let mut open: Vec<&'a str> = Vec::new();
        loop {
            match self.next_item()? {
                Item::Text(text) if open.is_empty() => {
                    if text.bytes().any(|b| b == b'&' || b == b'\r') {
                        let mut decoded = String::with_capacity(text.len());
                        resolve_text(text, |piece| decoded.push_str(piece))?;
                        append(&mut value, Cow::Owned(decoded));
                    } else {
                        append(&mut value, Cow::Borrowed(text));
                    }
                }
                Item::Text(text) => resolve_text(text, |_| {})?,
                Item::CData(data) if open.is_empty() => append(&mut value, Cow::Borrowed(data)),
                Item::CData(_) | Item::Skipped => {}
                Item::Start(nested, false) => open.push(nested),
                Item::Start(_, true) => {}
                Item::End(end) => match open.pop() {
                    Some(nested) if nested == end => {}
                    None if end == name => return Ok(value),
                    _ => return Err(malformed("end tag does not match its start tag")),
                },
                Item::Eof => return Err(malformed("document ends inside an element")),
            }
        }
    }
}

impl<'a> Scanner<'a> {
    /// A whole child in the shape nearly every WeCom field has, `<Name>` and a simple value
    /// (below), with the whitespace before it: its local name and value, or `None` with nothing
    /// consumed.
    fn simple_child(&mut self) -> Option<(&'a str, &'a str)> {
        let bytes = self.xml.as_bytes();
        let mut at = self.pos;
        while matches!(bytes.get(at), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            at += 1;
        }
        let open = at;
        if bytes.get(open) != Some(&b'<') || matches!(bytes.get(open + 1), Some(b'!' | b'?')) {
            return None;
        }
        let mut end = open + 1;
        let mut local_from = end;
        loop {
            match NAME_BYTE[*bytes.get(end)? as usize] {
                NAME => {}
                COLON => local_from = end + 1,
                _ => break,
            }
            end += 1;
        }
        if end == open + 1 || bytes[end] != b'>' {
            return None;
        }
        let before = self.pos;
        self.pos = end + 1;
        match self.simple_value(&self.xml[open + 1..end]) {
            Some(value) => Some((&self.xml[local_from..end], value)),
            None => {
                self.pos = before;
                None
            }
        }
    }

    /// The shape nearly every WeCom field has — `<![CDATA[value]]></Name>` or `text</Name>` with
    /// no references — read in one step and borrowed. Anything else (nested elements, several
    /// pieces, references, whitespace in the end tag) returns `None` with nothing consumed, and
    /// the general reader takes over.
    fn simple_value(&mut self, name: &str) -> Option<&'a str> {
        let rest = self.rest();
        let bytes = rest.as_bytes();
        let (value, after) = if bytes.starts_with(b"<![CDATA[") {
            let end = find_str(&rest[CDATA_OPEN.len()..], "]]>")? + CDATA_OPEN.len();
            (&rest[CDATA_OPEN.len()..end], end + 3)
        } else {
            let end = memchr::memchr(b'<', bytes)?;
            let text = &bytes[..end];
            if memchr::memchr2(b'&', b'\r', text).is_some() {
                return None;
            }
            (&rest[..end], end)
        };
        let close = &bytes[after..];
        let name = name.as_bytes();
        let matches = close.len() > name.len() + 2
            && close[0] == b'<'
            && close[1] == b'/'
            && &close[2..2 + name.len()] == name
            && close[2 + name.len()] == b'>';
        if !matches {
            return None;
        }
        self.pos += after + name.len() + 3;
        Some(value)
    }
}

const CDATA_OPEN: &str = "<![CDATA[";

const NAME: u8 = 0;
const NAME_END: u8 = 1;
const NOT_IN_NAME: u8 = 2;
/// Part of a name, and where its prefix ends.
const COLON: u8 = 3;

/// What each byte means while reading an element name: part of it, the end of it (whitespace,
/// `>`, `/`), or a byte no name may hold.
static NAME_BYTE: [u8; 256] = {
    let mut table = [NAME; 256];
    let mut ends: &[u8] = b" \t\r\n>/";
    while let [b, more @ ..] = ends {
        table[*b as usize] = NAME_END;
        ends = more;
    }
    table[b':' as usize] = COLON;
    let mut invalid: &[u8] = b"<&\"'=";
    while let [b, more @ ..] = invalid {
        table[*b as usize] = NOT_IN_NAME;
        invalid = more;
    }
    table
};

/// Where `needle` (ASCII) first occurs in `hay`: a memchr for its first byte, then a compare —
/// much faster than a general substring search for the short markers of XML (`]]>`, `-->`, `?>`).
fn find_str(hay: &str, needle: &str) -> Option<usize> {
    let needle = needle.as_bytes();
    let (&first, tail) = needle.split_first()?;
    let hay = hay.as_bytes();
    let mut from = 0;
    while let Some(i) = memchr::memchr(first, &hay[from..]) {
        let at = from + i;
        if hay[at + 1..].starts_with(tail) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Decodes character data: entity and character references resolved, line ends normalized to
/// `\n` as XML 1.0 requires. Every piece goes to `emit`.
fn resolve_text(text: &str, mut emit: impl FnMut(&str)) -> Result<(), XmlError> {
    let mut rest = text;
    while let Some(at) = memchr::memchr2(b'&', b'\r', rest.as_bytes()) {
        emit(&rest[..at]);
        if rest[at..].starts_with('\r') {
            emit("\n");
            rest = &rest[at + 1..];
            rest = rest.strip_prefix('\n').unwrap_or(rest);
            continue;
        }
        let after = &rest[at + 1..];
        let end = after
            .find(';')
            .filter(|end| *end <= 32)
            .ok_or_else(|| malformed("unterminated entity reference"))?;
        emit(&resolve_reference(&after[..end])?);
        rest = &after[end + 1..];
    }
    emit(rest);
    Ok(())
}

pub(super) fn append<'a>(value: &mut Cow<'a, str>, more: Cow<'a, str>) {
    if value.is_empty() {
        *value = more;
    } else {
        value.to_mut().push_str(&more);
    }
}

pub(super) fn resolve_reference(name: &str) -> Result<Cow<'static, str>, XmlError> {
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
