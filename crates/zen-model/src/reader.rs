//! Splitting raw input into JSON documents and items, with partial success.
//!
//! Input is one JSON value, several concatenated values (NDJSON), or YAML converted to those. A
//! document is unwrapped into items when it is a top-level array or a Kubernetes list (`kind`
//! ending in `List` with `items`). Items are parsed into borrowed, typed structs; the slow,
//! path-tracking parser runs only when the fast one fails, to say where.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{NormalizeError, Normalized};
use crate::formats::Format;
use crate::{BadDetails, Context, Details, Normalizer};

/// The text of one JSON value of the input (not yet validated when it is the whole input: the
/// first typed parse validates it), with the path that leads to it.
#[derive(Debug, Clone)]
pub(crate) struct Doc<'a> {
    pub(crate) text: &'a str,
    pub(crate) path: String,
}

impl<'a> Doc<'a> {
    pub(crate) fn child(&self, raw: &'a RawValue, segment: std::fmt::Arguments<'_>) -> Doc<'a> {
        Doc {
            text: raw.get(),
            path: format!("{}{}", self.path, segment),
        }
    }

    /// The first byte of the value: `{`, `[`, `"`, a digit, `t`, `f` or `n`.
    pub(crate) fn lead(&self) -> u8 {
        self.text.as_bytes().first().copied().unwrap_or(b' ')
    }
}

/// What the format modules need while reading: the configuration, the context, and where to put
/// what they find.
pub(crate) struct Reader<'c> {
    pub(crate) format: Format,
    pub(crate) normalizer: &'c Normalizer,
    pub(crate) ctx: &'c Context,
    pub(crate) out: Normalized,
}

impl Reader<'_> {
    pub(crate) fn error(&mut self, at: &str, problem: impl Into<String>) {
        let e = NormalizeError::new(self.format, at, problem);
        self.out.push_error(e);
    }

    /// `value` as an item's details, or `None` with the error recorded at `at` when it nests
    /// too deep.
    pub(crate) fn details<T: serde::Serialize + ?Sized>(
        &mut self,
        at: &str,
        value: &T,
    ) -> Option<Details> {
        Details::of(value)
            .inspect_err(|e| self.error(at, e.to_string()))
            .ok()
    }

    /// Parses `doc` as a `T`, or records where and why it is not one.
    pub(crate) fn parse<'a, T: Deserialize<'a>>(&mut self, doc: &Doc<'a>) -> Option<T> {
        match parse(self.format, doc) {
            Ok(v) => Some(v),
            Err(e) => {
                self.out.push_error(e);
                None
            }
        }
    }

    /// Calls `f` on each item of `doc`: its elements when it is an array (or, with `lists`, a
    /// Kubernetes list), else `doc` itself. Anything but an object item is an error.
    pub(crate) fn each_item<'a>(
        &mut self,
        doc: Doc<'a>,
        lists: Lists,
        mut f: impl FnMut(&mut Self, Doc<'a>),
    ) {
        let (items, field) = match doc.lead() {
            b'[' => match self.parse::<Vec<&'a RawValue>>(&doc) {
                Some(items) => (items, ""),
                None => return,
            },
            b'{' if lists == Lists::No => return f(self, doc),
            b'{' => match list_items(self.format, &doc) {
                Ok(Some(items)) => (items, ".items"),
                Ok(None) => return f(self, doc),
                Err(e) => return self.out.push_error(e),
            },
            _ => return self.expected_object(&doc),
        };
        for (i, raw) in items.into_iter().enumerate() {
            let item = doc.child(raw, format_args!("{field}[{i}]"));
            if item.lead() == b'{' {
                f(self, item);
            } else {
                self.expected_object(&item);
            }
        }
    }

    pub(crate) fn expected_object(&mut self, doc: &Doc<'_>) {
        let found = describe(doc.text);
        self.error(&doc.path, format!("expected an object, found {found}"));
    }
}

