//! Reading the spanned TOML tree of a contract: typed access to values that
//! records a diagnostic (with the offending span) instead of failing, so one
//! pass reports every structural problem in the file.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diagnostic::{Diagnostic, DiagnosticKind};
use crate::source::SourceFile;

/// A TOML value with the byte range it was written at.
pub(crate) type Node<'i> = Spanned<DeValue<'i>>;

/// A value together with the span it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct At<T> {
    pub value: T,
    pub span: Range<usize>,
}

/// A TOML value converted to JSON, with the span of every value and key in
/// it, addressed by JSON pointer (`""` is the root, `/properties/n` a member).
#[derive(Debug, Clone)]
pub(crate) struct JsonDoc {
    pub value: serde_json::Value,
    pub spans: BTreeMap<String, NodeSpan>,
}

/// Where a JSON value and, if it is an object member, its key were written.
#[derive(Debug, Clone)]
pub(crate) struct NodeSpan {
    pub key: Option<Range<usize>>,
    pub value: Range<usize>,
}

impl JsonDoc {
    /// The span of the value at `pointer`, or of its nearest ancestor that
    /// was written in the file.
    pub fn value_span(&self, pointer: &str) -> Range<usize> {
        self.nearest(pointer).value.clone()
    }

    /// The span of the key that introduced `pointer`, falling back to the
    /// value's span when it has no key (array elements, the root).
    pub fn key_span(&self, pointer: &str) -> Range<usize> {
        let node = self.nearest(pointer);
        node.key.clone().unwrap_or_else(|| node.value.clone())
    }

    fn nearest(&self, pointer: &str) -> &NodeSpan {
        let mut p = pointer;
        loop {
            if let Some(span) = self.spans.get(p) {
                return span;
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => {
                    return self
                        .spans
                        .get("")
                        .unwrap_or_else(|| unreachable!("the root span is always recorded"));
                }
            }
        }
    }
}

/// Escapes one JSON pointer segment (RFC 6901).
pub(crate) fn pointer_segment(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Collects diagnostics while the contract's tree is read.
pub(crate) struct Reader<'f> {
    file: &'f Arc<SourceFile>,
    diagnostics: Vec<Diagnostic>,
}

impl<'f> Reader<'f> {
    pub fn new(file: &'f Arc<SourceFile>) -> Self {
        Reader {
            file,
            diagnostics: Vec::new(),
        }
    }

