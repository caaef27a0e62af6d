//! SCIM filters (RFC 7644 §3.4.2.2): parse text into an AST, print it back, evaluate it in
//! memory; and PATCH paths (§3.5.2), which embed the same value filters.
//!
//! Pure code: no I/O, no SQL. `store::query` compiles the same AST to parameterized SQL; the PATCH
//! engine uses [`parse_patch_path`] and [`matches_element`] to find the elements a path selects.
//!
//! Beyond the RFC grammar the parser accepts what Microsoft Entra ID sends:
//! * `emails[type eq "work"].value eq "x"`, read as `emails[type eq "work" and value eq "x"]`
//!   (the element must satisfy both, which is what Entra means);
//! * bare values (`externalId eq jyoung`, `id eq 54D3… and manager eq 2819…`): a word that is not
//!   `true`/`false`/`null` or a JSON number is a string;
//! * keywords in any case (`EQ`, `And`, `Not(`).
//!
//! Hostile input is bounded ([`MAX_LEN`], [`MAX_DEPTH`], [`MAX_COMPARISONS`]) and never makes the
//! parser panic; every error detail says where the problem is, counted in characters from 0.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::iter::Peekable;
use std::vec;

use serde_json::Value;

use super::error::ScimError;
use super::path::AttrPath;
use super::schema::{self, AttrType, Attribute, ResourceType};

/// Longest filter or PATCH path accepted, in bytes. Entra's filters are well under 200.
pub const MAX_LEN: usize = 4096;
/// Deepest nesting of `(`, `not (` and `[` accepted; bounds the parser's recursion.
pub const MAX_DEPTH: usize = 32;
/// Most attribute comparisons (`op value` or `pr`) in one filter; bounds evaluation and SQL size.
pub const MAX_COMPARISONS: usize = 256;

/// Comparison operators (RFC 7644 §3.4.2.2 Table 3). Keywords are case-insensitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

/// A comparison value: JSON string, number, boolean or null. Bare tokens (Entra's old
/// `externalId eq jyoung`) are read as strings, except `true`/`false`/`null`.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    String(String),
    Number(serde_json::Number),
    Bool(bool),
    Null,
}

/// The filter AST.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `path op value`
    Compare {
        path: AttrPath,
        op: CompareOp,
        value: Literal,
    },
    /// `path pr`
    Present(AttrPath),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    /// `emails[type eq "work"]`: some element of the multi-valued attribute `path` matches
    /// `filter`, whose paths name sub-attributes of the element (`AttrPath { name: "type", .. }`).
    /// Entra's `emails[type eq "work"].value eq "x"` parses to
    /// `ValuePath { emails, And(type eq "work", value eq "x") }`.
    ValuePath {
        path: AttrPath,
        filter: Box<Filter>,
    },
}

/// A PATCH `path` (RFC 7644 §3.5.2): `attrPath` or `valuePath ["." subAttr]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    /// The attribute; carries `sub` only when there is no value filter (`name.givenName`).
    pub attr: AttrPath,
    /// The value filter of `emails[type eq "work"]`, relative to the elements.
    pub filter: Option<Filter>,
    /// The sub-attribute after a value filter: `.value` in `emails[type eq "work"].value`.
    pub sub: Option<String>,
}

impl CompareOp {
    pub const ALL: [CompareOp; 9] = [
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Co,
        CompareOp::Sw,
        CompareOp::Ew,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::Lt,
        CompareOp::Le,
    ];

    /// The canonical (lower-case) keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }

