//! A small element tree over quick-xml that remembers where everything came from, so that
//! every problem in a template can be reported with its line and column.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use crate::diagnostic::Diagnostics;

/// Maps offsets in a decoded attribute value (or text) back to offsets in the file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceMap {
    /// (decoded offset, file offset) at the start of the value and after every entity.
    checkpoints: Vec<(usize, usize)>,
}

impl SourceMap {
    fn starting_at(file_offset: usize) -> Self {
        SourceMap {
            checkpoints: vec![(0, file_offset)],
        }
    }

    fn checkpoint(&mut self, decoded: usize, file: usize) {
        self.checkpoints.push((decoded, file));
    }

    /// The file offset of byte `decoded` of the decoded value.
    pub fn file_offset(&self, decoded: usize) -> usize {
        let i = self.checkpoints.partition_point(|&(d, _)| d <= decoded);
        match i.checked_sub(1).and_then(|i| self.checkpoints.get(i)) {
            Some(&(d, f)) => f + (decoded - d),
            None => self.checkpoints.first().map_or(0, |&(_, f)| f),
        }
    }
}

/// A decoded piece of text from the file (an attribute value or element text) with its origin.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Located {
    /// The decoded text (entities resolved).
    pub text: String,
    /// Where each part of `text` is in the file.
    pub map: SourceMap,
}

impl Located {
    /// The file offset of byte `decoded` of the text.
    pub fn file_offset(&self, decoded: usize) -> usize {
        self.map.file_offset(decoded)
    }

    /// The file offset where the text starts.
    pub fn start(&self) -> usize {
        self.map.file_offset(0)
    }
}

/// One attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribute {
    /// Its name.
    pub name: String,
    /// File offset of the name.
    pub name_offset: usize,
    /// Its decoded value.
    pub value: Located,
}

/// One element with its attributes, children and text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Element {
    /// Tag name.
    pub name: String,
    /// File offset of the `<`.
    pub offset: usize,
    /// Attributes in document order.
    pub attributes: Vec<Attribute>,
    /// Child elements in document order.
    pub children: Vec<Element>,
    /// All text and CDATA directly inside the element, concatenated.
    pub text: Located,
}

impl Element {
    /// The attribute named `name`, if present.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// The decoded value of attribute `name`, if present.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.attribute(name).map(|a| a.value.text.as_str())
    }

    /// Child elements named `name`.
    pub fn children_named<'e>(&'e self, name: &'e str) -> impl Iterator<Item = &'e Element> + 'e {
        self.children.iter().filter(move |c| c.name == name)
    }
}

/// Parses `source` into its root element. XML errors become diagnostics; `None` when the
/// document is too broken to give a tree.
pub fn parse(source: &str, diagnostics: &mut Diagnostics<'_>) -> Option<Element> {
    let mut reader = Reader::from_str(source);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.allow_dangling_amp = true;
    config.check_comments = false;

    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let event_start = to_usize(reader.buffer_position());
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(err) => {
                let at = to_usize(reader.error_position());
                let message = describe_xml_error(&err, &stack);
                diagnostics.error(at, message);
                return None;
            }
        };
        match event {
            Event::Start(start) => {
                let element = open_element(source, &start, event_start, diagnostics);
                if root.is_some() && stack.is_empty() {
                    diagnostics.error(
                        event_start,
                        "a template has one root element; this one comes after it",
                    );
                }
                stack.push(element);
            }
            Event::Empty(start) => {
                let element = open_element(source, &start, event_start, diagnostics);
                close_element(element, &mut stack, &mut root, diagnostics, event_start);
            }
            Event::End(_) => {
                if let Some(element) = stack.pop() {
                    close_element(element, &mut stack, &mut root, diagnostics, event_start);
                }
            }
            Event::Text(text) => {
                let raw = slice_of(source, text.as_ref());
                if let Some(top) = stack.last_mut() {
                    let offset = raw.map_or(event_start, |(o, _)| o);
                    let raw_text = raw.map_or("", |(_, s)| s);
                    append_decoded(&mut top.text, raw_text, offset, false, diagnostics);
                } else if let Some((offset, s)) = raw
                    && let Some(i) = s.find(|c: char| !c.is_whitespace())
                {
                    diagnostics.error(offset + i, "text outside the root element");
                }
            }
            Event::GeneralRef(reference) => {
                let name: String = AsRef::<str>::as_ref(&reference).to_string();
                if let Some(top) = stack.last_mut() {
                    match resolve_entity(&name) {
                        Some(c) => {
                            let decoded = top.text.text.len();
                            if top.text.text.is_empty() && top.text.map.checkpoints.is_empty() {
                                top.text.map = SourceMap::starting_at(event_start);
                            }
                            top.text.map.checkpoint(decoded, event_start);
                            top.text.text.push(c);
                            let after = event_start + name.len() + 2;
                            top.text.map.checkpoint(top.text.text.len(), after);
                        }
                        None => diagnostics.error(
                            event_start,
                            format!("unknown entity '&{name};' (XML knows &amp; &lt; &gt; &quot; &apos; and &#…; character references)"),
                        ),
                    }
                }
            }
            Event::CData(cdata) => {
                if let Some(top) = stack.last_mut() {
                    let offset = event_start + "<![CDATA[".len();
                    let s: String = AsRef::<str>::as_ref(&cdata).to_string();
                    if top.text.map.checkpoints.is_empty() {
                        top.text.map = SourceMap::starting_at(offset);
                    }
                    top.text.map.checkpoint(top.text.text.len(), offset);
                    top.text.text.push_str(&s);
                }
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        diagnostics.error(
            open.offset,
            format!("element <{}> is never closed", open.name),
        );
        return None;
    }
    if root.is_none() {
        diagnostics.error(
            source.len(),
            "the file has no XML element (an empty or non-XML file?)",
        );
    }
    root
}