    pub fn file(&self) -> &'f Arc<SourceFile> {
        self.file
    }

    /// A new error diagnostic for this file, not yet recorded.
    pub fn error(&self, kind: DiagnosticKind, message: impl Into<String>) -> Diagnostic {
        Diagnostic::error(self.file, kind, message)
    }

    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    pub fn into_diagnostics(self) -> Vec<Diagnostic> {
        self.diagnostics
    }

    fn wrong_type(&mut self, node: &Node<'_>, what: &str, expected: &str) {
        let found = node.get_ref().type_str();
        let d = self
            .error(
                DiagnosticKind::WrongType,
                format!("{what} must be {expected}, not {} {found}", article(found)),
            )
            .at(node.span())
            .label(format!("expected {expected}"));
        self.push(d);
    }

    /// The node as a table, or a wrong-type diagnostic.
    pub fn table<'t, 'i>(&mut self, node: &'t Node<'i>, what: &str) -> Option<Table<'t, 'i>> {
        match node.get_ref() {
            DeValue::Table(entries) => Some(Table {
                entries,
                span: node.span(),
            }),
            _ => {
                self.wrong_type(node, what, "a table");
                None
            }
        }
    }

    /// The node as an array, or a wrong-type diagnostic.
    pub fn array<'t, 'i>(&mut self, node: &'t Node<'i>, what: &str) -> Option<&'t [Node<'i>]> {
        match node.get_ref() {
            DeValue::Array(items) => Some(items.as_ref()),
            _ => {
                self.wrong_type(node, what, "an array");
                None
            }
        }
    }

    /// The node as a string, or a wrong-type diagnostic.
    pub fn string(&mut self, node: &Node<'_>, what: &str) -> Option<At<String>> {
        match node.get_ref() {
            DeValue::String(s) => Some(At {
                value: s.to_string(),
                span: node.span(),
            }),
            _ => {
                self.wrong_type(node, what, "a string");
                None
            }
        }
    }

    /// The node as a boolean, or a wrong-type diagnostic.
    pub fn boolean(&mut self, node: &Node<'_>, what: &str) -> Option<bool> {
        match node.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.wrong_type(node, what, "true or false");
                None
            }
        }
    }

    /// The node as a whole number in `range`, or a diagnostic.
    pub fn integer_in(
        &mut self,
        node: &Node<'_>,
        what: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<i64> {
        let DeValue::Integer(i) = node.get_ref() else {
            self.wrong_type(node, what, "an integer");
            return None;
        };
        let Some(n) = parse_integer(i.as_str(), i.radix()) else {
            let d = self
                .error(
                    DiagnosticKind::InvalidValue,
                    format!("{what} does not fit in a 64-bit integer"),
                )
                .at(node.span());
            self.push(d);
            return None;
        };
        if !range.contains(&n) {
            let d = self
                .error(
                    DiagnosticKind::InvalidValue,
                    format!(
                        "{what} must be between {} and {}, not {n}",
                        range.start(),
                        range.end()
                    ),
                )
                .at(node.span())
                .label("out of range");
            self.push(d);
            return None;
        }
        Some(n)
    }

    /// Converts any TOML value to JSON, recording the span of each part.
    /// TOML datetimes have no JSON counterpart and are refused.
    pub fn json(&mut self, node: &Node<'_>) -> Option<JsonDoc> {
        let mut spans = BTreeMap::new();
        let before = self.diagnostics.len();
        let value = self.json_value(node, String::new(), None, &mut spans);
        (self.diagnostics.len() == before).then_some(JsonDoc { value, spans })
    }

    fn json_value(
        &mut self,
        node: &Node<'_>,
        pointer: String,
        key: Option<Range<usize>>,
        spans: &mut BTreeMap<String, NodeSpan>,
    ) -> serde_json::Value {
        use serde_json::Value as J;
        let value = match node.get_ref() {
            DeValue::String(s) => J::String(s.to_string()),
            DeValue::Boolean(b) => J::Bool(*b),
            DeValue::Integer(i) => match parse_integer(i.as_str(), i.radix()) {
                Some(n) => J::from(n),
                None => {
                    let d = self
                        .error(
                            DiagnosticKind::InvalidValue,
                            "integer does not fit in 64 bits",
                        )
                        .at(node.span());
                    self.push(d);
                    J::Null
                }
            },
            DeValue::Float(f) => {
                let text = f.as_str().replace('_', "");
                match text
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                {
                    Some(n) => J::Number(n),
                    None => {
                        let d = self
                            .error(
                                DiagnosticKind::InvalidValue,
                                format!("`{text}` has no JSON counterpart"),
                            )
                            .at(node.span())
                            .hint("JSON numbers are finite: nan and inf cannot be used");
                        self.push(d);
                        J::Null
                    }
                }
            }
            DeValue::Datetime(_) => {
                let d = self
                    .error(
                        DiagnosticKind::WrongType,
                        "TOML dates and times have no JSON counterpart",
                    )
                    .at(node.span())
                    .hint("write the value as a quoted string, e.g. \"2024-05-01\"");
                self.push(d);
                J::Null
            }
            DeValue::Array(items) => J::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.json_value(item, format!("{pointer}/{i}"), None, spans))
                    .collect(),
            ),
            DeValue::Table(entries) => {
                let mut map = serde_json::Map::new();
                for (k, v) in entries.iter() {
                    let child = format!("{pointer}/{}", pointer_segment(k.get_ref()));
                    let value = self.json_value(v, child, Some(k.span()), spans);
                    map.insert(k.get_ref().to_string(), value);
                }
                J::Object(map)
            }
        };
        spans.insert(
            pointer,
            NodeSpan {
                key,
                value: node.span(),
            },
        );
        value
    }
}