    fn from_keyword(word: &str) -> Option<CompareOp> {
        Self::ALL
            .into_iter()
            .find(|op| op.as_str().eq_ignore_ascii_case(word))
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

/// Parse a `filter` query parameter (already URL-decoded: `+` is not special here).
///
/// Every error is `invalidFilter` with a detail such as
/// `at position 9: expected an operator after 'userName', found 'equals'`.
pub fn parse(text: &str) -> Result<Filter, ScimError> {
    parse_filter(text).map_err(|e| ScimError::invalid_filter(e.detail(text)))
}

/// Parse a PATCH operation's `path`: `userName`, `name.givenName`, `urn:…:User:manager.value`,
/// `emails[type eq "work"]`, `emails[type eq "work"].value`.
///
/// Every error, including a malformed filter inside `[…]`, is `invalidPath`: the client sent a
/// bad `path`, and RFC 7644 §3.5.2 reserves `invalidFilter` for the `filter` parameter.
pub fn parse_patch_path(text: &str) -> Result<PatchPath, ScimError> {
    parse_path(text).map_err(|e| ScimError::invalid_path(e.detail(text)))
}

fn parse_filter(text: &str) -> Result<Filter, SyntaxError> {
    let mut parser = Parser::new(text, "filter")?;
    if parser.tokens.peek().is_none() {
        return Err(SyntaxError::whole("the filter is empty"));
    }
    let filter = parser.parse_or()?;
    parser.finish("'and', 'or' or the end of the filter")?;
    check_canonical(&filter)?;
    Ok(filter)
}

fn parse_path(text: &str) -> Result<PatchPath, SyntaxError> {
    let mut parser = Parser::new(text, "path")?;
    let (word, start) = match parser.tokens.next() {
        Some(Token {
            kind: Tok::Word(word),
            start,
            ..
        }) => (word, start),
        other => return Err(parser.src.expected(other.as_ref(), "an attribute path")),
    };
    let attr = attr_path(word, start)?;
    let Some(open) = parser.tokens.next_if(|t| t.kind == Tok::OpenBracket) else {
        parser.finish("'[' or the end of the path")?;
        return Ok(PatchPath {
            attr,
            filter: None,
            sub: None,
        });
    };
    if attr.sub.is_some() {
        return Err(SyntaxError::at(start, not_multi_valued(word)));
    }
    let filter = parser.bracketed(open.start)?;
    let sub = match parser.tokens.next_if(is_sub_attr) {
        Some(dot) => Some(sub_attr_name(&dot)?),
        None => None,
    };
    parser.finish("a sub-attribute ('.value') or the end of the path")?;
    Ok(PatchPath {
        attr,
        filter: Some(filter),
        sub,
    })
}

/// A syntax error at a byte offset (or in the text as a whole). It becomes `invalidFilter` or
/// `invalidPath` at the public edge, depending on what was being parsed.
#[derive(Debug)]
struct SyntaxError {
    offset: Option<usize>,
    message: String,
}

impl SyntaxError {
    fn at(offset: usize, message: impl Into<String>) -> Self {
        SyntaxError {
            offset: Some(offset),
            message: message.into(),
        }
    }

    fn whole(message: impl Into<String>) -> Self {
        SyntaxError {
            offset: None,
            message: message.into(),
        }
    }

    /// The client-facing detail. Positions count characters, not bytes, so they match what the
    /// administrator sees in a log line that contains non-ASCII names.
    fn detail(&self, text: &str) -> String {
        match self.offset {
            Some(offset) => {
                let position = text.get(..offset).map_or(offset, |s| s.chars().count());
                format!("at position {position}: {}", self.message)
            }
            None => self.message.clone(),
        }
    }
}

#[derive(Debug)]
struct Token<'a> {
    kind: Tok<'a>,
    /// Byte offsets into the text; always on character boundaries.
    start: usize,
    end: usize,
}

#[derive(Debug, PartialEq)]
enum Tok<'a> {
    Open,
    Close,
    OpenBracket,
    CloseBracket,
    /// A JSON string literal, already decoded.
    Str(String),
    /// Everything else, up to whitespace, a parenthesis, a bracket or a quote: an attribute path,
    /// a keyword, a number, `true`/`false`/`null`, a bare value, or Entra's `.value` after `]`.
    /// The URN of an extension contains `.` and `:`, so neither may end a word.
    Word(&'a str),
}

fn is_delimiter(c: char) -> bool {
    c.is_ascii_whitespace() || matches!(c, '(' | ')' | '[' | ']' | '"')
}

fn lex(text: &str) -> Result<Vec<Token<'_>>, SyntaxError> {
    if text.len() > MAX_LEN {
        return Err(SyntaxError::whole(format!(
            "the text is {} bytes long; at most {MAX_LEN} are accepted",
            text.len()
        )));
    }
    let mut tokens = Vec::new();
    let mut pos = 0;
    while let Some(c) = text.get(pos..).and_then(|rest| rest.chars().next()) {
        if c.is_ascii_whitespace() {
            pos += 1;
            continue;
        }
        let (kind, end) = match c {
            '(' => (Tok::Open, pos + 1),
            ')' => (Tok::Close, pos + 1),
            '[' => (Tok::OpenBracket, pos + 1),
            ']' => (Tok::CloseBracket, pos + 1),
            '"' => {
                let end = string_end(text, pos)?;
                (Tok::Str(decode_string(text, pos, end)?), end)
            }
            _ => {
                let end = text
                    .get(pos..)
                    .and_then(|rest| rest.find(is_delimiter))
                    .map_or(text.len(), |i| pos + i);
                (Tok::Word(text.get(pos..end).unwrap_or_default()), end)
            }
        };
        tokens.push(Token {
            kind,
            start: pos,
            end,
        });
        pos = end;
    }
    Ok(tokens)
}