fn close_element(
    element: Element,
    stack: &mut [Element],
    root: &mut Option<Element>,
    diagnostics: &mut Diagnostics<'_>,
    at: usize,
) {
    if let Some(parent) = stack.last_mut() {
        parent.children.push(element);
    } else if root.is_none() {
        *root = Some(element);
    } else {
        diagnostics.error(
            at,
            "a template has one root element; this one comes after it",
        );
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// The offset and text of a slice borrowed from `source`, found by address.
fn slice_of<'s>(source: &'s str, part: &str) -> Option<(usize, &'s str)> {
    let base = source.as_ptr() as usize;
    let start = (part.as_ptr() as usize).checked_sub(base)?;
    let end = start.checked_add(part.len())?;
    source.get(start..end).map(|s| (start, s))
}

fn open_element(
    source: &str,
    start: &BytesStart<'_>,
    offset: usize,
    diagnostics: &mut Diagnostics<'_>,
) -> Element {
    let name = start.name().0.to_string();
    let mut element = Element {
        name,
        offset,
        ..Element::default()
    };
    for attribute in start.attributes().with_checks(true) {
        match attribute {
            Ok(attribute) => {
                let name = attribute.key.0.to_string();
                let key_offset = slice_of(source, attribute.key.0).map_or(offset, |(o, _)| o);
                let (raw_offset, raw) = match &attribute.value {
                    std::borrow::Cow::Borrowed(b) => {
                        slice_of(source, b).unwrap_or((key_offset, ""))
                    }
                    std::borrow::Cow::Owned(_) => (key_offset, ""),
                };
                let mut value = Located::default();
                append_decoded(&mut value, raw, raw_offset, true, diagnostics);
                if element.attribute(&name).is_some() {
                    diagnostics.error(key_offset, format!("attribute {name} is given twice"));
                    continue;
                }
                element.attributes.push(Attribute {
                    name,
                    name_offset: key_offset,
                    value,
                });
            }
            Err(err) => {
                let position = attr_error_position(&err).map_or(offset, |p| offset + 1 + p);
                let message = match err {
                    quick_xml::events::attributes::AttrError::Duplicated(..) => {
                        let name: String = source
                            .get(position..)
                            .unwrap_or("")
                            .chars()
                            .take_while(|c| !c.is_whitespace() && *c != '=')
                            .collect();
                        format!(
                            "attribute {name} is given twice (XML allows each attribute once per element)"
                        )
                    }
                    other => format!("malformed attribute: {other}"),
                };
                diagnostics.error(position, message);
                break;
            }
        }
    }
    element
}

fn attr_error_position(err: &quick_xml::events::attributes::AttrError) -> Option<usize> {
    use quick_xml::events::attributes::AttrError;
    match *err {
        AttrError::ExpectedEq(p)
        | AttrError::ExpectedValue(p)
        | AttrError::UnquotedValue(p)
        | AttrError::ExpectedQuote(p, _)
        | AttrError::Duplicated(p, _) => Some(p),
    }
}

/// Appends the decoded form of `raw` (which starts at file offset `offset`) to `into`,
/// reporting unescaped `&` and `<`.
fn append_decoded(
    into: &mut Located,
    raw: &str,
    offset: usize,
    in_attribute: bool,
    diagnostics: &mut Diagnostics<'_>,
) {
    if into.map.checkpoints.is_empty() {
        into.map = SourceMap::starting_at(offset);
    }
    into.map.checkpoint(into.text.len(), offset);
    let bytes = raw.as_bytes();
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'&' => {
                into.text.push_str(&raw[copied..i]);
                let rest = &raw[i + 1..];
                let name_len = rest
                    .find(|c: char| {
                        !(c.is_alphanumeric() || c == '#' || c == '_' || c == '-' || c == '.')
                    })
                    .unwrap_or(rest.len());
                let terminated = rest.as_bytes().get(name_len) == Some(&b';');
                let resolved = if terminated {
                    resolve_entity(&rest[..name_len])
                } else {
                    None
                };
                match resolved {
                    Some(c) => {
                        into.text.push(c);
                        i += name_len + 2;
                    }
                    None => {
                        let what = if in_attribute {
                            "attribute value"
                        } else {
                            "text"
                        };
                        if terminated {
                            diagnostics.error(
                                offset + i,
                                format!(
                                    "unknown entity '&{};' in {what} (XML knows &amp; &lt; &gt; &quot; &apos; and &#…; character references)",
                                    &rest[..name_len]
                                ),
                            );
                        } else {
                            diagnostics.error(
                                offset + i,
                                format!("unescaped '&' in {what}: write it as &amp;"),
                            );
                        }
                        into.text.push('&');
                        i += 1;
                    }
                }
                copied = i;
                into.map.checkpoint(into.text.len(), offset + i);
            }
            b'<' if in_attribute => {
                diagnostics.error(
                    offset + i,
                    "unescaped '<' in attribute value: write it as &lt;",
                );
                i += 1;
            }
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                // XML line-end normalisation: CR LF becomes LF.
                into.text.push_str(&raw[copied..i]);
                i += 1;
                copied = i;
                into.map.checkpoint(into.text.len(), offset + i);
            }
            _ => i += 1,
        }
    }
    into.text.push_str(&raw[copied..]);
}

