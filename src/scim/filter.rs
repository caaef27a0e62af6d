//! SCIM filters (RFC 7644 §3.4.2.2): parse text into an AST, print it back, evaluate it in
//! memory; and PATCH paths (§3.5.2), which embed the same value filters.
//!
//! Pure code: no I/O, no SQL. `store::query` compiles the same AST to parameterized SQL; the PATCH
//! engine uses [`parse_patch_path`] and [`matches_element`] to find the elements a path selects.
//! This file holds the AST (the contract), the entry points and the canonical printer;
//! `parse.rs` the grammar, `eval.rs` in-memory evaluation.
//!
//! Beyond the RFC grammar the parser accepts what Microsoft Entra ID sends:
//! * `emails[type eq "work"].value eq "x"`, read as `emails[type eq "work" and value eq "x"]`
//!   (one element with both properties, which is what Entra means);
//! * bare values (`externalId eq jyoung`, `id eq 54D3… and manager eq 2819…`): a word that is not
//!   `true`/`false`/`null` or a JSON number is a string;
//! * keywords in any case (`EQ`, `And`, `Not(`).
//!
//! Hostile input is bounded ([`MAX_LEN`], [`MAX_DEPTH`], [`MAX_COMPARISONS`]) and never makes the
//! parser panic; every error detail says where the problem is, counted in characters from 0.
//! Printing is canonical: `parse(&f.to_string()) == Ok(f)` for every `f` that `parse` returns.

use std::fmt;

use super::error::ScimError;
use super::path::AttrPath;

mod eval;
mod parse;
#[cfg(test)]
mod tests;

pub use eval::{matches, matches_element};

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

/// Parse a `filter` query parameter (already URL-decoded: `+` is not special here).
///
/// Every error is `invalidFilter` with a detail such as
/// `at position 9: expected an operator after 'userName', found 'equals'`.
pub fn parse(text: &str) -> Result<Filter, ScimError> {
    parse::filter(text).map_err(|e| ScimError::invalid_filter(e.detail(text)))
}

/// Parse a PATCH operation's `path`: `userName`, `name.givenName`, `urn:…:User:manager.value`,
/// `emails[type eq "work"]`, `emails[type eq "work"].value`.
///
/// RFC 7644 §3.12 Table 9 gives `invalidFilter` for "PATCH (Path Filter - Section 3.5.2)" and
/// `invalidPath` for a "path" that "was invalid or malformed": an error inside `[…]` (including
/// an unclosed `[`) is `invalidFilter`, any other error `invalidPath`.
pub fn parse_patch_path(text: &str) -> Result<PatchPath, ScimError> {
    parse::patch_path(text).map_err(|e| {
        let detail = e.detail(text);
        if e.in_value_filter {
            ScimError::invalid_filter(detail)
        } else {
            ScimError::invalid_path(detail)
        }
    })
}

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