/// Whether a document may be a Kubernetes list (which costs a look at its `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lists {
    Yes,
    /// The format's own objects are never lists (Falco alerts).
    No,
}

/// The items of a Kubernetes list document, or `None` when it is not one.
fn list_items<'a>(
    format: Format,
    doc: &Doc<'a>,
) -> Result<Option<Vec<&'a RawValue>>, NormalizeError> {
    #[derive(Deserialize)]
    struct ListPeek<'a> {
        #[serde(borrow, default)]
        kind: Option<&'a RawValue>,
        #[serde(borrow, default)]
        items: Option<&'a RawValue>,
    }
    let peek: ListPeek<'a> = parse(format, doc)?;
    let is_list = peek
        .kind
        .and_then(|k| serde_json::from_str::<Cow<'_, str>>(k.get()).ok())
        .is_some_and(|k| k.ends_with("List"));
    match (is_list, peek.items) {
        (true, Some(items)) => {
            let items_doc = doc.child(items, format_args!(".items"));
            parse(format, &items_doc).map(Some)
        }
        (true, None) => Err(NormalizeError::new(
            format,
            &doc.path,
            "expected `items` in a Kubernetes list, found none",
        )),
        (false, _) => Ok(None),
    }
}

/// Parses a document into `T`; on failure, parses again tracking the path to say where.
pub(crate) fn parse<'a, T: Deserialize<'a>>(
    format: Format,
    doc: &Doc<'a>,
) -> Result<T, NormalizeError> {
    match serde_json::from_str(doc.text) {
        Ok(v) => Ok(v),
        Err(first) => {
            let de = &mut serde_json::Deserializer::from_str(doc.text);
            let (path, err) = match serde_path_to_error::deserialize::<_, T>(de) {
                Ok(_) => (String::new(), first),
                Err(e) => (e.path().to_string(), e.into_inner()),
            };
            let at = match path.as_str() {
                "" | "." => doc.path.clone(),
                p if p.starts_with('[') => format!("{}{p}", doc.path),
                p => format!("{}.{p}", doc.path),
            };
            Err(NormalizeError::new(
                format,
                shorten(at),
                problem_in(doc.text, &err),
            ))
        }
    }
}

/// Paths into deeply nested values are cut short: the start says where.
fn shorten(mut path: String) -> String {
    const MAX: usize = 120;
    if path.len() > MAX {
        let mut end = MAX;
        while !path.is_char_boundary(end) {
            end -= 1;
        }
        path.truncate(end);
        path.push('…');
    }
    path
}

/// [`problem_of`], saying what serde_json's words for a lone UTF-16 surrogate escape
/// (`"\ud800"` without its pair) do not: it reads the escape before the error in `text`.
fn problem_in(text: &str, err: &serde_json::Error) -> String {
    let problem = problem_of(err);
    if !matches!(
        problem.as_str(),
        "unexpected end of hex escape" | "lone leading surrogate in hex escape"
    ) {
        return problem;
    }
    let line = text
        .split('\n')
        .nth(err.line().saturating_sub(1))
        .unwrap_or("");
    let before = line.get(..err.column().min(line.len())).unwrap_or(line);
    let escape = before
        .rmatch_indices("\\u")
        .filter_map(|(i, _)| before.get(i + 2..i + 6))
        .find(|hex| u16::from_str_radix(hex, 16).is_ok_and(|u| (0xD800..0xE000).contains(&u)));
    match escape {
        Some(hex) => BadDetails::LoneSurrogate(hex.to_owned()).to_string(),
        None => problem,
    }
}

/// serde_json's message without its ` at line L column C` suffix, which would point into the
/// item rather than the input.
fn problem_of(err: &serde_json::Error) -> String {
    let text = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    match text.strip_suffix(&suffix).unwrap_or(&text) {
        "recursion limit exceeded" => BadDetails::TooDeep.to_string(),
        t => t.to_owned(),
    }
}

