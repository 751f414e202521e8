//! The expression language: lexer, parser and compiler into a tree that evaluates an event
//! without allocating (unless it looks into `details`, which is parsed once per event).
//!
//! ```text
//! expr       := and ("OR" and)*
//! and        := unary ("AND" unary)*
//! unary      := "NOT" unary | "(" expr ")" | test
//! test       := path ( op value | ["NOT"] "IN" list | ["NOT"] "EXISTS"
//!                    | "CONTAINS" value | "STARTS_WITH" string | "ENDS_WITH" string | "MATCHES" string )
//! op         := "=" | "==" | "!=" | ">" | ">=" | "<" | "<="
//! list       := "(" value ("," value)* ")"
//! value      := string | number | "true" | "false"
//! ```
//!
//! Keywords are case-insensitive. A missing field is unequal to everything, in no list, contains
//! nothing and does not exist.

use std::cell::OnceCell;
use std::fmt;

use regex::Regex;
use serde_json::Value;
use zen_model::{Category, Event, Severity};

use crate::FilterError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pos {
    line: usize,
    column: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Op::Eq => ord == Equal,
            Op::Ne => ord != Equal,
            Op::Gt => ord == Greater,
            Op::Ge => ord != Less,
            Op::Lt => ord == Less,
            Op::Le => ord != Greater,
        }
    }

    fn is_ordering(self) -> bool {
        !matches!(self, Op::Eq | Op::Ne)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    Comma,
    Op(Op),
    Word(String),
    Str(String),
    Num(f64),
    End,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::LParen => f.write_str("`(`"),
            Tok::RParen => f.write_str("`)`"),
            Tok::Comma => f.write_str("`,`"),
            Tok::Op(op) => write!(f, "`{}`", op_text(*op)),
            Tok::Word(w) => write!(f, "`{w}`"),
            Tok::Str(s) => write!(f, "the string {s:?}"),
            Tok::Num(n) => write!(f, "the number {n}"),
            Tok::End => f.write_str("the end of the expression"),
        }
    }
}

fn op_text(op: Op) -> &'static str {
    match op {
        Op::Eq => "=",
        Op::Ne => "!=",
        Op::Gt => ">",
        Op::Ge => ">=",
        Op::Lt => "<",
        Op::Le => "<=",
    }
}

fn error(pos: Pos, expected: impl Into<String>, found: impl fmt::Display) -> FilterError {
    FilterError::Expression {
        at: pos.to_string(),
        expected: expected.into(),
        found: found.to_string(),
    }
}

fn lex(src: &str) -> Result<Vec<(Tok, Pos)>, FilterError> {
    let mut out = Vec::new();
    let mut chars = src.char_indices().peekable();
    let (mut line, mut line_start) = (1, 0);
    while let Some(&(i, c)) = chars.peek() {
        let pos = Pos {
            line,
            column: src[line_start..i].chars().count() + 1,
        };
        if c == '\n' {
            line += 1;
            line_start = i + 1;
            chars.next();
            continue;
        }
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let tok = match c {
            '(' | '[' => {
                chars.next();
                Tok::LParen
            }
            ')' | ']' => {
                chars.next();
                Tok::RParen
            }
            ',' => {
                chars.next();
                Tok::Comma
            }
            '=' | '!' | '<' | '>' => {
                chars.next();
                let eq = chars.next_if(|&(_, c)| c == '=').is_some();
                Tok::Op(match (c, eq) {
                    ('=', _) => Op::Eq,
                    ('!', true) => Op::Ne,
                    ('<', false) => Op::Lt,
                    ('<', true) => Op::Le,
                    ('>', false) => Op::Gt,
                    ('>', true) => Op::Ge,
                    _ => return Err(error(pos, "`!=`", "`!`")),
                })
            }
            '"' | '\'' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => return Err(error(pos, format!("a closing {c}"), Tok::End)),
                        Some((_, q)) if q == c => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, 'n')) => s.push('\n'),
                            Some((_, 't')) => s.push('\t'),
                            Some((_, e)) => s.push(e),
                            None => return Err(error(pos, format!("a closing {c}"), Tok::End)),
                        },
                        Some((_, '\n')) => {
                            return Err(error(
                                pos,
                                format!("a closing {c} on the same line"),
                                "a new line",
                            ));
                        }
                        Some((_, ch)) => s.push(ch),
                    }
                }
                Tok::Str(s)
            }
            c if c.is_ascii_digit() || c == '-' || c == '.' => {
                let mut end = i;
                while let Some(&(j, d)) = chars.peek() {
                    if d.is_ascii_alphanumeric() || matches!(d, '.' | '-' | '+') {
                        end = j + d.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                let text = &src[i..end];
                match text.parse::<f64>() {
                    Ok(n) if n.is_finite() => Tok::Num(n),
                    _ => return Err(error(pos, "a number", format!("`{text}`"))),
                }
            }
            c if c.is_alphabetic() || c == '_' || c == '@' => {
                let mut end = i;
                while let Some(&(j, d)) = chars.peek() {
                    if d.is_alphanumeric() || matches!(d, '_' | '.' | '-' | '@' | '/') {
                        end = j + d.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                Tok::Word(src[i..end].to_owned())
            }
            other => {
                return Err(error(
                    pos,
                    "a field, a value, an operator or a parenthesis",
                    format!("`{other}`"),
                ));
            }
        };
        out.push((tok, pos));
    }
    let end = Pos {
        line,
        column: src[line_start..].chars().count() + 1,
    };
    out.push((Tok::End, end));
    Ok(out)
}

/// A literal value as written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lit {
    Str(String),
    Num(f64),
    Bool(bool),
}