/// The offset just past the quote that closes the string opening at `start`. Scanning bytes is
/// safe: `"` and `\` never occur inside a multi-byte UTF-8 sequence.
fn string_end(text: &str, start: usize) -> Result<usize, SyntaxError> {
    let bytes = text.as_bytes();
    let mut i = start + 1;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => return Ok(i + 1),
            _ => i += 1,
        }
    }
    Err(SyntaxError::at(start, "unclosed string: no closing '\"'"))
}

/// Decode a quoted JSON string (`\"`, `\\`, `\/`, `\uXXXX`, surrogate pairs…) with serde_json.
fn decode_string(text: &str, start: usize, end: usize) -> Result<String, SyntaxError> {
    let quoted = text.get(start..end).unwrap_or_default();
    serde_json::from_str(quoted).map_err(|e| {
        let reason = e.to_string();
        // serde_json appends " at line 1 column N", which means nothing to the client.
        let reason = reason.split(" at line ").next().unwrap_or_default();
        SyntaxError::at(start, format!("invalid string literal: {reason}"))
    })
}

/// The text and what it is ("filter" or "path"), for error messages.
struct Source<'a> {
    text: &'a str,
    subject: &'static str,
}

impl Source<'_> {
    fn describe(&self, token: Option<&Token>) -> String {
        match token {
            Some(t) => format!(
                "'{}'",
                clip(self.text.get(t.start..t.end).unwrap_or_default())
            ),
            None => format!("the end of the {}", self.subject),
        }
    }

    fn expected(&self, found: Option<&Token>, what: impl fmt::Display) -> SyntaxError {
        let offset = found.map_or(self.text.len(), |t| t.start);
        SyntaxError::at(
            offset,
            format!("expected {what}, found {}", self.describe(found)),
        )
    }
}

/// At most 40 characters of client text in a detail, so an error stays readable.
fn clip(s: &str) -> Cow<'_, str> {
    match s.char_indices().nth(40) {
        Some((i, _)) => Cow::Owned(format!("{}…", s.get(..i).unwrap_or_default())),
        None => Cow::Borrowed(s),
    }
}