/// Names the JSON type of a value for "found …" messages.
pub(crate) fn describe(text: &str) -> String {
    let kind = match text.as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    };
    let shown: String = text.chars().take(40).collect();
    if shown.len() < text.len() {
        format!("{kind} `{shown}…`")
    } else {
        format!("{kind} `{shown}`")
    }
}

/// Splits JSON input into documents. Lines that fail to parse in NDJSON input are recorded and
/// skipped; a syntax error inside a multi-line document ends the input there. Fails only when no
/// document at all could be read. Linear in the input, however many documents or errors.
pub(crate) fn documents(
    format: Format,
    input: &[u8],
) -> Result<(Vec<Doc<'_>>, Normalized), NormalizeError> {
    let mut lines = Lines::default();
    let mut found: Vec<(usize, &RawValue)> = Vec::new();
    let mut errors = Normalized::default();
    let mut one_per_line = true;
    let mut offset = 0;
    'input: while offset < input.len() {
        let rest = &input[offset..];
        // serde_json counts lines and columns from `offset`.
        let (base_line, base_col) = lines.at(input, offset);
        let mut stream = serde_json::Deserializer::from_slice(rest).into_iter::<&RawValue>();
        loop {
            let start = offset + skip_whitespace(rest, stream.byte_offset());
            let start_line = lines.at(input, start).0;
            match stream.next() {
                None => break 'input,
                Some(Ok(raw)) => {
                    one_per_line &= !raw.get().contains('\n');
                    found.push((start_line, raw));
                }
                Some(Err(e)) => {
                    let line = base_line + e.line() - 1;
                    let column = if e.line() == 1 {
                        base_col + e.column() - 1
                    } else {
                        e.column()
                    };
                    let next_line = input[start..]
                        .iter()
                        .position(|&b| b == b'\n')
                        .map(|n| start + n + 1);
                    // NDJSON: one document a line. Then a bad line costs only itself, and is
                    // reported at its own line even when the parser ran on into the next.
                    let next_opens =
                        next_line.is_some_and(|n| matches!(input.get(n), Some(b'{' | b'[')));
                    let ndjson = one_per_line && (!found.is_empty() || next_opens);
                    let error = if ndjson && line != start_line {
                        let problem = format!(
                            "expected one JSON document on this line, found an unfinished one ({})",
                            problem_of(&e)
                        );
                        NormalizeError::new(format, format!("line {start_line}"), problem)
                    } else {
                        NormalizeError::new(
                            format,
                            format!("line {line}, column {column}"),
                            problem_of(&e),
                        )
                    };
                    errors.push_error(error);
                    match next_line {
                        Some(n) if ndjson => {
                            offset = n;
                            continue 'input;
                        }
                        _ => break 'input,
                    }
                }
            }
        }
    }
    if found.is_empty() {
        return Err(errors.errors.into_iter().next().unwrap_or_else(|| {
            NormalizeError::new(
                format,
                "line 1, column 1",
                "expected a JSON value, found end of input",
            )
        }));
    }
    let several = found.len() > 1 || errors.error_count() > 0;
    let docs = found
        .into_iter()
        .map(|(line, raw)| Doc {
            text: raw.get(),
            path: if several {
                format!("line {line}: $")
            } else {
                "$".to_owned()
            },
        })
        .collect();
    Ok((docs, errors))
}

fn skip_whitespace(bytes: &[u8], from: usize) -> usize {
    from + bytes[from.min(bytes.len())..]
        .iter()
        .take_while(|b| b.is_ascii_whitespace())
        .count()
}

/// 1-based line and column of byte offsets, asked for in increasing order: counts each byte once.
#[derive(Debug)]
struct Lines {
    offset: usize,
    line: usize,
    line_start: usize,
}

impl Default for Lines {
    fn default() -> Self {
        Lines {
            offset: 0,
            line: 1,
            line_start: 0,
        }
    }
}