impl fmt::Display for Lit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lit::Str(s) => write!(f, "the string {s:?}"),
            Lit::Num(n) => write!(f, "the number {n}"),
            Lit::Bool(b) => write!(f, "`{b}`"),
        }
    }
}

/// What a test asks of a field, before the field's type is known.
#[derive(Debug, Clone)]
enum Ask {
    /// The operator, the value, and where each is.
    Cmp(Op, Lit, Pos, Pos),
    In(Vec<(Lit, Pos)>, bool),
    Exists(bool),
    Contains(Lit, Pos),
    StartsWith(String, Pos),
    EndsWith(String, Pos),
    Matches(String, Pos),
}

struct Parser {
    toks: Vec<(Tok, Pos)>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> &(Tok, Pos) {
        &self.toks[self.at.min(self.toks.len() - 1)]
    }

    fn next(&mut self) -> (Tok, Pos) {
        let t = self.peek().clone();
        self.at += 1;
        t
    }

    fn keyword(&self, kw: &str) -> bool {
        matches!(&self.peek().0, Tok::Word(w) if w.eq_ignore_ascii_case(kw))
    }

    fn expect(&mut self, want: Tok, what: &str) -> Result<(), FilterError> {
        let (tok, pos) = self.next();
        if tok == want {
            Ok(())
        } else {
            Err(error(pos, what, tok))
        }
    }