/// The character an entity or character reference stands for.
fn resolve_entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            let number = name.strip_prefix('#')?;
            let code = if let Some(hex) = number
                .strip_prefix('x')
                .or_else(|| number.strip_prefix('X'))
            {
                u32::from_str_radix(hex, 16).ok()?
            } else {
                number.parse::<u32>().ok()?
            };
            // XML 1.1 allows every character but NUL as a reference.
            if code == 0 {
                return None;
            }
            char::from_u32(code)
        }
    }
}

fn describe_xml_error(err: &quick_xml::Error, stack: &[Element]) -> String {
    use quick_xml::errors::{Error, IllFormedError, SyntaxError};
    match err {
        Error::Syntax(SyntaxError::UnclosedTag) => "a tag is not closed (missing '>')".to_string(),
        Error::Syntax(SyntaxError::UnclosedDoubleQuotedAttributeValue)
        | Error::Syntax(SyntaxError::UnclosedSingleQuotedAttributeValue) => {
            "an attribute value is not closed (missing quote)".to_string()
        }
        Error::Syntax(SyntaxError::UnclosedComment) => {
            "a comment is not closed (missing '-->')".to_string()
        }
        Error::Syntax(SyntaxError::UnclosedCData) => {
            "a CDATA section is not closed (missing ']]>')".to_string()
        }
        Error::Syntax(other) => format!("malformed XML: {other}"),
        Error::IllFormed(IllFormedError::MismatchedEndTag { expected, found }) => {
            format!("closing tag </{found}> does not match the open <{expected}>")
        }
        Error::IllFormed(IllFormedError::UnmatchedEndTag(name)) => {
            format!("closing tag </{name}> has no matching open tag")
        }
        Error::IllFormed(IllFormedError::MissingEndTag(name)) => match stack.last() {
            Some(open) => format!("element <{}> is never closed", open.name),
            None => format!("element <{name}> is never closed"),
        },
        Error::IllFormed(other) => format!("malformed XML: {other}"),
        other => format!("malformed XML: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(src: &str) -> (Option<Element>, Vec<crate::diagnostic::Diagnostic>) {
        let mut d = Diagnostics::new(src);
        let root = parse(src, &mut d);
        (root, d.into_sorted())
    }

    #[test]
    fn decodes_attributes_and_maps_offsets_back() {
        let src = r#"<a x="{&quot;k&quot;:1}" y='z'><b/>hi &amp; bye</a>"#;
        let (root, diags) = tree(src);
        assert!(diags.is_empty(), "{diags:?}");
        let root = root.unwrap();
        let x = &root.attribute("x").unwrap().value;
        assert_eq!(x.text, r#"{"k":1}"#);
        // the 'k' is after '{&quot;' in the file
        let k = x.text.find('k').unwrap();
        assert_eq!(&src[x.file_offset(k)..x.file_offset(k) + 1], "k");
        assert_eq!(root.children[0].name, "b");
        assert_eq!(root.text.text, "hi & bye");
    }

    #[test]
    fn reports_unescaped_ampersand_with_its_place() {
        let src = "<a\n  u=\"https://x?a=1&b=2\"/>";
        let (root, diags) = tree(src);
        assert!(root.is_some());
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].position.line, 2);
        assert_eq!(diags[0].position.column, 19);
        assert!(
            diags[0].message.contains("unescaped '&'"),
            "{}",
            diags[0].message
        );
        // the value still decodes, keeping the '&'
        assert_eq!(root.unwrap().value("u"), Some("https://x?a=1&b=2"));
    }

    #[test]
    fn reports_unclosed_elements_at_their_start() {
        let (_, diags) = tree("<a>\n  <b>\n</a>");
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert!(diags[0].message.contains("</a>"), "{}", diags[0].message);
        let (_, diags) = tree("<a>\n  <b>");
        assert!(
            diags[0].message.contains("never closed"),
            "{}",
            diags[0].message
        );
    }

    #[test]
    fn cdata_and_character_references() {
        let (root, diags) = tree("<a><![CDATA[{\"x\":\"<&>\"}]]>&#x41;&#66;</a>");
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(root.unwrap().text.text, "{\"x\":\"<&>\"}AB");
    }
}