/// Recursive descent over the tokens; precedence `not` > `and` > `or`, both left-associative.
struct Parser<'a> {
    src: Source<'a>,
    tokens: Peekable<vec::IntoIter<Token<'a>>>,
    depth: usize,
    comparisons: usize,
    in_brackets: bool,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, subject: &'static str) -> Result<Self, SyntaxError> {
        Ok(Parser {
            src: Source { text, subject },
            tokens: lex(text)?.into_iter().peekable(),
            depth: 0,
            comparisons: 0,
            in_brackets: false,
        })
    }

    fn finish(&mut self, expected: &str) -> Result<(), SyntaxError> {
        match self.tokens.next() {
            None => Ok(()),
            other => Err(self.src.expected(other.as_ref(), expected)),
        }
    }

    fn parse_or(&mut self) -> Result<Filter, SyntaxError> {
        let mut left = self.parse_and()?;
        while self.eat_keyword("or") {
            let right = self.parse_and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_and(&mut self) -> Result<Filter, SyntaxError> {
        let mut left = self.parse_unary()?;
        while self.eat_keyword("and") {
            let right = self.parse_unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        self.tokens
            .next_if(|t| matches!(t.kind, Tok::Word(w) if w.eq_ignore_ascii_case(keyword)))
            .is_some()
    }

    /// `( filter )`, `not ( filter )`, or an attribute expression.
    fn parse_unary(&mut self) -> Result<Filter, SyntaxError> {
        let token = self.tokens.next();
        match token.as_ref().map(|t| (&t.kind, t.start)) {
            Some((Tok::Open, start)) => {
                self.enter(start)?;
                let filter = self.parse_or()?;
                self.close(&Tok::Close, "')'")?;
                Ok(filter)
            }
            Some((Tok::Word(w), start)) if w.eq_ignore_ascii_case("not") => {
                // RFC 7644 requires the parentheses: `not (filter)`; `not(` is one token pair too.
                self.enter(start)?;
                match self.tokens.next() {
                    Some(t) if t.kind == Tok::Open => {}
                    other => return Err(self.src.expected(other.as_ref(), "'(' after 'not'")),
                }
                let filter = self.parse_or()?;
                self.close(&Tok::Close, "')'")?;
                Ok(Filter::Not(Box::new(filter)))
            }
            Some((&Tok::Word(w), start)) if !is_keyword(w) => self.parse_attr_expr(w, start),
            _ => Err(self
                .src
                .expected(token.as_ref(), "an attribute path, '(' or 'not'")),
        }
    }

    /// After `path`: `[valFilter]` (optionally Entra's `.sub op value`), `op value`, or `pr`.
    fn parse_attr_expr(&mut self, word: &str, start: usize) -> Result<Filter, SyntaxError> {
        let path = attr_path(word, start)?;
        if self.in_brackets && (path.urn.is_some() || path.sub.is_some()) {
            return Err(SyntaxError::at(
                start,
                format!(
                    "inside '[…]' name a sub-attribute such as 'value', not '{}'",
                    clip(word)
                ),
            ));
        }
        match self.tokens.next_if(|t| t.kind == Tok::OpenBracket) {
            Some(open) => self.parse_value_path(path, word, start, open.start),
            None => self.parse_test(path, word),
        }
    }

    fn parse_value_path(
        &mut self,
        path: AttrPath,
        word: &str,
        start: usize,
        open: usize,
    ) -> Result<Filter, SyntaxError> {
        if self.in_brackets {
            return Err(SyntaxError::at(
                open,
                "value filters cannot be nested: '[' inside '[…]'",
            ));
        }
        if path.sub.is_some() {
            return Err(SyntaxError::at(start, not_multi_valued(word)));
        }
        let filter = self.bracketed(open)?;
        // Entra: `emails[type eq "work"].value eq "x"` means one element with both properties.
        let Some(dot) = self.tokens.next_if(is_sub_attr) else {
            return Ok(Filter::ValuePath {
                path,
                filter: Box::new(filter),
            });
        };
        let sub = sub_attr_name(&dot)?;
        let shown = format!("{}[…].{sub}", clip(word));
        let test = self.parse_test(AttrPath::new(None, &sub, None), &shown)?;
        Ok(Filter::ValuePath {
            path,
            filter: Box::new(Filter::And(Box::new(filter), Box::new(test))),
        })
    }

    /// The value filter after a `[` at `open`, up to and including the `]`.
    fn bracketed(&mut self, open: usize) -> Result<Filter, SyntaxError> {
        self.enter(open)?;
        self.in_brackets = true;
        let filter = self.parse_or()?;
        self.close(&Tok::CloseBracket, "']'")?;
        self.in_brackets = false;
        Ok(filter)
    }

    /// `op value` or `pr` after the attribute path `shown`.
    fn parse_test(&mut self, path: AttrPath, shown: &str) -> Result<Filter, SyntaxError> {
        let token = self.tokens.next();
        let (word, start) = match &token {
            Some(Token {
                kind: Tok::Word(w),
                start,
                ..
            }) => (*w, *start),
            _ => ("", self.src.text.len()),
        };
        if word.eq_ignore_ascii_case("pr") {
            self.count(start)?;
            self.reject_value_after_pr()?;
            return Ok(Filter::Present(path));
        }
        let Some(op) = CompareOp::from_keyword(word) else {
            let what = format!("an operator after '{}'", clip(shown));
            return Err(self.src.expected(token.as_ref(), what));
        };
        self.count(start)?;
        let value = self.parse_value(op)?;
        Ok(Filter::Compare { path, op, value })
    }

    fn parse_value(&mut self, op: CompareOp) -> Result<Literal, SyntaxError> {
        match self.tokens.next() {
            Some(Token {
                kind: Tok::Str(s), ..
            }) => Ok(Literal::String(s)),
            Some(Token {
                kind: Tok::Word(w),
                start,
                ..
            }) if !is_keyword(w) => word_literal(w, start),
            other => Err(self
                .src
                .expected(other.as_ref(), format!("a value after '{}'", op.as_str()))),
        }
    }

    /// `title pr "x"` is a common mistake; say so instead of "expected 'and'…".
    fn reject_value_after_pr(&mut self) -> Result<(), SyntaxError> {
        match self.tokens.peek() {
            Some(t) if is_value(&t.kind) => Err(SyntaxError::at(
                t.start,
                format!("'pr' takes no value, found {}", self.src.describe(Some(t))),
            )),
            _ => Ok(()),
        }
    }

    fn close(&mut self, closer: &Tok, name: &str) -> Result<(), SyntaxError> {
        match self.tokens.next() {
            Some(t) if t.kind == *closer => {
                self.depth -= 1;
                Ok(())
            }
            other => Err(self
                .src
                .expected(other.as_ref(), format!("'and', 'or' or {name}"))),
        }
    }

    fn enter(&mut self, offset: usize) -> Result<(), SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(SyntaxError::at(
                offset,
                format!("more than {MAX_DEPTH} levels of '(', 'not (' and '['"),
            ));
        }
        Ok(())
    }

    fn count(&mut self, offset: usize) -> Result<(), SyntaxError> {
        self.comparisons += 1;
        if self.comparisons > MAX_COMPARISONS {
            return Err(SyntaxError::at(
                offset,
                format!("more than {MAX_COMPARISONS} comparisons"),
            ));
        }
        Ok(())
    }
}