    fn or(&mut self) -> Result<Node, FilterError> {
        let mut parts = vec![self.and()?];
        while self.keyword("OR") {
            self.next();
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Node::Or(parts.into())
        })
    }

    fn and(&mut self) -> Result<Node, FilterError> {
        let mut parts = vec![self.unary()?];
        while self.keyword("AND") {
            self.next();
            parts.push(self.unary()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Node::And(parts.into())
        })
    }

    fn unary(&mut self) -> Result<Node, FilterError> {
        if self.keyword("NOT") {
            self.next();
            return Ok(Node::Not(Box::new(self.unary()?)));
        }
        if self.peek().0 == Tok::LParen {
            self.next();
            let inner = self.or()?;
            self.expect(Tok::RParen, "`)` or AND or OR")?;
            return Ok(inner);
        }
        self.test()
    }

    fn value(&mut self) -> Result<(Lit, Pos), FilterError> {
        let (tok, pos) = self.next();
        let lit = match tok {
            Tok::Str(s) => Lit::Str(s),
            Tok::Num(n) => Lit::Num(n),
            Tok::Word(w) if w.eq_ignore_ascii_case("true") => Lit::Bool(true),
            Tok::Word(w) if w.eq_ignore_ascii_case("false") => Lit::Bool(false),
            other => {
                return Err(error(
                    pos,
                    "a value (a quoted string, a number, true or false)",
                    other,
                ));
            }
        };
        Ok((lit, pos))
    }

    fn string(&mut self) -> Result<(String, Pos), FilterError> {
        match self.value()? {
            (Lit::Str(s), pos) => Ok((s, pos)),
            (other, pos) => Err(error(pos, "a quoted string", other)),
        }
    }

    fn list(&mut self) -> Result<Vec<(Lit, Pos)>, FilterError> {
        self.expect(Tok::LParen, "`(` opening a list")?;
        let mut items = vec![self.value()?];
        loop {
            let (tok, pos) = self.next();
            match tok {
                Tok::Comma => items.push(self.value()?),
                Tok::RParen => return Ok(items),
                other => return Err(error(pos, "`,` or `)`", other)),
            }
        }
    }

    fn test(&mut self) -> Result<Node, FilterError> {
        let (tok, field_pos) = self.next();
        let path = match tok {
            Tok::Word(w) if !is_keyword(&w) => w,
            other => {
                return Err(error(
                    field_pos,
                    "a field (severity, namespace, details.…, …), NOT or `(`",
                    other,
                ));
            }
        };
        let (tok, pos) = self.next();
        let ask = match tok {
            Tok::Op(op) => {
                let (lit, value_pos) = self.value()?;
                Ask::Cmp(op, lit, pos, value_pos)
            }
            Tok::Word(w) => match w.to_ascii_uppercase().as_str() {
                "IN" => Ask::In(self.list()?, false),
                "EXISTS" => Ask::Exists(true),
                "CONTAINS" => {
                    let (lit, pos) = self.value()?;
                    Ask::Contains(lit, pos)
                }
                "STARTS_WITH" => {
                    let (s, pos) = self.string()?;
                    Ask::StartsWith(s, pos)
                }
                "ENDS_WITH" => {
                    let (s, pos) = self.string()?;
                    Ask::EndsWith(s, pos)
                }
                "MATCHES" => {
                    let (s, pos) = self.string()?;
                    Ask::Matches(s, pos)
                }
                "NOT" => {
                    let (tok, pos) = self.next();
                    match tok {
                        Tok::Word(w) if w.eq_ignore_ascii_case("IN") => Ask::In(self.list()?, true),
                        Tok::Word(w) if w.eq_ignore_ascii_case("EXISTS") => Ask::Exists(false),
                        other => return Err(error(pos, "IN or EXISTS after NOT", other)),
                    }
                }
                _ => return Err(error(pos, OPERATORS, format!("`{w}`"))),
            },
            other => return Err(error(pos, OPERATORS, other)),
        };
        compile_test(&path, field_pos, ask)
    }
}

const OPERATORS: &str = "an operator (= != > >= < <= IN, NOT IN, CONTAINS, STARTS_WITH, ENDS_WITH, MATCHES, EXISTS, NOT EXISTS)";

fn is_keyword(w: &str) -> bool {
    [
        "AND",
        "OR",
        "NOT",
        "IN",
        "EXISTS",
        "CONTAINS",
        "STARTS_WITH",
        "ENDS_WITH",
        "MATCHES",
    ]
    .iter()
    .any(|k| k.eq_ignore_ascii_case(w))
}

/// A compiled expression.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    And(Box<[Node]>),
    Or(Box<[Node]>),
    Not(Box<Node>),
    /// Severity rank within the set (bit per rank).
    Severity(u8),
    /// Category within the set (bit per category).
    Category(u8),
    Text(TextField, TextTest),
    Label(String, TextTest),
    Detail(DetailPath, ValueTest),
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum TextField {
    Source,
    EventType,
    RuleId,
    Title,
    Message,
    Namespace,
    Node,
    ResourceKind,
    ResourceName,
    ResourceNamespace,
    ResourceApiVersion,
}

