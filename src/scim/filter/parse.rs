//! The filter grammar (RFC 7644 §3.4.2.2 and §3.5.2): text → tokens → [`Filter`] or
//! [`PatchPath`], by recursive descent with precedence `not` > `and` > `or`.
//!
//! Errors carry a byte offset, turned into a character position only when the detail is written.
//! Limits are checked as the parser goes, so recursion and work stay bounded on hostile input.

use std::borrow::Cow;
use std::fmt;
use std::iter::Peekable;
use std::vec;

use super::{nesting, CompareOp, Filter, Literal, PatchPath, MAX_COMPARISONS, MAX_DEPTH, MAX_LEN};
use crate::scim::path::AttrPath;

/// A `filter` parameter: the whole text is one filter.
pub(super) fn filter(text: &str) -> Result<Filter, SyntaxError> {
    let mut parser = Parser::new(text, "filter")?;
    if parser.tokens.peek().is_none() {
        return Err(SyntaxError::whole("the filter is empty"));
    }
    let filter = parser.parse_or()?;
    parser.finish("'and', 'or' or the end of the filter")?;
    check_canonical(&filter)?;
    Ok(filter)
}

/// A PATCH `path`. Errors inside `[…]` are marked as value-filter errors; a string literal can
/// only stand inside the brackets, so a lexical error after the first `[` is one too.
pub(super) fn patch_path(text: &str) -> Result<PatchPath, SyntaxError> {
    let bracket = text.find('[').unwrap_or(text.len());
    let mut parser = Parser::new(text, "path").map_err(|e| match e.offset {
        Some(offset) if offset > bracket => e.in_value_filter(),
        _ => e,
    })?;
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
    let filter = parser
        .bracketed(open.start)
        .map_err(SyntaxError::in_value_filter)?;
    let sub = match parser.tokens.next_if(is_sub_attr) {
        Some(dot) => Some(sub_attr_name(&dot)?),
        None => None,
    };
    parser.finish("a sub-attribute ('.value') or the end of the path")?;
    check_canonical(&filter).map_err(SyntaxError::in_value_filter)?;
    let path = PatchPath {
        attr,
        filter: Some(filter),
        sub,
    };
    // The printed form must parse back (found by fuzzing: control characters in a bare value
    // print as \u escapes and could push the path past the length limit).
    let len = path.to_string().len();
    if len > MAX_LEN {
        return Err(SyntaxError::whole(format!(
            "the path is {len} bytes long once normalised; at most {MAX_LEN} are accepted"
        ))
        .in_value_filter());
    }
    Ok(path)
}

/// A syntax error at a byte offset (or in the text as a whole). It becomes `invalidFilter` or
/// `invalidPath` at the public edge, depending on what was being parsed.
#[derive(Debug)]
pub(super) struct SyntaxError {
    offset: Option<usize>,
    message: String,
    /// Found inside the `[…]` of a PATCH path.
    pub(super) in_value_filter: bool,
}

impl SyntaxError {
    fn at(offset: usize, message: impl Into<String>) -> Self {
        SyntaxError {
            offset: Some(offset),
            message: message.into(),
            in_value_filter: false,
        }
    }

    fn whole(message: impl Into<String>) -> Self {
        SyntaxError {
            offset: None,
            message: message.into(),
            in_value_filter: false,
        }
    }

    fn in_value_filter(self) -> Self {
        SyntaxError {
            in_value_filter: true,
            ..self
        }
    }

    /// The client-facing detail. Positions count characters, not bytes, so they match what the
    /// administrator sees in a log line that contains non-ASCII names.
    pub(super) fn detail(&self, text: &str) -> String {
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

pub(super) fn is_delimiter(c: char) -> bool {
    c.is_ascii_whitespace() || matches!(c, '(' | ')' | '[' | ']' | '"')
}

fn lex(text: &str) -> Result<Vec<Token<'_>>, SyntaxError> {
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
        if text.len() > MAX_LEN {
            return Err(SyntaxError::whole(format!(
                "the {subject} is {} bytes long; at most {MAX_LEN} are accepted",
                text.len()
            )));
        }
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
                self.depth = self.depth.saturating_sub(1);
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

pub(super) fn is_keyword(word: &str) -> bool {
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
pub(super) fn word_literal(word: &str, start: usize) -> Result<Literal, SyntaxError> {
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
        // A keyword would not parse back once the test moves inside the brackets.
        Ok(p) if p.urn.is_none() && p.sub.is_none() && !is_keyword(&p.name) => Ok(p.name),
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