impl Lines {
    fn at(&mut self, input: &[u8], offset: usize) -> (usize, usize) {
        let offset = offset.min(input.len()).max(self.offset);
        for (i, &b) in input[self.offset..offset].iter().enumerate() {
            if b == b'\n' {
                self.line += 1;
                self.line_start = self.offset + i + 1;
            }
        }
        self.offset = offset;
        (self.line, offset - self.line_start + 1)
    }
}

/// YAML converted to newline-separated JSON, one line a document, and the YAML line each of
/// those documents starts at.
pub(crate) struct YamlAsJson {
    pub(crate) json: Vec<u8>,
    /// `starts[n]`: the line of the input where the document on JSON line `n + 1` starts;
    /// empty when the documents could not be told apart by their `---` lines.
    pub(crate) starts: Vec<usize>,
}

impl YamlAsJson {
    /// `at` as it names the YAML input: `line N` of the JSON (document N) becomes the line
    /// where that document starts.
    pub(crate) fn place(&self, at: &str) -> String {
        let Some(rest) = at.strip_prefix("line ") else {
            return at.to_owned();
        };
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let line = rest[..digits].parse::<usize>().ok();
        match line.and_then(|n| self.starts.get(n.checked_sub(1)?)) {
            Some(start) => format!("line {start}{}", &rest[digits..]),
            None => at.to_owned(),
        }
    }
}

/// Converts YAML (one or several `---` documents) into newline-separated JSON.
pub(crate) fn yaml_to_json(format: Format, input: &[u8]) -> Result<YamlAsJson, NormalizeError> {
    let mut out = Vec::with_capacity(input.len());
    let mut kept = Vec::new();
    let mut documents = 0;
    for doc in serde_yaml_ng::Deserializer::from_slice(input) {
        let value = serde_json::Value::deserialize(doc).map_err(|e| {
            let at = e.location().map_or_else(
                || "YAML".to_owned(),
                |l| format!("line {}, column {}", l.line(), l.column()),
            );
            NormalizeError::new(format, at, format!("invalid YAML: {e}"))
        })?;
        documents += 1;
        if value.is_null() {
            continue;
        }
        kept.push(documents - 1);
        // Serialising a Value into a Vec cannot fail.
        serde_json::to_writer(&mut out, &value)
            .map_err(|e| NormalizeError::new(format, "YAML", e.to_string()))?;
        out.push(b'\n');
    }
    let starts = document_starts(input);
    let starts = if starts.len() == documents {
        kept.into_iter().map(|i| starts[i]).collect()
    } else {
        Vec::new()
    };
    Ok(YamlAsJson { json: out, starts })
}