impl TextField {
    fn get(self, e: &Event) -> Option<&str> {
        let res = e.resource.as_ref();
        match self {
            TextField::Source => Some(&e.source),
            TextField::EventType => Some(&e.event_type),
            TextField::RuleId => e.rule_id.as_deref(),
            TextField::Title => Some(&e.title),
            TextField::Message => Some(&e.message),
            TextField::Namespace => e.namespace.as_deref(),
            TextField::Node => e.node.as_deref(),
            TextField::ResourceKind => res.map(|r| r.kind.as_str()),
            TextField::ResourceName => res.map(|r| r.name.as_str()),
            TextField::ResourceNamespace => res.and_then(|r| r.namespace.as_deref()),
            TextField::ResourceApiVersion => res.and_then(|r| r.api_version.as_deref()),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum TextTest {
    Eq(String),
    Ne(String),
    In(Box<[String]>),
    NotIn(Box<[String]>),
    Contains(String),
    StartsWith(String),
    EndsWith(String),
    Matches(Regex),
    Exists(bool),
}

impl TextTest {
    fn holds(&self, v: Option<&str>) -> bool {
        let Some(v) = v else {
            return matches!(
                self,
                TextTest::Ne(_) | TextTest::NotIn(_) | TextTest::Exists(false)
            );
        };
        match self {
            TextTest::Eq(s) => v == s,
            TextTest::Ne(s) => v != s,
            TextTest::In(set) => set.iter().any(|s| s == v),
            TextTest::NotIn(set) => !set.iter().any(|s| s == v),
            TextTest::Contains(s) => v.contains(s.as_str()),
            TextTest::StartsWith(s) => v.starts_with(s.as_str()),
            TextTest::EndsWith(s) => v.ends_with(s.as_str()),
            TextTest::Matches(re) => re.is_match(v),
            TextTest::Exists(want) => *want,
        }
    }
}

/// A path into `details`. Keys may themselves hold dots (Falco's `proc.name`): each candidate
/// split of the path is tried, shortest key first.
#[derive(Debug, Clone)]
pub(crate) struct DetailPath(Box<[String]>);

impl DetailPath {
    fn lookup<'v>(&self, v: &'v Value) -> Option<&'v Value> {
        fn walk<'v>(v: &'v Value, segs: &[String]) -> Option<&'v Value> {
            if segs.is_empty() {
                return Some(v);
            }
            match v {
                Value::Object(map) => (1..=segs.len()).find_map(|k| {
                    let key = segs[..k].join(".");
                    map.get(&key).and_then(|next| walk(next, &segs[k..]))
                }),
                Value::Array(items) => {
                    let i: usize = segs[0].parse().ok()?;
                    walk(items.get(i)?, &segs[1..])
                }
                _ => None,
            }
        }
        walk(v, &self.0)
    }
}

#[derive(Debug, Clone)]
pub(crate) enum ValueTest {
    Cmp(Op, Lit),
    In(Box<[Lit]>, bool),
    Contains(Lit),
    StartsWith(String),
    EndsWith(String),
    Matches(Regex),
    Exists(bool),
}

fn lit_eq(v: &Value, lit: &Lit) -> bool {
    match (v, lit) {
        (Value::String(s), Lit::Str(l)) => s == l,
        (Value::Number(n), Lit::Num(l)) => n.as_f64() == Some(*l),
        (Value::Bool(b), Lit::Bool(l)) => b == l,
        _ => false,
    }
}

impl ValueTest {
    fn holds(&self, v: Option<&Value>) -> bool {
        let Some(v) = v.filter(|v| !v.is_null()) else {
            return matches!(
                self,
                ValueTest::Cmp(Op::Ne, _) | ValueTest::In(_, true) | ValueTest::Exists(false)
            );
        };
        match self {
            ValueTest::Cmp(op, lit) => match (v, lit) {
                (Value::Number(n), Lit::Num(l)) => n
                    .as_f64()
                    .and_then(|n| n.partial_cmp(l))
                    .is_some_and(|o| op.holds(o)),
                (Value::String(s), Lit::Str(l)) => op.holds(s.as_str().cmp(l.as_str())),
                (Value::Bool(b), Lit::Bool(l)) if !op.is_ordering() => op.holds(b.cmp(l)),
                _ => *op == Op::Ne,
            },
            ValueTest::In(set, negated) => set.iter().any(|l| lit_eq(v, l)) != *negated,
            ValueTest::Contains(lit) => match (v, lit) {
                (Value::String(s), Lit::Str(l)) => s.contains(l.as_str()),
                (Value::Array(items), _) => items.iter().any(|i| lit_eq(i, lit)),
                _ => false,
            },
            ValueTest::StartsWith(p) => v.as_str().is_some_and(|s| s.starts_with(p.as_str())),
            ValueTest::EndsWith(p) => v.as_str().is_some_and(|s| s.ends_with(p.as_str())),
            ValueTest::Matches(re) => v.as_str().is_some_and(|s| re.is_match(s)),
            ValueTest::Exists(want) => *want,
        }
    }
}