fn is_keyword(word: &str) -> bool {
    ["and", "or", "not", "pr"]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(word))
        || CompareOp::from_keyword(word).is_some()
}

fn is_value(kind: &Tok) -> bool {
    match kind {
        Tok::Str(_) => true,
        Tok::Word(w) => !is_keyword(w),
        _ => false,
    }
}

fn is_sub_attr(token: &Token) -> bool {
    matches!(token.kind, Tok::Word(w) if w.starts_with('.'))
}

fn not_multi_valued(word: &str) -> String {
    format!(
        "'{}' names a sub-attribute; '[…]' must follow a multi-valued attribute",
        clip(word)
    )
}

/// A word in value position: `true`, `false`, `null` (any case), a JSON number, or else a bare
/// string as Entra's old clients send (`externalId eq jyoung`). `007` or `1.` are not JSON
/// numbers and stay strings, which is what an administrator typing an employee number means.
fn word_literal(word: &str, start: usize) -> Result<Literal, SyntaxError> {
    let literal = if word.eq_ignore_ascii_case("true") {
        Literal::Bool(true)
    } else if word.eq_ignore_ascii_case("false") {
        Literal::Bool(false)
    } else if word.eq_ignore_ascii_case("null") {
        Literal::Null
    } else if is_json_number(word) {
        Literal::Number(json_number(word).ok_or_else(|| {
            SyntaxError::at(start, format!("number '{}' is out of range", clip(word)))
        })?)
    } else {
        Literal::String(word.to_string())
    };
    Ok(literal)
}

/// RFC 8259 §6: `-? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)?`
fn is_json_number(word: &str) -> bool {
    fn digits(s: &[u8]) -> usize {
        s.iter().take_while(|b| b.is_ascii_digit()).count()
    }
    let mut rest = word.as_bytes();
    rest = rest.strip_prefix(b"-").unwrap_or(rest);
    let int = digits(rest);
    if int == 0 || (int > 1 && rest.first() == Some(&b'0')) {
        return false;
    }
    rest = rest.get(int..).unwrap_or_default();
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = digits(fraction);
        if n == 0 {
            return false;
        }
        rest = fraction.get(n..).unwrap_or_default();
    }
    if let Some(exponent) = rest.strip_prefix(b"e").or_else(|| rest.strip_prefix(b"E")) {
        let exponent = exponent
            .strip_prefix(b"+")
            .or_else(|| exponent.strip_prefix(b"-"))
            .unwrap_or(exponent);
        let n = digits(exponent);
        if n == 0 {
            return false;
        }
        rest = exponent.get(n..).unwrap_or_default();
    }
    rest.is_empty()
}

/// Integers exactly when they fit, others as the nearest f64. Not `serde_json::from_str`: its
/// default float parser can be off by one ulp, and printing must read back to the same value.
fn json_number(word: &str) -> Option<serde_json::Number> {
    if let Ok(n) = word.parse::<u64>() {
        return Some(n.into());
    }
    if let Ok(n) = word.parse::<i64>() {
        return Some(n.into());
    }
    word.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
}