/// The line each YAML document starts at: its first line that is neither blank, a comment nor a
/// directive, or its `---` line when content follows on it. A stream that opens with `---`
/// has no document before it.
fn document_starts(input: &[u8]) -> Vec<usize> {
    let mut starts: Vec<Option<usize>> = vec![None];
    let mut opened = false;
    for (i, line) in input.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let marker =
            line.starts_with(b"---") && line.get(3).is_none_or(|b| b.is_ascii_whitespace());
        if marker {
            if starts.len() > 1 || opened {
                starts.push(None);
            }
            opened = true;
            let inline = line[3..].trim_ascii();
            if !inline.is_empty()
                && !inline.starts_with(b"#")
                && let Some(last) = starts.last_mut()
            {
                *last = Some(i + 1);
            }
            continue;
        }
        let content = line.trim_ascii();
        let blank = content.is_empty() || content.starts_with(b"#") || line.starts_with(b"%");
        if !blank {
            opened = true;
            if let Some(last @ None) = starts.last_mut() {
                *last = Some(i + 1);
            }
        }
    }
    starts.into_iter().map(|s| s.unwrap_or(0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(input: &str) -> (Vec<String>, Vec<String>) {
        match documents(Format::Generic, input.as_bytes()) {
            Ok((docs, errors)) => (
                docs.iter()
                    .map(|d| format!("{} {}", d.path, d.text))
                    .collect(),
                errors.errors.iter().map(ToString::to_string).collect(),
            ),
            Err(e) => (vec![], vec![format!("whole: {e}")]),
        }
    }

    #[test]
    fn one_document_has_the_root_path() {
        assert_eq!(
            docs(" {\"a\": 1} \n"),
            (vec!["$ {\"a\": 1}".to_owned()], vec![])
        );
    }

    #[test]
    fn ndjson_skips_a_bad_line_and_keeps_the_rest() {
        // The second line is cut short: the parser runs on into the third, but the error is
        // the second line's and the third is read on its own.
        let (good, bad) = docs("{\"a\":1}\n{\"b\":\n{\"c\":3}\n");
        assert_eq!(good, vec!["line 1: $ {\"a\":1}", "line 3: $ {\"c\":3}"]);
        assert_eq!(
            bad,
            vec![
                "generic: line 2: expected one JSON document on this line, found an unfinished one (EOF while parsing an object)"
            ]
        );

        let (good, bad) = docs("{\"a\":1}\n{\"b\" 2}\n{\"c\":3}\n");
        assert_eq!(good, vec!["line 1: $ {\"a\":1}", "line 3: $ {\"c\":3}"]);
        assert_eq!(bad, vec!["generic: line 2, column 6: expected `:`"]);
    }

    #[test]
    fn every_bad_line_is_reported_at_its_own_line() {
        let input = "{\"a\":1}\n{bad\n\n{\"b\":2} {\"c\":3}\n[1,\n{\"d\":4}\n{\"e\" 5}\n";
        let (good, bad) = docs(input);
        assert_eq!(
            good,
            vec![
                "line 1: $ {\"a\":1}",
                "line 4: $ {\"b\":2}",
                "line 4: $ {\"c\":3}",
                "line 6: $ {\"d\":4}"
            ]
        );
        assert_eq!(
            bad,
            vec![
                "generic: line 2, column 2: key must be a string",
                "generic: line 5: expected one JSON document on this line, found an unfinished one (expected `,` or `]`)",
                "generic: line 7, column 6: expected `:`",
            ]
        );
    }

    #[test]
    fn a_broken_pretty_printed_document_ends_the_input() {
        let (good, bad) = docs("[\n  {\"a\": 1},\n  {\"b\" 2}\n]\n{\"c\": 3}\n");
        assert!(good.is_empty(), "{good:?}");
        assert_eq!(bad, vec!["whole: generic: line 3, column 8: expected `:`"]);
        let (good, bad) = docs("{\"a\":\n 1}\n{\"b\" 2}\n{\"c\": 3}\n");
        assert_eq!(good, vec!["line 1: $ {\"a\":\n 1}"]);
        assert_eq!(bad, vec!["generic: line 3, column 6: expected `:`"]);
    }

    #[test]
    fn nothing_readable_is_a_whole_payload_error() {
        assert_eq!(
            docs("   ").1,
            vec!["whole: generic: line 1, column 1: expected a JSON value, found end of input"]
        );
        assert_eq!(
            docs("{\"a\": tru").1,
            vec!["whole: generic: line 1, column 9: EOF while parsing a value"]
        );
    }

    #[test]
    fn yaml_documents_are_placed_at_their_first_line() {
        assert_eq!(document_starts(b"a: 1\n---\nb: 2\n"), [1, 3]);
        assert_eq!(
            document_starts(b"# c\n---\n\n# d\nb: 2\n--- {c: 3}\n---\n"),
            [5, 6, 0]
        );
        let yaml = yaml_to_json(Format::Generic, b"---\na: 1\n---\n---\nb: 2\n").unwrap();
        assert_eq!(yaml.starts, [2, 5], "the empty document is skipped");
        assert_eq!(yaml.place("line 2: $.x"), "line 5: $.x");
        assert_eq!(yaml.place("$.x"), "$.x");
    }
}