const FIELDS: &str = "source, category, severity, event_type, rule_id, title, message, namespace, node, \
resource.kind, resource.name, resource.namespace, resource.api_version, labels.<key>, details.<path>";

fn text_field(path: &str) -> Option<TextField> {
    Some(match path {
        "source" => TextField::Source,
        "event_type" | "eventType" => TextField::EventType,
        "rule_id" | "ruleId" | "rule" => TextField::RuleId,
        "title" => TextField::Title,
        "message" => TextField::Message,
        "namespace" => TextField::Namespace,
        "node" => TextField::Node,
        "resource.kind" => TextField::ResourceKind,
        "resource.name" => TextField::ResourceName,
        "resource.namespace" => TextField::ResourceNamespace,
        "resource.api_version" | "resource.apiVersion" => TextField::ResourceApiVersion,
        _ => return None,
    })
}

fn regex(pattern: &str, pos: Pos) -> Result<Regex, FilterError> {
    Regex::new(pattern).map_err(|e| {
        error(
            pos,
            "a valid regular expression",
            format!("{pattern:?} ({e})"),
        )
    })
}

fn compile_text(path: &str, ask: Ask) -> Result<TextTest, FilterError> {
    let string = |lit: Lit, pos: Pos| match lit {
        Lit::Str(s) => Ok(s),
        other => Err(error(
            pos,
            format!("a quoted string to compare with `{path}`"),
            other,
        )),
    };
    Ok(match ask {
        Ask::Cmp(Op::Eq, lit, _, pos) => TextTest::Eq(string(lit, pos)?),
        Ask::Cmp(Op::Ne, lit, _, pos) => TextTest::Ne(string(lit, pos)?),
        Ask::Cmp(op, _, pos, _) => {
            let expected = format!(
                "= or != for the text field `{path}` (ordering applies to severity and details)"
            );
            return Err(error(pos, expected, format!("`{}`", op_text(op))));
        }
        Ask::In(items, negated) => {
            let set = items
                .into_iter()
                .map(|(l, p)| string(l, p))
                .collect::<Result<Box<[_]>, _>>()?;
            if negated {
                TextTest::NotIn(set)
            } else {
                TextTest::In(set)
            }
        }
        Ask::Exists(want) => TextTest::Exists(want),
        Ask::Contains(lit, pos) => TextTest::Contains(string(lit, pos)?),
        Ask::StartsWith(s, _) => TextTest::StartsWith(s),
        Ask::EndsWith(s, _) => TextTest::EndsWith(s),
        Ask::Matches(s, pos) => TextTest::Matches(regex(&s, pos)?),
    })
}

/// A set of names (severities, categories) as a bit mask.
fn mask<T: Copy>(
    path: &str,
    ask: Ask,
    all: &[T],
    parse: impl Fn(&str) -> Option<T>,
    bit: impl Fn(T) -> u8,
    what: &str,
    ordered: bool,
) -> Result<u8, FilterError> {
    let one = |lit: Lit, pos: Pos| match &lit {
        Lit::Str(s) => parse(s).ok_or_else(|| error(pos, format!("a {what}"), &lit)),
        _ => Err(error(pos, format!("a {what} in quotes"), &lit)),
    };
    let full = all.iter().fold(0u8, |m, &v| m | (1 << bit(v)));
    Ok(match ask {
        Ask::Cmp(op, lit, op_pos, pos) => {
            if op.is_ordering() && !ordered {
                return Err(error(
                    op_pos,
                    format!("= or != for `{path}`"),
                    format!("`{}`", op_text(op)),
                ));
            }
            let rank = bit(one(lit, pos)?);
            all.iter()
                .filter(|&&v| op.holds(bit(v).cmp(&rank)))
                .fold(0, |m, &v| m | (1 << bit(v)))
        }
        Ask::In(items, negated) => {
            let mut m = 0u8;
            for (lit, pos) in items {
                m |= 1 << bit(one(lit, pos)?);
            }
            if negated { full & !m } else { m }
        }
        Ask::Exists(true) => full,
        Ask::Exists(false) => 0,
        Ask::Contains(_, pos)
        | Ask::Matches(_, pos)
        | Ask::StartsWith(_, pos)
        | Ask::EndsWith(_, pos) => {
            return Err(error(
                pos,
                format!("a comparison or IN for `{path}`"),
                "a text operator",
            ));
        }
    })
}