/// An attribute path word, checked by [`AttrPath::parse`]. Attribute names are ASCII
/// (RFC 7643 §2.1), so anything else is refused here, before `AttrPath::parse` slices it.
fn attr_path(word: &str, start: usize) -> Result<AttrPath, SyntaxError> {
    if !word.is_ascii() {
        return Err(SyntaxError::at(
            start,
            format!(
                "'{}' is not a valid attribute path: attribute names are ASCII",
                clip(word)
            ),
        ));
    }
    AttrPath::parse(word).map_err(|e| SyntaxError::at(start, e.detail))
}

/// The name in a `.sub` word after `]`.
fn sub_attr_name(token: &Token) -> Result<String, SyntaxError> {
    let Tok::Word(word) = token.kind else {
        return Err(SyntaxError::at(token.start, "expected a sub-attribute"));
    };
    let name = word.get(1..).unwrap_or_default();
    match attr_path(name, token.start + 1) {
        Ok(p) if p.urn.is_none() && p.sub.is_none() => Ok(p.name),
        _ => Err(SyntaxError::at(
            token.start,
            format!("'{}' is not a sub-attribute name", clip(word)),
        )),
    }
}

/// Keep `parse(&f.to_string()) == Ok(f)` exact: printing can add a level of parentheses (Entra's
/// `emails[a or b].value eq "x"` prints as `emails[(a or b) and value eq "x"]`) and grow the text
/// (bare values gain quotes, `1e5` prints as `100000.0`), so refuse what would not parse back.
fn check_canonical(filter: &Filter) -> Result<(), SyntaxError> {
    if nesting(filter) > MAX_DEPTH {
        return Err(SyntaxError::whole(format!(
            "the filter nests more than {MAX_DEPTH} levels once normalised"
        )));
    }
    let len = filter.to_string().len();
    if len > MAX_LEN {
        return Err(SyntaxError::whole(format!(
            "the filter is {len} bytes long once normalised (bare values quoted, numbers in \
             canonical form); at most {MAX_LEN} are accepted"
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Printing
// ---------------------------------------------------------------------------------------------

/// Whether `child`, an operand of `parent`, must be parenthesised to parse back the same.
/// `and` binds tighter than `or`, and both associate to the left.
fn needs_parens(parent: &Filter, child: &Filter, right: bool) -> bool {
    match (parent, child) {
        (Filter::And(..), Filter::Or(..)) => true,
        (Filter::And(..), Filter::And(..)) | (Filter::Or(..), Filter::Or(..)) => right,
        _ => false,
    }
}

/// The nesting depth of the printed form, counted like the parser counts it.
fn nesting(filter: &Filter) -> usize {
    let operand =
        |child: &Filter, right| nesting(child) + usize::from(needs_parens(filter, child, right));
    match filter {
        Filter::Compare { .. } | Filter::Present(_) => 0,
        Filter::And(l, r) | Filter::Or(l, r) => operand(l, false).max(operand(r, true)),
        Filter::Not(inner) | Filter::ValuePath { filter: inner, .. } => 1 + nesting(inner),
    }
}

fn write_operand(
    f: &mut fmt::Formatter<'_>,
    parent: &Filter,
    child: &Filter,
    right: bool,
) -> fmt::Result {
    if needs_parens(parent, child, right) {
        write!(f, "({child})")
    } else {
        write!(f, "{child}")
    }
}

/// Canonical text: lower-case keywords, single spaces, strings JSON-quoted, parentheses only
/// where precedence needs them. `parse` reads it back to an equal AST.
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Compare { path, op, value } => write!(f, "{path} {op} {value}"),
            Filter::Present(path) => write!(f, "{path} pr"),
            Filter::And(l, r) | Filter::Or(l, r) => {
                let keyword = if matches!(self, Filter::And(..)) {
                    "and"
                } else {
                    "or"
                };
                write_operand(f, self, l, false)?;
                write!(f, " {keyword} ")?;
                write_operand(f, self, r, true)
            }
            Filter::Not(inner) => write!(f, "not ({inner})"),
            Filter::ValuePath { path, filter } => write!(f, "{path}[{filter}]"),
        }
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::String(s) => f.write_str(&serde_json::to_string(s).map_err(|_| fmt::Error)?),
            Literal::Number(n) => write!(f, "{n}"),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Null => f.write_str("null"),
        }
    }
}

impl fmt::Display for PatchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.attr)?;
        if let Some(filter) = &self.filter {
            write!(f, "[{filter}]")?;
        }
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------