/// A TOML table being read; [`Table::finish`] reports keys nobody asked for.
pub(crate) struct Table<'t, 'i> {
    entries: &'t DeTable<'i>,
    span: Range<usize>,
}

impl<'t, 'i> Table<'t, 'i> {
    /// Reads `entries`, which were written at `span`.
    pub fn new(entries: &'t DeTable<'i>, span: Range<usize>) -> Self {
        Table { entries, span }
    }

    /// The value under `key`, if present.
    pub fn get(&self, key: &str) -> Option<&'t Node<'i>> {
        self.entries.get(key)
    }

    /// The span of the table (its header, or the inline table).
    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// The value under `key`, or a missing-key diagnostic naming `within`.
    pub fn require(
        &self,
        reader: &mut Reader<'_>,
        key: &str,
        within: &str,
    ) -> Option<&'t Node<'i>> {
        let found = self.get(key);
        if found.is_none() {
            let d = reader
                .error(
                    DiagnosticKind::MissingKey,
                    format!("{within} is missing `{key}`"),
                )
                .at(self.span.clone())
                .label(format!("`{key}` required here"));
            reader.push(d);
        }
        found
    }

    /// Reports every key that is not in `known`, suggesting the closest
    /// known key for likely typos.
    pub fn finish(&self, reader: &mut Reader<'_>, within: &str, known: &[&str]) {
        for (key, _) in self.entries.iter() {
            let name = key.get_ref();
            if known.contains(&name.as_ref()) {
                continue;
            }
            let mut d = reader
                .error(
                    DiagnosticKind::UnknownKey,
                    format!("unknown key `{name}` in {within}"),
                )
                .at(key.span())
                .label("not part of the contract format");
            d = match closest(name, known) {
                Some(best) => d.hint(format!("did you mean `{best}`?")),
                None => d.hint(format!("{within} accepts: {}", known.join(", "))),
            };
            reader.push(d);
        }
    }

    /// Every entry, in key order.
    pub fn entries(
        &self,
    ) -> impl Iterator<Item = (&'t Spanned<std::borrow::Cow<'i, str>>, &'t Node<'i>)> {
        self.entries.iter()
    }
}

fn article(type_name: &str) -> &'static str {
    match type_name.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

/// Reads a TOML integer from the digits the parser kept and their radix.
fn parse_integer(digits: &str, radix: u32) -> Option<i64> {
    i64::from_str_radix(digits, radix).ok()
}

/// The known name closest to `name`, if it is close enough to be a typo.
pub(crate) fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, k)| *d <= (k.len().max(name.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_parse_in_every_toml_form() {
        let file = Arc::new(SourceFile::new(
            "c.toml",
            "a = 1_000\nb = -42\nc = 0xff\nd = 0o17\ne = 0b101\nf = 99999999999999999999\n",
        ));
        let (doc, _) = DeTable::parse_recoverable(file.text());
        let mut reader = Reader::new(&file);
        let root = doc.into_inner();
        let read = |reader: &mut Reader<'_>, k: &str| {
            root.get(k)
                .and_then(|n| reader.integer_in(n, k, i64::MIN..=i64::MAX))
        };
        assert_eq!(read(&mut reader, "a"), Some(1000));
        assert_eq!(read(&mut reader, "b"), Some(-42));
        assert_eq!(read(&mut reader, "c"), Some(255));
        assert_eq!(read(&mut reader, "d"), Some(15));
        assert_eq!(read(&mut reader, "e"), Some(5));
        assert_eq!(read(&mut reader, "f"), None);
    }

    #[test]
    fn typos_find_their_key() {
        let known = ["name", "version", "summary"];
        assert_eq!(closest("verison", &known), Some("version"));
        assert_eq!(closest("sumary", &known), Some("summary"));
        assert_eq!(closest("colour", &known), None);
    }
}