fn compile_test(path: &str, pos: Pos, ask: Ask) -> Result<Node, FilterError> {
    if path == "severity" {
        let m = mask(
            path,
            ask,
            &Severity::ALL,
            |s| s.parse().ok(),
            Severity::rank,
            "severity (critical, high, medium, low, info)",
            true,
        )?;
        return Ok(Node::Severity(m));
    }
    if path == "category" {
        let bit = |c: Category| Category::ALL.iter().position(|&x| x == c).unwrap_or(0) as u8;
        let what = "category (security, compliance, performance, operations, cost)";
        return Ok(Node::Category(mask(
            path,
            ask,
            &Category::ALL,
            |s| s.parse().ok(),
            bit,
            what,
            false,
        )?));
    }
    if let Some(field) = text_field(path) {
        return Ok(Node::Text(field, compile_text(path, ask)?));
    }
    if let Some(key) = path.strip_prefix("labels.").filter(|k| !k.is_empty()) {
        return Ok(Node::Label(key.to_owned(), compile_text(path, ask)?));
    }
    if let Some(rest) = path.strip_prefix("details.").filter(|k| !k.is_empty()) {
        let detail = DetailPath(rest.split('.').map(str::to_owned).collect());
        let test = match ask {
            Ask::Cmp(op, lit, _, _) => ValueTest::Cmp(op, lit),
            Ask::In(items, negated) => {
                ValueTest::In(items.into_iter().map(|(l, _)| l).collect(), negated)
            }
            Ask::Exists(want) => ValueTest::Exists(want),
            Ask::Contains(lit, _) => ValueTest::Contains(lit),
            Ask::StartsWith(s, _) => ValueTest::StartsWith(s),
            Ask::EndsWith(s, _) => ValueTest::EndsWith(s),
            Ask::Matches(s, pos) => ValueTest::Matches(regex(&s, pos)?),
        };
        return Ok(Node::Detail(detail, test));
    }
    Err(error(
        pos,
        format!("a field ({FIELDS})"),
        format!("`{path}`"),
    ))
}

/// Compiles an expression, or says where and why it is wrong.
pub(crate) fn compile(src: &str) -> Result<Node, FilterError> {
    let mut p = Parser {
        toks: lex(src)?,
        at: 0,
    };
    let node = p.or()?;
    let (tok, pos) = p.next();
    if tok != Tok::End {
        return Err(error(pos, "AND, OR or the end of the expression", tok));
    }
    Ok(node)
}

/// An event being judged, with its details parsed only if a test needs them.
pub(crate) struct Subject<'e> {
    pub(crate) event: &'e Event,
    details: OnceCell<Value>,
}

impl<'e> Subject<'e> {
    pub(crate) fn new(event: &'e Event) -> Self {
        Subject {
            event,
            details: OnceCell::new(),
        }
    }

    fn details(&self) -> &Value {
        self.details.get_or_init(|| self.event.details.to_value())
    }
}

impl Node {
    pub(crate) fn eval(&self, s: &Subject<'_>) -> bool {
        match self {
            Node::And(parts) => parts.iter().all(|n| n.eval(s)),
            Node::Or(parts) => parts.iter().any(|n| n.eval(s)),
            Node::Not(inner) => !inner.eval(s),
            Node::Severity(m) => m & (1 << s.event.severity.rank()) != 0,
            Node::Category(m) => {
                let bit = Category::ALL
                    .iter()
                    .position(|&c| c == s.event.category)
                    .unwrap_or(0);
                m & (1 << bit) != 0
            }
            Node::Text(field, test) => test.holds(field.get(s.event)),
            Node::Label(key, test) => test.holds(s.event.labels.get(key).map(String::as_str)),
            Node::Detail(path, test) => test.holds(path.lookup(s.details())),
        }
    }
}