/// Whether `resource` (our document layout: core and common attributes at the top, extension
/// attributes in an object keyed by the extension URN) matches `filter`.
///
/// Attributes unknown to `rt` match nothing rather than fail: the HTTP layer resolves paths
/// first when it wants to report them. On a multi-valued attribute a comparison holds when any
/// value satisfies it, and `ne` is the negation of `eq` (so an absent attribute is `ne` anything).
pub fn matches(filter: &Filter, rt: &'static ResourceType, resource: &Value) -> bool {
    match filter {
        Filter::Compare { path, op, value } => {
            select(rt, resource, path).is_some_and(|s| s.compare(*op, value))
        }
        Filter::Present(path) => select(rt, resource, path).is_some_and(|s| s.present),
        Filter::And(l, r) => matches(l, rt, resource) && matches(r, rt, resource),
        Filter::Or(l, r) => matches(l, rt, resource) || matches(r, rt, resource),
        Filter::Not(inner) => !matches(inner, rt, resource),
        Filter::ValuePath { path, filter } => {
            if path.sub.is_some() {
                return false;
            }
            let Some(resolved) = path.resolve(rt).ok() else {
                return false;
            };
            let value = attribute_value(resource, resolved.extension, resolved.attr);
            elements(value).any(|e| matches_element(filter, resolved.attr, e))
        }
    }
}

/// Whether one element of the multi-valued attribute `attr` matches a value filter (the inside
/// of `emails[…]`), whose paths are sub-attribute names of `attr`. For a multi-valued attribute
/// of simple values, `value` names the element itself. Nested value paths match nothing.
pub fn matches_element(filter: &Filter, attr: &'static Attribute, element: &Value) -> bool {
    match filter {
        Filter::Compare { path, op, value } => {
            select_in_element(attr, element, path).is_some_and(|s| s.compare(*op, value))
        }
        Filter::Present(path) => select_in_element(attr, element, path).is_some_and(|s| s.present),
        Filter::And(l, r) => matches_element(l, attr, element) && matches_element(r, attr, element),
        Filter::Or(l, r) => matches_element(l, attr, element) || matches_element(r, attr, element),
        Filter::Not(inner) => !matches_element(inner, attr, element),
        Filter::ValuePath { .. } => false,
    }
}

/// What a path selects in one document: the values an operator compares, whether `pr` holds,
/// and whether the attribute definition says to compare strings case-sensitively.
struct Selection<'v> {
    values: Vec<&'v Value>,
    present: bool,
    case_exact: bool,
}

impl Selection<'_> {
    /// RFC 7644 §3.4.2.2: any value satisfies the operator. `eq null` holds when the attribute
    /// is absent, and `ne` is the negation of `eq`.
    fn compare(&self, op: CompareOp, literal: &Literal) -> bool {
        match (op, literal) {
            (CompareOp::Eq, Literal::Null) => !self.present,
            (CompareOp::Ne, _) => !self.compare(CompareOp::Eq, literal),
            _ => self
                .values
                .iter()
                .any(|v| compare_value(v, op, literal, self.case_exact)),
        }
    }
}

/// Select `path` in a resource document. `None` when `rt` has no such attribute.
fn select<'v>(
    rt: &'static ResourceType,
    resource: &'v Value,
    path: &AttrPath,
) -> Option<Selection<'v>> {
    let resolved = path.resolve(rt).ok()?;
    let (attr, sub) = (resolved.attr, resolved.sub);
    let whole = attribute_value(resource, resolved.extension, attr);
    let selection = match sub {
        Some(sub) => {
            let values: Vec<&Value> = elements(whole).filter_map(|e| get(e, sub.name)).collect();
            let present = values.iter().any(|v| is_present(v));
            Selection {
                values,
                present,
                case_exact: sub.case_exact,
            }
        }
        // `emails eq "x"` and Entra's `manager eq 2819…` compare the `value` sub-attribute;
        // `pr` still asks whether the complex attribute itself has content.
        None if attr.ty == AttrType::Complex => {
            let value_def = attr.sub("value");
            let values = match value_def {
                Some(def) => elements(whole).filter_map(|e| get(e, def.name)).collect(),
                None => Vec::new(),
            };
            Selection {
                values,
                present: whole.is_some_and(is_present),
                case_exact: value_def.is_some_and(|d| d.case_exact),
            }
        }
        None => Selection {
            values: elements(whole).collect(),
            present: whole.is_some_and(is_present),
            case_exact: attr.case_exact,
        },
    };
    Some(selection)
}

/// Select a sub-attribute (`type`, `value`) in one element of the multi-valued attribute `attr`.
fn select_in_element<'v>(
    attr: &'static Attribute,
    element: &'v Value,
    path: &AttrPath,
) -> Option<Selection<'v>> {
    if path.urn.is_some() || path.sub.is_some() {
        return None;
    }
    let (value, case_exact) = if attr.sub_attributes.is_empty() {
        if !path.name.eq_ignore_ascii_case("value") {
            return None;
        }
        (Some(element), attr.case_exact)
    } else {
        let def = attr.sub(&path.name)?;
        (get(element, def.name), def.case_exact)
    };
    let value = value.filter(|v| !v.is_null());
    Some(Selection {
        values: value.into_iter().collect(),
        present: value.is_some_and(is_present),
        case_exact,
    })
}

/// The value of `attr` in a document, from the top level or from its extension's object.
fn attribute_value<'v>(
    resource: &'v Value,
    extension: Option<&schema::Schema>,
    attr: &Attribute,
) -> Option<&'v Value> {
    let container = match extension {
        Some(ext) => get(resource, ext.id)?,
        None => resource,
    };
    get(container, attr.name).filter(|v| !v.is_null())
}

/// The elements of a multi-valued value, or the value itself.
fn elements(value: Option<&Value>) -> impl Iterator<Item = &Value> {
    let (one, many) = match value {
        Some(Value::Array(items)) => (None, items.as_slice()),
        other => (other, &[][..]),
    };
    one.into_iter().chain(many).filter(|v| !v.is_null())
}

/// Case-insensitive member lookup: SCIM names are case-insensitive (RFC 7643 §2.1) and stored
/// documents may carry a client's spelling.
fn get<'v>(value: &'v Value, key: &str) -> Option<&'v Value> {
    let object = value.as_object()?;
    object.get(key).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// `pr`: present and not null, not "", not [] and not an object without content.
fn is_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => items.iter().any(is_present),
        Value::Object(members) => members.values().any(is_present),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

/// One value against one literal. Mismatched types never match; booleans only support `eq`.
fn compare_value(value: &Value, op: CompareOp, literal: &Literal, case_exact: bool) -> bool {
    match (value, literal) {
        (Value::String(a), Literal::String(b)) => compare_strings(a, b, op, case_exact),
        (Value::Number(a), Literal::Number(b)) => {
            compare_numbers(a, b).is_some_and(|ord| ordering_satisfies(op, ord))
        }
        (Value::Bool(a), Literal::Bool(b)) => op == CompareOp::Eq && a == b,
        _ => false,
    }
}

/// Strings follow the attribute's `caseExact`; ordering is lexicographic, which is also the
/// order of the dateTime strings SCIM uses (`2026-01-05T10:00:00Z`).
fn compare_strings(a: &str, b: &str, op: CompareOp, case_exact: bool) -> bool {
    let (a, b) = if case_exact {
        (Cow::Borrowed(a), Cow::Borrowed(b))
    } else {
        (Cow::Owned(a.to_lowercase()), Cow::Owned(b.to_lowercase()))
    };
    match op {
        CompareOp::Co => a.contains(&*b),
        CompareOp::Sw => a.starts_with(&*b),
        CompareOp::Ew => a.ends_with(&*b),
        _ => ordering_satisfies(op, a.cmp(&b)),
    }
}

/// Integers exactly, anything else as f64.
fn compare_numbers(a: &serde_json::Number, b: &serde_json::Number) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return Some(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return Some(x.cmp(&y));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

fn ordering_satisfies(op: CompareOp, ord: Ordering) -> bool {
    match op {
        CompareOp::Eq => ord.is_eq(),
        CompareOp::Ne => ord.is_ne(),
        CompareOp::Gt => ord.is_gt(),
        CompareOp::Ge => ord.is_ge(),
        CompareOp::Lt => ord.is_lt(),
        CompareOp::Le => ord.is_le(),
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

#[cfg(test)]
mod tests;
