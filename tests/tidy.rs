#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Tidy: the layering and documentation invariants of `ARCHITECTURE.md`, checked as text on
//! every `cargo test` (after rust-analyzer's tidy test). Std only: a small Rust lexer
//! splits each file into code, comments and string literals, and each rule is a plain function
//! over a file's path and text that returns its violations.
//!
//! | rule | fails when |
//! |---|---|
//! | `scim-pure` | a file under `src/scim/` names (in a `use` or an inline path) anything but `crate::scim`, `super`/`self` within scim, or a crate of [`SCIM_CRATES`] (`proptest` only in test code) |
//! | `sql-in-store` | a string literal in a `.rs` file under `src/` but outside `src/store/` holds SQL |
//! | `no-http-back-arrow` | a file of [`BELOW_HTTP`] names `crate::http` or `super::http` |
//! | `module-docs` | a `.rs` file under `src/`, `tests/`, `benches/`, `examples/` or `fuzz/` does not start with a `//!` module doc |
//! | `links-exist` | a comment (Rust, or `#` in scripts and TOML) or a markdown file names a repository path that does not exist, the reference notes outside the repository, or a numbered section, quirk or issue of a document the repository does not have |
//! | `file-length` | (reported, never fails) a file under `src/` is longer than [`MAX_LINES`] lines |
//!
//! Every rule has unit tests below that feed it a violating and a clean fixture; then one test
//! per rule runs it over the tree and fails listing every violation as `file:line: [rule] …`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::path::Path;

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// The crates `src/scim/` may name, each with why it is pure enough for the protocol layer.
const SCIM_CRATES: &[(&str, &str)] = &[
    ("std", "the standard library"),
    ("core", "the standard library"),
    ("alloc", "the standard library"),
    ("serde", "data model only (derives), no I/O"),
    (
        "serde_json",
        "SCIM documents are JSON values; parsing and building them is pure",
    ),
];

/// Crates `src/scim/` may name only in test code (`#[cfg(test)]` modules and the files they
/// declare): dev-dependencies.
const SCIM_TEST_CRATES: &[(&str, &str)] = &[("proptest", "property tests of the parser and PATCH")];

/// Tool namespaces of attributes (`#[rustfmt::skip]`, `#[allow(clippy::…)]`): not crates.
const TOOL_NAMESPACES: &[&str] = &["rustfmt", "clippy"];

/// Primitive types, whose associated items (`u64::MAX`, `str::from_utf8`) look like paths.
const PRIMITIVES: &[&str] = &[
    "bool", "char", "str", "f32", "f64", "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16",
    "u32", "u64", "u128", "usize",
];

/// The modules below `http` in the layering: none of them may name `crate::http`. A path ending
/// in `/` is a directory (every file under it).
const BELOW_HTTP: &[&str] = &[
    "src/gallery/",
    "src/app.rs",
    "src/maintenance.rs",
    "src/config.rs",
    "src/lock.rs",
    "src/fsutil.rs",
    "src/lifecycle.rs",
    "src/store/",
    "src/scim/",
    "src/auth/",
    "src/telemetry/",
];

/// Rule `file-length`: longer files are reported (not failed).
const MAX_LINES: usize = 800;

/// Files exempt from `file-length`: data tables, long by nature.
const LONG_FILES_ALLOWED: &[&str] = &["src/scim/schema.rs"];

/// File extensions that make a word in a comment a repository path.
const PATH_EXTENSIONS: &[&str] = &["md", "rs", "sql", "toml", "py"];

/// Top-level directories that make a word in a comment a repository path.
const PATH_DIRS: &[&str] = &[
    "src/",
    "tests/",
    "benches/",
    "examples/",
    "scripts/",
    "packaging/",
    "docs/",
    "migrations/",
    "config/",
    "fuzz/",
    ".cargo/",
    ".ci/",
];

/// Words naming the reference notes that live outside the repository; the repository cites
/// `docs/entra-id-behaviour.md` instead.
const OUTSIDE_NOTES: &[&str] = &["../shared", "shared/reference", "entra-scim-behaviour.md"];

/// Directories never walked: build output and the ignored working files of tools.
const SKIP_DIRS: &[&str] = &[
    ".git",
    "target",
    ".venv",
    "grouptalk-scim-dev",
    "fuzz/target",
    "fuzz/corpus",
    "fuzz/artifacts",
    "fuzz/coverage",
    "fuzz/logs",
];

// ---------------------------------------------------------------------------------------------
// Violations
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Violation {
    file: String,
    line: usize,
    rule: &'static str,
    message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: [{}] {}",
            self.file, self.line, self.rule, self.message
        )
    }
}

fn violation(file: &str, line: usize, rule: &'static str, message: String) -> Violation {
    Violation {
        file: file.to_string(),
        line,
        rule,
        message,
    }
}

// ---------------------------------------------------------------------------------------------
// Lexer: code, comments and string literals
// ---------------------------------------------------------------------------------------------

/// A Rust file split into what the rules look at.
struct Lexed {
    /// The source with every comment and string or char literal replaced by spaces (newlines
    /// kept, so line numbers still match the file).
    code: String,
    /// String literals (plain, raw, byte, C): the line of the opening quote and the text between
    /// the quotes, escapes as written.
    strings: Vec<(usize, String)>,
    /// Comments, one entry per line: the line and its text including the `//` or `/*` marker.
    comments: Vec<(usize, String)>,
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_ident_continue(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn lex(src: &str) -> Lexed {
    let c: Vec<char> = src.chars().collect();
    let n = c.len();
    let mut out = Lexed {
        code: String::with_capacity(src.len()),
        strings: Vec::new(),
        comments: Vec::new(),
    };
    let mut line = 1;
    // Blanks c[a..b] into `code`, advancing `line`; returns the text.
    let blank = |out: &mut Lexed, line: &mut usize, a: usize, b: usize| -> String {
        let text: String = c[a..b].iter().collect();
        for &ch in &c[a..b] {
            if ch == '\n' {
                out.code.push('\n');
                *line += 1;
            } else {
                out.code.push(' ');
            }
        }
        text
    };
    // The end (exclusive) of a plain string whose opening quote is at q.
    let plain_end = |q: usize| -> usize {
        let mut j = q + 1;
        while j < n {
            match c[j] {
                '\\' => j += 2,
                '"' => return j + 1,
                _ => j += 1,
            }
        }
        n
    };
    let mut i = 0;
    while i < n {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        if ch == '/' && next == Some('/') {
            let mut j = i;
            while j < n && c[j] != '\n' {
                j += 1;
            }
            let at = line;
            let text = blank(&mut out, &mut line, i, j);
            out.comments.push((at, text));
            i = j;
        } else if ch == '/' && next == Some('*') {
            let mut j = i;
            let mut depth = 0usize;
            while j < n {
                if c[j] == '/' && c.get(j + 1) == Some(&'*') {
                    depth += 1;
                    j += 2;
                } else if c[j] == '*' && c.get(j + 1) == Some(&'/') {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            let j = j.min(n);
            let at = line;
            let text = blank(&mut out, &mut line, i, j);
            for (k, l) in text.split('\n').enumerate() {
                out.comments.push((at + k, l.to_string()));
            }
            i = j;
        } else if ch == '"' {
            let end = plain_end(i);
            let at = line;
            let text = blank(&mut out, &mut line, i, end);
            out.strings.push((at, inner(&text, 1, 1)));
            i = end;
        } else if is_ident_start(ch) {
            let mut j = i;
            while j < n && is_ident_continue(c[j]) {
                j += 1;
            }
            let word: String = c[i..j].iter().collect();
            let after = c.get(j).copied();
            if matches!(word.as_str(), "r" | "br" | "cr") && matches!(after, Some('"' | '#')) {
                let mut k = j;
                while c.get(k) == Some(&'#') {
                    k += 1;
                }
                let hashes = k - j;
                if c.get(k) == Some(&'"') {
                    let mut e = k + 1;
                    while e < n
                        && !(c[e] == '"' && (1..=hashes).all(|h| c.get(e + h) == Some(&'#')))
                    {
                        e += 1;
                    }
                    let end = (e + 1 + hashes).min(n);
                    let at = line;
                    let text = blank(&mut out, &mut line, i, end);
                    let open = word.len() + hashes + 1;
                    out.strings.push((at, inner(&text, open, 1 + hashes)));
                    i = end;
                    continue;
                }
                // `r#ident`: a raw identifier, copied as code.
            }
            if matches!(word.as_str(), "b" | "c") && after == Some('"') {
                let end = plain_end(j);
                let at = line;
                let text = blank(&mut out, &mut line, i, end);
                out.strings.push((at, inner(&text, word.len() + 1, 1)));
                i = end;
                continue;
            }
            if word == "b" && after == Some('\'') {
                let end = char_end(&c, j).unwrap_or(j + 1);
                blank(&mut out, &mut line, i, end);
                i = end;
                continue;
            }
            out.code.push_str(&word);
            i = j;
        } else if ch == '\'' {
            match char_end(&c, i) {
                Some(end) => {
                    blank(&mut out, &mut line, i, end);
                    i = end;
                }
                None => {
                    // A lifetime or a label.
                    out.code.push('\'');
                    i += 1;
                }
            }
        } else {
            if ch == '\n' {
                line += 1;
            }
            out.code.push(ch);
            i += 1;
        }
    }
    out
}

/// The end (exclusive) of a char literal whose quote is at q, or None for a lifetime.
fn char_end(c: &[char], q: usize) -> Option<usize> {
    match c.get(q + 1) {
        Some('\\') => {
            let mut j = q + 3;
            while j < c.len() && c[j] != '\'' {
                j += 1;
            }
            Some((j + 1).min(c.len()))
        }
        Some(_) if c.get(q + 2) == Some(&'\'') => Some(q + 3),
        _ => None,
    }
}

/// `text` without `open` chars in front and `close` chars at the end.
fn inner(text: &str, open: usize, close: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    let end = chars.len().saturating_sub(close).max(open.min(chars.len()));
    chars[open.min(chars.len())..end].iter().collect()
}

// ---------------------------------------------------------------------------------------------
// Tokens, module contexts and paths
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    /// A number: never the start of a path.
    Number,
    PathSep,
    Punct(char),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
}

fn tokenize(code: &str) -> Vec<Token> {
    let c: Vec<char> = code.chars().collect();
    let mut toks = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if is_ident_continue(ch) {
            let mut j = i;
            while j < c.len() && is_ident_continue(c[j]) {
                j += 1;
            }
            let word: String = c[i..j].iter().collect();
            let tok = if is_ident_start(ch) {
                Tok::Ident(word)
            } else {
                Tok::Number
            };
            toks.push(Token { tok, line });
            i = j;
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            toks.push(Token {
                tok: Tok::PathSep,
                line,
            });
            i += 2;
        } else {
            toks.push(Token {
                tok: Tok::Punct(ch),
                line,
            });
            i += 1;
        }
    }
    toks
}

fn ident(t: Option<&Token>) -> Option<&str> {
    match t.map(|t| &t.tok) {
        Some(Tok::Ident(s)) => Some(s.as_str()),
        _ => None,
    }
}

fn is_punct(t: Option<&Token>, p: char) -> bool {
    matches!(t.map(|t| &t.tok), Some(Tok::Punct(q)) if *q == p)
}

fn is_sep(t: Option<&Token>) -> bool {
    matches!(t.map(|t| &t.tok), Some(Tok::PathSep))
}

/// The module a file is, as a path from the crate root: `src/scim/filter/parse.rs` →
/// `scim::filter::parse`; `src/store/mod.rs` → `store`; `src/lib.rs` → the root.
fn module_path(file: &str) -> Vec<String> {
    let rel = file.strip_prefix("src/").unwrap_or(file);
    let rel = rel.strip_suffix(".rs").unwrap_or(rel);
    let mut parts: Vec<String> = rel.split('/').map(str::to_string).collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// A file's code as tokens, each with the module it is in (inline `mod x { … }` included) and
/// whether that is test code (`#[cfg(test)]`, or a file declared under one).
struct Parsed {
    toks: Vec<Token>,
    /// Per token: index into `contexts`.
    ctx_of: Vec<usize>,
    /// (module path, test code).
    contexts: Vec<(Vec<String>, bool)>,
    /// `#[cfg(test)] mod name;`: child files that are test code.
    test_children: BTreeSet<String>,
    /// Every `mod name` of the file (inline or not).
    mods: BTreeSet<String>,
}

/// Whether the attributes right before token `at` (skipping a visibility) include `cfg(test)`.
fn has_cfg_test_before(toks: &[Token], at: usize) -> bool {
    let mut i = at;
    // Skip `pub`, `pub(crate)`, `pub(in a::b)`.
    if i > 0 && is_punct(toks.get(i - 1), ')') {
        let mut j = i - 1;
        while j > 0 && !is_punct(toks.get(j), '(') {
            j -= 1;
        }
        if j > 0 && ident(toks.get(j - 1)) == Some("pub") {
            i = j - 1;
        }
    } else if i > 0 && ident(toks.get(i - 1)) == Some("pub") {
        i -= 1;
    }
    // Walk back over `#[…]` groups.
    while i > 0 && is_punct(toks.get(i - 1), ']') {
        let close = i - 1;
        let mut depth = 0i32;
        let mut j = close;
        loop {
            if is_punct(toks.get(j), ']') {
                depth += 1;
            } else if is_punct(toks.get(j), '[') {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            if j == 0 {
                return false;
            }
            j -= 1;
        }
        let body = &toks[j + 1..close];
        if ident(body.first()) == Some("cfg")
            && body.iter().any(|t| t.tok == Tok::Ident("test".into()))
        {
            return true;
        }
        if j == 0 || !is_punct(toks.get(j - 1), '#') {
            return false;
        }
        i = j - 1;
    }
    false
}

fn parse(file: &str, code: &str, file_is_test: bool) -> Parsed {
    let toks = tokenize(code);
    let mut contexts = vec![(module_path(file), file_is_test)];
    let mut ctx_of = Vec::with_capacity(toks.len());
    let mut test_children = BTreeSet::new();
    let mut mods = BTreeSet::new();
    // (context, brace depth at which it closes)
    let mut stack: Vec<(usize, usize)> = vec![(0, 0)];
    let mut depth = 0usize;
    let mut pending: Option<usize> = None;
    for (i, t) in toks.iter().enumerate() {
        let cur = stack.last().map(|s| s.0).unwrap_or(0);
        ctx_of.push(cur);
        match &t.tok {
            Tok::Ident(kw) if kw == "mod" => {
                if let Some(name) = ident(toks.get(i + 1)) {
                    mods.insert(name.to_string());
                    let test = has_cfg_test_before(&toks, i);
                    if is_punct(toks.get(i + 2), '{') {
                        let (path, parent_test) = contexts[cur].clone();
                        let mut path = path;
                        path.push(name.to_string());
                        contexts.push((path, parent_test || test));
                        pending = Some(contexts.len() - 1);
                    } else if test {
                        test_children.insert(name.to_string());
                    }
                }
            }
            Tok::Punct('{') => {
                depth += 1;
                if let Some(ctx) = pending.take() {
                    stack.push((ctx, depth));
                }
            }
            Tok::Punct('}') => {
                if stack.len() > 1 && stack.last().map(|s| s.1) == Some(depth) {
                    stack.pop();
                }
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
    }
    Parsed {
        toks,
        ctx_of,
        contexts,
        test_children,
        mods,
    }
}

/// One path of a flattened `use` tree: `use a::{b, c as d};` → `a::b` (binds `b`), `a::c`
/// (binds `d`). A leading `::` is kept as an empty first segment.
#[derive(Debug, Clone, PartialEq, Eq)]
struct UsePath {
    segs: Vec<String>,
    binds: Option<String>,
}

fn flatten_use(toks: &[Token]) -> Vec<UsePath> {
    let mut out = Vec::new();
    let mut pos = 0;
    let mut prefix = Vec::new();
    if is_sep(toks.first()) {
        prefix.push(String::new());
        pos = 1;
    }
    use_tree(toks, &mut pos, &mut prefix, &mut out);
    out
}

fn use_tree(toks: &[Token], pos: &mut usize, prefix: &mut Vec<String>, out: &mut Vec<UsePath>) {
    let depth = prefix.len();
    loop {
        match toks.get(*pos).map(|t| &t.tok) {
            Some(Tok::PathSep) => *pos += 1,
            Some(Tok::Ident(s)) => {
                prefix.push(s.clone());
                *pos += 1;
                if is_sep(toks.get(*pos)) {
                    continue;
                }
                let mut segs = prefix.clone();
                if segs.last().map(String::as_str) == Some("self") && segs.len() > 1 {
                    segs.pop();
                }
                let mut binds = segs.last().cloned();
                if ident(toks.get(*pos)) == Some("as") {
                    binds = ident(toks.get(*pos + 1)).map(str::to_string);
                    *pos += 2;
                }
                out.push(UsePath { segs, binds });
                break;
            }
            Some(Tok::Punct('*')) => {
                *pos += 1;
                let mut segs = prefix.clone();
                segs.push("*".into());
                out.push(UsePath { segs, binds: None });
                break;
            }
            Some(Tok::Punct('{')) => {
                *pos += 1;
                loop {
                    match toks.get(*pos).map(|t| &t.tok) {
                        None => break,
                        Some(Tok::Punct('}')) => {
                            *pos += 1;
                            break;
                        }
                        Some(Tok::Punct(',')) => *pos += 1,
                        _ => {
                            let before = *pos;
                            use_tree(toks, pos, prefix, out);
                            if *pos == before {
                                *pos += 1;
                            }
                        }
                    }
                }
                break;
            }
            _ => break,
        }
    }
    prefix.truncate(depth);
}

/// A path written in a file: in a `use` (flattened) or inline in code.
#[derive(Debug, Clone)]
struct PathRef {
    line: usize,
    /// Its segments as written (a leading `::` is an empty first segment).
    segs: Vec<String>,
    /// The module it is written in, and whether that is test code.
    module: Vec<String>,
    test: bool,
    in_use: bool,
    /// An inline path whose first segment takes a turbofish (`size_of::<T>()`): a function.
    turbofish: bool,
}

/// Every path in the file, and the names its `use`s, `mod`s and `extern crate`s bind.
fn paths(parsed: &Parsed) -> (Vec<PathRef>, BTreeSet<String>) {
    let toks = &parsed.toks;
    let mut refs = Vec::new();
    let mut bound: BTreeSet<String> = parsed.mods.clone();
    let mut i = 0;
    while i < toks.len() {
        let (module, test) = parsed.contexts[parsed.ctx_of[i]].clone();
        let prev = if i > 0 { toks.get(i - 1) } else { None };
        let after_dot = is_punct(prev, '.') || is_punct(prev, '$') || is_punct(prev, '\'');
        match ident(toks.get(i)) {
            Some("use") if !after_dot && !is_sep(prev) => {
                let mut j = i + 1;
                while j < toks.len() && !is_punct(toks.get(j), ';') {
                    j += 1;
                }
                for p in flatten_use(&toks[i + 1..j]) {
                    if let Some(b) = &p.binds {
                        bound.insert(b.clone());
                    }
                    refs.push(PathRef {
                        line: toks[i].line,
                        segs: p.segs,
                        module: module.clone(),
                        test,
                        in_use: true,
                        turbofish: false,
                    });
                }
                i = j + 1;
                continue;
            }
            Some("extern") if ident(toks.get(i + 1)) == Some("crate") => {
                if let Some(name) = ident(toks.get(i + 2)) {
                    let binds = if ident(toks.get(i + 3)) == Some("as") {
                        ident(toks.get(i + 4))
                    } else {
                        Some(name)
                    };
                    bound.extend(binds.map(str::to_string));
                    refs.push(PathRef {
                        line: toks[i].line,
                        segs: vec![String::new(), name.to_string()],
                        module: module.clone(),
                        test,
                        in_use: true,
                        turbofish: false,
                    });
                }
                i += 3;
                continue;
            }
            _ => {}
        }
        let leading = is_sep(toks.get(i))
            && !matches!(
                prev.map(|t| &t.tok),
                Some(Tok::Ident(_)) | Some(Tok::Punct('>'))
            )
            && ident(toks.get(i + 1)).is_some();
        let start =
            ident(toks.get(i)).is_some() && is_sep(toks.get(i + 1)) && !is_sep(prev) && !after_dot;
        if leading || start {
            let mut segs = Vec::new();
            let mut j = i;
            if leading {
                segs.push(String::new());
                j += 1;
            }
            while let Some(s) = ident(toks.get(j)) {
                segs.push(s.to_string());
                if is_sep(toks.get(j + 1)) {
                    j += 2;
                } else {
                    j += 1;
                    break;
                }
            }
            let turbofish = !leading && is_punct(toks.get(i + 2), '<');
            refs.push(PathRef {
                line: toks[i].line,
                segs,
                module,
                test,
                in_use: false,
                turbofish,
            });
            i = j.max(i + 1);
            continue;
        }
        i += 1;
    }
    (refs, bound)
}

/// The absolute path (from the crate root) of a path starting with `crate`, `super` or `self`,
/// written in `module`; None for anything else. `Err` when `super` climbs above the root.
fn resolve(segs: &[String], module: &[String]) -> Option<Result<Vec<String>, ()>> {
    let first = segs.first()?.as_str();
    let mut abs: Vec<String> = match first {
        "crate" => Vec::new(),
        "super" | "self" => module.to_vec(),
        _ => return None,
    };
    let mut rest = &segs[1..];
    if first == "super" && abs.pop().is_none() {
        return Some(Err(()));
    }
    while let Some(s) = rest.first() {
        match s.as_str() {
            "super" => {
                if abs.pop().is_none() {
                    return Some(Err(()));
                }
            }
            "self" => {}
            _ => break,
        }
        rest = &rest[1..];
    }
    abs.extend(rest.iter().cloned());
    Some(Ok(abs))
}

// ---------------------------------------------------------------------------------------------
// Rule 1 `scim-pure`
// ---------------------------------------------------------------------------------------------

/// `src/scim/` names nothing outside `crate::scim` but the crates of [`SCIM_CRATES`] (and of
/// [`SCIM_TEST_CRATES`] in test code). `inherited`: names a `use super::*` brings in from the
/// parent module's file; `file_is_test`: the file is declared under `#[cfg(test)]`.
fn check_scim_pure(
    file: &str,
    text: &str,
    file_is_test: bool,
    inherited: &BTreeSet<String>,
) -> Vec<Violation> {
    let lexed = lex(text);
    let parsed = parse(file, &lexed.code, file_is_test);
    let (refs, bound) = paths(&parsed);
    let mut out = Vec::new();
    for r in refs {
        let shown = r.segs.join("::");
        let what = if r.in_use { "use" } else { "path" };
        let Some(first) = r.segs.first().map(String::as_str) else {
            continue;
        };
        if let Some(res) = resolve(&r.segs, &r.module) {
            match res {
                Err(()) => out.push(violation(
                    file,
                    r.line,
                    "scim-pure",
                    format!("{what} `{shown}` climbs above the crate root"),
                )),
                Ok(abs) if abs.first().is_some_and(|s| s != "scim") => out.push(violation(
                    file,
                    r.line,
                    "scim-pure",
                    format!(
                        "{what} `{shown}` leaves `crate::scim` (it is `crate::{}`): scim is pure",
                        abs.join("::")
                    ),
                )),
                Ok(_) => {}
            }
            continue;
        }
        let (name, absolute) = if first.is_empty() {
            (r.segs.get(1).map(String::as_str).unwrap_or(""), true)
        } else {
            (first, false)
        };
        let allowed = SCIM_CRATES.iter().any(|(c, _)| *c == name);
        let test_only = SCIM_TEST_CRATES.iter().any(|(c, _)| *c == name);
        if allowed || (test_only && r.test) {
            continue;
        }
        if test_only {
            out.push(violation(
                file,
                r.line,
                "scim-pure",
                format!("{what} `{shown}`: `{name}` is a dev-dependency, allowed in scim's test code only"),
            ));
            continue;
        }
        if !absolute {
            let local = name.starts_with(|c: char| c.is_uppercase())
                || PRIMITIVES.contains(&name)
                || TOOL_NAMESPACES.contains(&name)
                || bound.contains(name)
                || inherited.contains(name)
                || r.turbofish
                || name == "Self";
            if local {
                continue;
            }
        }
        out.push(violation(
            file,
            r.line,
            "scim-pure",
            format!(
                "{what} `{shown}` names `{name}`, which is not a crate scim may use ({}) nor a name bound in this file",
                SCIM_CRATES.iter().map(|c| c.0).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    out
}

/// What the `use`s and `mod`s of a file bind, and whether it has `use super::*`.
fn bindings(file: &str, text: &str) -> (BTreeSet<String>, bool, BTreeSet<String>) {
    let lexed = lex(text);
    let parsed = parse(file, &lexed.code, false);
    let (refs, bound) = paths(&parsed);
    let top = module_path(file);
    let glob = refs
        .iter()
        .any(|r| r.in_use && r.module == top && r.segs == ["super".to_string(), "*".to_string()]);
    (bound, glob, parsed.test_children)
}

// ---------------------------------------------------------------------------------------------
// Rule 2 `sql-in-store`
// ---------------------------------------------------------------------------------------------

/// Words of a literal: identifiers and single punctuation characters; escapes (`\n`, a `\` line
/// continuation) are whitespace.
fn words(lit: &str) -> Vec<String> {
    let lit = lit
        .replace("\\n", " ")
        .replace("\\t", " ")
        .replace("\\r", " ")
        .replace("\\\n", " ");
    let mut out = Vec::new();
    let mut cur = String::new();
    for ch in lit.chars() {
        if is_ident_continue(ch) {
            cur.push(ch);
        } else {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            if !ch.is_whitespace() && ch != '\\' {
                out.push(ch.to_string());
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// SQL in a string literal: the name of the pattern it matched, or None.
///
/// A keyword pattern matches written in capitals anywhere in the literal (`"… SELECT x FROM
/// t"`), or in any case when the literal starts with it and has a sign of SQL (`?`, `=`, `*`, or
/// a `WHERE`/`VALUES`/`JOIN`/`ORDER BY`/`GROUP BY`/`LIMIT` word): English (`"select one"`,
/// `"update the settings"`, `"the writer's COMMIT"`) matches neither. Transaction statements
/// (`"BEGIN"`, `"COMMIT"`, `"SAVEPOINT sp"`) are the whole literal, in capitals. SQLite's JSON
/// functions (`json_extract(`) match in any case, anywhere.
fn sql_in_literal(lit: &str) -> Option<&'static str> {
    let w = words(lit);
    let upper: Vec<String> = w.iter().map(|s| s.to_ascii_uppercase()).collect();
    let is_word = |s: &str| !s.is_empty() && s.chars().all(is_ident_continue);
    let caps = |s: &str| {
        s.chars().any(|c| c.is_ascii_uppercase()) && !s.chars().any(|c| c.is_ascii_lowercase())
    };
    let lower_lit = lit.to_ascii_lowercase();
    for f in [
        "json_extract(",
        "json_each(",
        "json_tree(",
        "json_set(",
        "json_insert(",
        "json_replace(",
        "json_remove(",
        "json_patch(",
        "json_group_array(",
        "json_group_object(",
    ] {
        if lower_lit.contains(f) {
            return Some("an SQLite JSON function");
        }
    }
    // Statements that are the whole literal (`"BEGIN"`, `"COMMIT"`, `"SAVEPOINT sp"`).
    let stmt: Vec<&String> = w.iter().filter(|s| s.as_str() != ";").collect();
    if let Some(first) = stmt.first().filter(|f| caps(f)) {
        let tx = ["DEFERRED", "IMMEDIATE", "EXCLUSIVE", "TRANSACTION"];
        if matches!(first.as_str(), "BEGIN" | "COMMIT" | "END" | "ROLLBACK")
            && stmt[1..].iter().all(|s| tx.contains(&s.as_str()))
            && (first.as_str() != "END" || stmt.len() > 1)
        {
            return Some("a transaction statement (BEGIN/COMMIT/ROLLBACK)");
        }
        let sp = match first.as_str() {
            "SAVEPOINT" => 1,
            "RELEASE" if stmt.get(1).map(|s| s.as_str()) == Some("SAVEPOINT") => 2,
            "RELEASE" => 1,
            "ROLLBACK" if stmt.get(1).map(|s| s.as_str()) == Some("TO") => {
                if stmt.get(2).map(|s| s.as_str()) == Some("SAVEPOINT") {
                    3
                } else {
                    2
                }
            }
            _ => 0,
        };
        if sp > 0 && stmt.len() == sp + 1 && is_word(stmt[sp]) {
            return Some("a savepoint statement");
        }
    }
    let signs = lit.contains(['?', '=', '*'])
        || upper
            .iter()
            .any(|s| matches!(s.as_str(), "WHERE" | "VALUES" | "JOIN" | "LIMIT"))
        || upper
            .windows(2)
            .any(|p| (p[0] == "ORDER" || p[0] == "GROUP") && p[1] == "BY");
    // Keyword sequences; `…` is any words, `_` one to three identifiers (a table name,
    // `OR IGNORE t`). The flag: may match in lower case at the start without a sign of SQL.
    let patterns: &[(&[&str], &str, bool)] = &[
        (&["SELECT", "…", "FROM"], "SELECT … FROM", false),
        (&["INSERT", "INTO"], "INSERT INTO", false),
        (&["INSERT", "OR", "_", "INTO"], "INSERT OR … INTO", false),
        (&["REPLACE", "INTO"], "REPLACE INTO", false),
        (&["UPDATE", "_", "SET"], "UPDATE … SET", false),
        (&["DELETE", "FROM"], "DELETE FROM", false),
        (&["CREATE", "TABLE"], "CREATE TABLE", false),
        (&["CREATE", "INDEX"], "CREATE INDEX", false),
        (&["CREATE", "UNIQUE", "INDEX"], "CREATE UNIQUE INDEX", false),
        (&["CREATE", "TEMP", "TABLE"], "CREATE TEMP TABLE", false),
        (&["CREATE", "VIEW"], "CREATE VIEW", false),
        (&["CREATE", "TRIGGER"], "CREATE TRIGGER", false),
        (&["DROP", "TABLE"], "DROP TABLE", false),
        (&["DROP", "INDEX"], "DROP INDEX", false),
        (&["ALTER", "TABLE"], "ALTER TABLE", false),
        (&["PRAGMA", "_"], "PRAGMA", true),
        (&["VACUUM"], "VACUUM", false),
    ];
    for (pat, name, loose) in patterns {
        for start in 0..w.len() {
            let in_caps = |i: usize, k: &str| w.get(i).is_some_and(|s| s == k);
            if matches_at(&w, start, pat, &in_caps) {
                return Some(name);
            }
        }
        let any_case = |i: usize, k: &str| upper.get(i).is_some_and(|s| s == k);
        if (signs || *loose) && matches_at(&w, 0, pat, &any_case) {
            return Some(name);
        }
    }
    // A statement keyword in capitals opening the literal: `"SELECT 42"`, `"SELECT count(*) "`
    // (whose FROM is in the next literal of a `concat!`).
    if w.first().map(String::as_str) == Some("SELECT") && w.len() > 1 {
        return Some("SELECT");
    }
    None
}

/// Whether `pat` matches the words from `start`: `…` skips any words (at least one), `_` one to
/// three identifiers.
fn matches_at(w: &[String], start: usize, pat: &[&str], kw: &dyn Fn(usize, &str) -> bool) -> bool {
    fn go(w: &[String], i: usize, pat: &[&str], kw: &dyn Fn(usize, &str) -> bool) -> bool {
        let Some((&p, rest)) = pat.split_first() else {
            return true;
        };
        match p {
            "…" => (i + 1..=w.len()).any(|j| go(w, j, rest, kw)),
            "_" => (1..=3).any(|k| {
                i + k <= w.len()
                    && w[i..i + k].iter().all(|s| s.chars().all(is_ident_continue))
                    && go(w, i + k, rest, kw)
            }),
            k => kw(i, k) && go(w, i + 1, rest, kw),
        }
    }
    go(w, start, pat, kw)
}

/// Rule 2: SQL text in a string literal outside `src/store/`.
fn check_sql_in_store(file: &str, text: &str) -> Vec<Violation> {
    if !file.starts_with("src/") || file.starts_with("src/store/") {
        return Vec::new();
    }
    sql_literals(text)
        .into_iter()
        .map(|(line, pattern, lit)| {
            violation(
                file,
                line,
                "sql-in-store",
                format!("SQL ({pattern}) outside src/store/: \"{}\"", shorten(&lit)),
            )
        })
        .collect()
}

/// The string literals of a file that hold SQL: (line, pattern, literal).
fn sql_literals(text: &str) -> Vec<(usize, &'static str, String)> {
    lex(text)
        .strings
        .into_iter()
        .filter_map(|(line, lit)| sql_in_literal(&lit).map(|p| (line, p, lit)))
        .collect()
}

fn shorten(s: &str) -> String {
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > 70 {
        format!("{}…", one.chars().take(70).collect::<String>())
    } else {
        one
    }
}

// ---------------------------------------------------------------------------------------------
// Rule 3 `no-http-back-arrow`
// ---------------------------------------------------------------------------------------------

fn below_http(file: &str) -> bool {
    BELOW_HTTP.iter().any(|p| {
        if p.ends_with('/') {
            file.starts_with(p)
        } else {
            file == *p
        }
    })
}

/// Rule 3: a module below `http` names `crate::http` (or `super::http`), in a `use` or inline.
fn check_no_http_back_arrow(file: &str, text: &str) -> Vec<Violation> {
    if !below_http(file) {
        return Vec::new();
    }
    let lexed = lex(text);
    let parsed = parse(file, &lexed.code, false);
    let (refs, _) = paths(&parsed);
    let mut out = Vec::new();
    for r in refs {
        let literal_super = r.segs.len() > 1 && r.segs[0] == "super" && r.segs[1] == "http";
        let to_http = matches!(resolve(&r.segs, &r.module), Some(Ok(abs)) if abs.first().map(String::as_str) == Some("http"));
        if literal_super || to_http {
            out.push(violation(
                file,
                r.line,
                "no-http-back-arrow",
                format!(
                    "`{}` names the http layer from below it (http depends on this module, not the reverse)",
                    r.segs.join("::")
                ),
            ));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Rule 4 `module-docs`
// ---------------------------------------------------------------------------------------------

/// Rule 4: the file starts (after blank lines and `#![…]` inner attributes) with a `//!` (or
/// `/*!`) module doc.
fn check_module_docs(file: &str, text: &str) -> Vec<Violation> {
    let mut in_attr = false;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if in_attr {
            if t.ends_with(']') {
                in_attr = false;
            }
            continue;
        }
        if t.is_empty() {
            continue;
        }
        if t.starts_with("#![") {
            in_attr = !t.ends_with(']');
            continue;
        }
        if t.starts_with("//!") || t.starts_with("/*!") {
            return Vec::new();
        }
        return vec![violation(
            file,
            i + 1,
            "module-docs",
            format!(
                "the file does not start with a `//!` module doc (first line: `{}`)",
                shorten(t)
            ),
        )];
    }
    vec![violation(
        file,
        1,
        "module-docs",
        "empty file: no `//!` module doc".into(),
    )]
}

// ---------------------------------------------------------------------------------------------
// Rule 5 `links-exist`
// ---------------------------------------------------------------------------------------------

/// The repository's files and directories (relative, `/`-separated).
struct Tree {
    files: BTreeSet<String>,
    dirs: BTreeSet<String>,
}

impl Tree {
    fn new(files: impl IntoIterator<Item = String>) -> Tree {
        let files: BTreeSet<String> = files.into_iter().collect();
        let mut dirs = BTreeSet::new();
        for f in &files {
            let mut p = f.as_str();
            while let Some(i) = p.rfind('/') {
                p = &p[..i];
                dirs.insert(p.to_string());
            }
        }
        Tree { files, dirs }
    }

    fn has(&self, p: &str) -> bool {
        let p = p.trim_end_matches('/');
        self.files.contains(p) || self.dirs.contains(p)
    }

    /// Whether a path named in `from` exists: from the repository root, from `src/`, from the
    /// citing file's directory, or (for the codemap's `patch/elements.rs` and `filter.rs`, named
    /// under their module) as the tail of a repository path.
    fn resolves(&self, from: &str, p: &str) -> bool {
        let dir = from.rfind('/').map(|i| &from[..i]).unwrap_or("");
        let trimmed = p.trim_end_matches('/');
        if let Some(rel) = normalise(dir, trimmed) {
            if self.has(&rel) {
                return true;
            }
        }
        if self.has(trimmed) || self.has(&format!("src/{trimmed}")) {
            return true;
        }
        if trimmed.starts_with("../") || trimmed.starts_with("./") {
            return false;
        }
        let tail = format!("/{trimmed}");
        self.files
            .iter()
            .chain(self.dirs.iter())
            .any(|f| f.ends_with(&tail))
    }
}

/// `dir` + `p` with `.` and `..` applied; None if it climbs out of the repository.
fn normalise(dir: &str, p: &str) -> Option<String> {
    let mut parts: Vec<&str> = dir.split('/').filter(|s| !s.is_empty()).collect();
    for s in p.split('/') {
        match s {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    Some(parts.join("/"))
}

/// Generated files named in comments: they exist only after a run (see the `.gitignore`s).
const GENERATED: &[&str] = &["fuzz/runs.log", "fuzz/build.log"];

/// Names of concepts, not files of this repository (`an example rather than a build.rs`).
const CONCEPT_NAMES: &[&str] = &["build.rs"];

/// The words of a line that may be paths: split at spaces, quotes, brackets and punctuation,
/// `#anchor` and `:line` removed, markdown emphasis trimmed; words with a placeholder (`<id>`,
/// `$DIR`, `…`) or a scheme (`https://`) and absolute paths are not repository paths.
fn path_words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let split = |c: char| {
        c.is_whitespace()
            || matches!(
                c,
                '`' | '\'' | '"' | '(' | ')' | '[' | ']' | ',' | ';' | '|' | '=' | '{' | '}'
            )
    };
    for raw in line.split(split) {
        if raw.contains("://") {
            continue;
        }
        let w = raw.trim_matches('*');
        let w = w.split('#').next().unwrap_or("");
        let w = w.split(':').next().unwrap_or("");
        let w = w
            .trim_end_matches(['.', ',', ';', '!', '?'])
            .trim_matches('*');
        if w.is_empty() || w.starts_with(['/', '~', '-']) {
            continue;
        }
        if !w
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-' | '*'))
        {
            continue;
        }
        let body = w.trim_start_matches("./");
        let ext = body
            .rsplit_once('.')
            .map(|(stem, e)| {
                !stem.is_empty() && !stem.ends_with('/') && PATH_EXTENSIONS.contains(&e)
            })
            .unwrap_or(false);
        let dir = PATH_DIRS.iter().any(|d| body.starts_with(d));
        if ext || dir {
            out.push(w.to_string());
        }
    }
    out
}

/// Whether a word from [`path_words`] names a file of this repository (rather than a concept,
/// a runtime path like `dir/config.toml`, or a generated file), and the part to look up: a
/// glob's directory.
fn repo_path<'a>(w: &'a str, tree: &Tree) -> Option<&'a str> {
    let body = w.trim_start_matches("./");
    if SKIP_DIRS
        .iter()
        .any(|d| body == *d || body.starts_with(&format!("{d}/")))
        || GENERATED.contains(&body)
        || body.starts_with("target/")
        || body.contains("/target/")
        || CONCEPT_NAMES.contains(&body)
    {
        return None;
    }
    let w = match w.find('*') {
        Some(i) => w[..i].rsplit_once('/').map(|(d, _)| d)?,
        None => w,
    };
    let first = body
        .trim_start_matches("../")
        .split('/')
        .next()
        .unwrap_or("");
    let top = PATH_DIRS.iter().any(|d| body.starts_with(d));
    let known_dir = tree
        .dirs
        .iter()
        .any(|d| d == first || d.ends_with(&format!("/{first}")));
    (top || !body.trim_start_matches("../").contains('/') || known_dir || w.starts_with("../"))
        .then_some(w)
}

/// References by number into documents the repository does not have: the outside notes' quirk
/// numbers ("quirk" and a number) and section numbers (`§`, a number, then a letter or a
/// parenthesis; RFC sections are digits and dots only, `§3.5.2`), and issue numbers ("issue",
/// an optional `#`, a number) of a tracker not linked on the same line.
fn foreign_numbers(line: &str) -> Vec<String> {
    let lower = line.to_lowercase();
    let c: Vec<char> = lower.chars().collect();
    let mut out = Vec::new();
    let digits_at = |i: usize| {
        let mut j = i;
        while j < c.len() && c[j].is_ascii_digit() {
            j += 1;
        }
        j
    };
    let word_start = |i: usize| i == 0 || !c[i - 1].is_alphanumeric();
    let mut i = 0;
    while i < c.len() {
        let rest: String = c[i..].iter().take(7).collect();
        if word_start(i) && rest.starts_with("quirk ") {
            let end = digits_at(i + 6);
            if end > i + 6 {
                out.push(c[i..end].iter().collect());
                i = end;
                continue;
            }
        }
        if word_start(i) && rest.starts_with("issue ") && !lower.contains("://") {
            let start = if c.get(i + 6) == Some(&'#') {
                i + 7
            } else {
                i + 6
            };
            let end = digits_at(start);
            if end > start {
                out.push(c[i..end].iter().collect());
                i = end;
                continue;
            }
        }
        if c[i] == '§' {
            let start = if c.get(i + 1) == Some(&' ') {
                i + 2
            } else {
                i + 1
            };
            let end = digits_at(start);
            if end > start
                && c.get(end)
                    .is_some_and(|&n| n == '(' || n.is_ascii_lowercase())
            {
                let mut e = end + 1;
                while e < c.len()
                    && (c[e].is_ascii_alphanumeric() || matches!(c[e], '(' | ')' | '.'))
                {
                    e += 1;
                }
                out.push(
                    c[i..e]
                        .iter()
                        .collect::<String>()
                        .trim_end_matches('.')
                        .to_string(),
                );
                i = e;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// Rule 5 over some lines of a file (its comments, or all of a markdown file): every path named
/// exists in `tree`, and nothing names the notes outside the repository.
fn check_links(file: &str, lines: &[(usize, String)], tree: &Tree) -> Vec<Violation> {
    let mut out = Vec::new();
    for (line, text) in lines {
        let lower = text.to_ascii_lowercase();
        let mut outside = false;
        for bad in OUTSIDE_NOTES {
            if lower.contains(bad) {
                outside = true;
                out.push(violation(
                    file,
                    *line,
                    "links-exist",
                    format!(
                        "`{bad}` is outside the repository (readers do not have it): cite docs/entra-id-behaviour.md"
                    ),
                ));
            }
        }
        if outside {
            continue;
        }
        for r in foreign_numbers(text) {
            out.push(violation(
                file,
                *line,
                "links-exist",
                format!("`{r}` numbers a document or tracker that is not in the repository: name the section of docs/entra-id-behaviour.md (or README) instead"),
            ));
        }
        for w in path_words(text) {
            if let Some(p) = repo_path(&w, tree) {
                if !tree.resolves(file, p) {
                    out.push(violation(
                        file,
                        *line,
                        "links-exist",
                        format!("`{w}` names a repository path that does not exist"),
                    ));
                }
            }
        }
    }
    out
}

/// The lines of a file that rule 5 reads: comments of Rust files, `#` comment lines of scripts,
/// TOML and Python, every line of markdown. None for other files.
fn link_lines(file: &str, text: &str) -> Option<Vec<(usize, String)>> {
    let name = file.rsplit('/').next().unwrap_or(file);
    if file.ends_with(".rs") {
        return Some(lex(text).comments);
    }
    if file.ends_with(".md") {
        return Some(
            text.lines()
                .enumerate()
                .map(|(i, l)| (i + 1, l.to_string()))
                .collect(),
        );
    }
    let script = (file.starts_with("scripts/")
        || file.starts_with("packaging/")
        || file.starts_with(".ci/"))
        && (!name.contains('.') || name.ends_with(".py"))
        && text.starts_with("#!");
    if script || file.ends_with(".toml") || file.ends_with(".py") {
        return Some(
            text.lines()
                .enumerate()
                .filter(|(_, l)| {
                    let t = l.trim_start();
                    t.starts_with('#') && !t.starts_with("#!") && !t.starts_with("#[")
                })
                .map(|(i, l)| (i + 1, l.to_string()))
                .collect(),
        );
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Rule 6 `file-length` (reported only)
// ---------------------------------------------------------------------------------------------

fn check_file_length(file: &str, text: &str, max: usize) -> Vec<Violation> {
    let n = text.lines().count();
    if !file.starts_with("src/") || LONG_FILES_ALLOWED.contains(&file) || n <= max {
        return Vec::new();
    }
    vec![violation(
        file,
        n,
        "file-length",
        format!("{n} lines (more than {max}): split it by concern, or list it as a data table"),
    )]
}

// ---------------------------------------------------------------------------------------------
// The tree
// ---------------------------------------------------------------------------------------------

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every file of the repository (relative, `/`-separated), build output and ignored tool
/// directories left out.
fn all_files() -> Vec<String> {
    fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) {
        let mut entries: Vec<_> = fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
            .map(|e| e.expect("directory entry"))
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let ty = e.file_type().expect("file type");
            if ty.is_dir() {
                if SKIP_DIRS.contains(&path.as_str()) || name == ".git" || name == "target" {
                    continue;
                }
                walk(&e.path(), &path, out);
            } else if ty.is_file() {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(root(), "", &mut out);
    out
}

fn read(file: &str) -> String {
    fs::read_to_string(root().join(file)).unwrap_or_else(|e| panic!("read {file}: {e}"))
}

fn rust_files_under(prefixes: &[&str]) -> Vec<String> {
    all_files()
        .into_iter()
        .filter(|f| f.ends_with(".rs") && prefixes.iter().any(|p| f.starts_with(p)))
        .collect()
}

fn assert_clean(rule: &str, mut v: Vec<Violation>) {
    v.sort();
    if !v.is_empty() {
        let list: Vec<String> = v.iter().map(ToString::to_string).collect();
        panic!(
            "{} violation(s) of rule `{rule}`:\n{}\n",
            v.len(),
            list.join("\n")
        );
    }
}

/// The files a module's child `name`, declared in `parent`, may live in.
fn child_files(parent: &str, name: &str) -> [String; 2] {
    let stem = parent.strip_suffix(".rs").unwrap_or(parent);
    let dir = if stem.ends_with("/mod") || stem.ends_with("/lib") || stem.ends_with("/main") {
        stem.rsplit_once('/')
            .map(|(d, _)| d.to_string())
            .unwrap_or_default()
    } else {
        stem.to_string()
    };
    [format!("{dir}/{name}.rs"), format!("{dir}/{name}/mod.rs")]
}

/// The scim files, each with whether it is test code and the names its `use super::*` chain
/// brings in from parent files.
fn scim_files() -> Vec<(String, String, bool, BTreeSet<String>)> {
    let files = rust_files_under(&["src/scim/"]);
    let texts: BTreeMap<String, String> = files.iter().map(|f| (f.clone(), read(f))).collect();
    let mut info: BTreeMap<String, (BTreeSet<String>, bool)> = BTreeMap::new();
    let mut parent_of: BTreeMap<String, String> = BTreeMap::new();
    let mut tests: BTreeSet<String> = BTreeSet::new();
    for (f, t) in &texts {
        let (bound, glob, test_children) = bindings(f, t);
        let lexed = lex(t);
        for m in parse(f, &lexed.code, false).mods {
            for c in child_files(f, &m) {
                parent_of.insert(c, f.clone());
            }
        }
        for m in test_children {
            tests.extend(child_files(f, &m));
        }
        info.insert(f.clone(), (bound, glob));
    }
    // Test code: declared under cfg(test), or a child of such a file.
    let is_test = |f: &str| {
        let mut cur = f.to_string();
        loop {
            if tests.contains(&cur) {
                return true;
            }
            match parent_of.get(&cur) {
                Some(p) => cur = p.clone(),
                None => return false,
            }
        }
    };
    files
        .iter()
        .map(|f| {
            let mut inherited = BTreeSet::new();
            let mut cur = f.clone();
            while let (Some((_, true)), Some(p)) = (info.get(&cur), parent_of.get(&cur)) {
                if let Some((b, _)) = info.get(p) {
                    inherited.extend(b.iter().cloned());
                }
                cur = p.clone();
            }
            (f.clone(), texts[f].clone(), is_test(f), inherited)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The rules over the real tree
// ---------------------------------------------------------------------------------------------

#[test]
fn tree_scim_is_pure() {
    let files = scim_files();
    assert!(files.len() > 10, "src/scim/ not found");
    // The detector works: it sees the paths scim writes (`serde_json::…`, `super::…`).
    let seen: usize = files
        .iter()
        .map(|(f, t, _, _)| paths(&parse(f, &lex(t).code, false)).0.len())
        .sum();
    assert!(seen > 200, "only {seen} paths found in src/scim/");
    let v = files
        .iter()
        .flat_map(|(f, t, test, inherited)| check_scim_pure(f, t, *test, inherited))
        .collect();
    assert_clean("scim-pure", v);
}

#[test]
fn tree_only_store_speaks_sql() {
    let v = rust_files_under(&["src/"])
        .iter()
        .flat_map(|f| check_sql_in_store(f, &read(f)))
        .collect();
    assert_clean("sql-in-store", v);
}

/// The detector works: every store file that runs a statement has SQL it recognises.
#[test]
fn tree_sql_detector_sees_the_store() {
    let mut blind = Vec::new();
    let mut seen = 0;
    for f in rust_files_under(&["src/store/"]) {
        let text = read(&f);
        let code = lex(&text).code;
        let runs = [
            ".execute(",
            ".execute_batch(",
            ".prepare(",
            ".prepare_cached(",
            ".query_row(",
        ]
        .iter()
        .any(|m| code.contains(m));
        let found = sql_literals(&text).len();
        seen += found;
        if runs && found == 0 {
            blind.push(f);
        }
    }
    assert!(blind.is_empty(), "SQL not detected in {blind:?}");
    assert!(
        seen >= 30,
        "only {seen} SQL literals detected in src/store/"
    );
}

#[test]
fn tree_no_http_back_arrows() {
    let v = rust_files_under(&["src/"])
        .iter()
        .flat_map(|f| check_no_http_back_arrow(f, &read(f)))
        .collect();
    assert_clean("no-http-back-arrow", v);
}

#[test]
fn tree_module_docs() {
    let v = rust_files_under(&["src/", "tests/", "benches/", "examples/", "fuzz/"])
        .iter()
        .flat_map(|f| check_module_docs(f, &read(f)))
        .collect();
    assert_clean("module-docs", v);
}

#[test]
fn tree_links_exist() {
    let files = all_files();
    let tree = Tree::new(files.iter().cloned());
    let mut v = Vec::new();
    let mut checked = 0;
    for f in &files {
        if f.starts_with("fuzz/seeds/") || f.starts_with("fuzz/dicts/") {
            continue;
        }
        let Ok(text) = fs::read_to_string(root().join(f)) else {
            continue;
        };
        if let Some(lines) = link_lines(f, &text) {
            checked += lines
                .iter()
                .flat_map(|(_, l)| path_words(l))
                .filter(|w| repo_path(w, &tree).is_some())
                .count();
            v.extend(check_links(f, &lines, &tree));
        }
    }
    // The detector works: the docs and comments name a few hundred paths.
    assert!(
        checked > 100,
        "only {checked} repository paths found in comments and docs"
    );
    assert_clean("links-exist", v);
}

/// Reported, never failed: run with `--nocapture` to see them.
#[test]
fn tree_file_length_report() {
    for f in rust_files_under(&["src/"]) {
        for v in check_file_length(&f, &read(&f), MAX_LINES) {
            eprintln!("note: {v}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The rules over fixtures: each catches a deliberate violation and passes clean code
// ---------------------------------------------------------------------------------------------

fn rules_of(v: &[Violation]) -> Vec<(usize, &'static str)> {
    v.iter().map(|v| (v.line, v.rule)).collect()
}

#[test]
fn lexer_separates_code_comments_and_strings() {
    let l = lex(concat!(
        "let a = \"x // y\"; // c1\n",
        "let b = r#\"q \"quoted\" \"#; /* c2\n",
        "still c2 */ let c = '\"'; let d: &'static str = b\"z\";\n",
        "let e = '\\''; fn f<'a>() {}\n",
    ));
    assert_eq!(
        l.strings,
        vec![
            (1, "x // y".to_string()),
            (2, "q \"quoted\" ".to_string()),
            (3, "z".to_string())
        ]
    );
    assert_eq!(l.comments.len(), 3);
    assert_eq!(l.comments[0], (1, "// c1".to_string()));
    assert!(!l.code.contains("c1") && !l.code.contains("quoted") && !l.code.contains("still"));
    assert!(l.code.contains("'static") && l.code.contains("fn f<'a>"));
    assert_eq!(l.code.lines().count(), 4);
}

#[test]
fn use_trees_flatten() {
    let toks = tokenize("crate::{scim::x, http::{self, y as z}, *}");
    let got: Vec<(String, Option<String>)> = flatten_use(&toks)
        .into_iter()
        .map(|p| (p.segs.join("::"), p.binds))
        .collect();
    assert_eq!(
        got,
        vec![
            ("crate::scim::x".into(), Some("x".into())),
            ("crate::http".into(), Some("http".into())),
            ("crate::http::y".into(), Some("z".into())),
            ("crate::*".into(), None),
        ]
    );
}

const SCIM_CLEAN: &str = r#"//! Clean.
use std::fmt;
use std::vec;
use serde_json::{json, Value};
use super::schema::{self, Attribute};
use crate::scim::error::ScimError;
pub use eval::matches;
mod eval;

#[rustfmt::skip]
fn f(v: &Value) -> u64 {
    use ScimType::*;
    let it: vec::IntoIter<u8> = Vec::new().into_iter();
    let n = v.as_str().map(str::len).unwrap_or(0) as u64;
    let _ = "tokio::spawn(crate::store::x)"; // crate::store::y and hyper::Body in a comment
    let _ = it.collect::<Vec<_>>();
    let _ = size_of::<u8>();
    let _ = ::std::mem::take(&mut 0);
    schema::lookup(fmt::Debug::fmt, Self::X, u64::MAX, n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use crate::scim::schema::USER;
    fn g() { proptest::collection::vec(0u8..1, 1); super::super::path::x(); }
}
"#;

#[test]
fn scim_pure_passes_clean_code() {
    let v = check_scim_pure("src/scim/filter.rs", SCIM_CLEAN, false, &BTreeSet::new());
    assert_eq!(v, vec![]);
}

#[test]
fn scim_pure_catches_each_kind_of_violation() {
    let bad = r#"//! Bad.
use crate::store::Store;
use tokio::sync::mpsc;
use crate::{scim::schema, http::response};
use super::super::http;
fn f() {
    let _ = hyper::Request::new(());
    let c = ::rusqlite::Connection::open(":memory:");
    crate::store::resources::get(c);
    proptest::collection::vec(0u8..1, 1);
    let _ = crate::app::App::new();
}
"#;
    let v = check_scim_pure("src/scim/patch.rs", bad, false, &BTreeSet::new());
    assert_eq!(
        rules_of(&v),
        vec![
            (2, "scim-pure"),
            (3, "scim-pure"),
            (4, "scim-pure"),
            (5, "scim-pure"),
            (7, "scim-pure"),
            (8, "scim-pure"),
            (9, "scim-pure"),
            (10, "scim-pure"),
            (11, "scim-pure"),
        ],
        "{v:#?}"
    );
    // A test file may use the dev-dependency; it still may not reach the store.
    let test_file = "//! T.\nuse proptest::prelude::*;\nuse crate::store::x;\n";
    let v = check_scim_pure(
        "src/scim/filter/tests.rs",
        test_file,
        true,
        &BTreeSet::new(),
    );
    assert_eq!(rules_of(&v), vec![(3, "scim-pure")]);
    // `use super::*` in a child file: the parent's names are in scope.
    let child = "//! C.\nuse super::*;\nfn f() { fmt::Debug::fmt; }\n";
    let from_parent: BTreeSet<String> = ["fmt".to_string()].into();
    assert!(check_scim_pure("src/scim/a/b.rs", child, false, &from_parent).is_empty());
    assert_eq!(
        check_scim_pure("src/scim/a/b.rs", child, false, &BTreeSet::new()).len(),
        1
    );
}

#[test]
fn sql_detector_tells_sql_from_english() {
    for sql in [
        "SELECT count(*) FROM tenants",
        "SELECT 42",
        "select id from resources where seq = ?1",
        "INSERT INTO tokens (id) VALUES (?1)",
        "INSERT OR IGNORE INTO members VALUES (?1, ?2)",
        "UPDATE resources SET active = 0",
        "UPDATE OR ROLLBACK tokens SET revoked = 1",
        "DELETE FROM members WHERE group_seq = ?1",
        "CREATE TABLE x (a)",
        "CREATE UNIQUE INDEX i ON x (a)",
        "PRAGMA integrity_check",
        "pragma user_version",
        "VACUUM INTO ?1",
        "BEGIN",
        "BEGIN IMMEDIATE",
        "COMMIT",
        "ROLLBACK",
        "SAVEPOINT patch",
        "RELEASE patch",
        " AND json_extract(doc, '$.title') = ?",
        "  FROM resources r \\\n WHERE r.seq IN (SELECT member_seq FROM members)",
    ] {
        assert!(sql_in_literal(sql).is_some(), "not seen as SQL: {sql:?}");
    }
    for english in [
        "select",
        "Operations[1]: 'op' must be add, replace or remove, not 'delete'",
        "token expires soon: issue a new one and update the Entra provisioning settings",
        "Duration of the writer's COMMIT (fsync)",
        "commit",
        "delete",
        "DELETE",
        "select the attributes to return from the list",
        "the filter's \"and\" binds tighter than \"or\"",
        "begin again",
        "pragmatic",
        "release notes",
        "Release the lock",
        "END",
        "Users",
        "",
    ] {
        assert_eq!(sql_in_literal(english), None, "seen as SQL: {english:?}");
    }
}

#[test]
fn sql_in_store_catches_sql_outside_store_only() {
    let text = concat!(
        "//! X.\n",
        "// SELECT a FROM b in a comment is fine\n",
        "fn f(c: &Connection) {\n",
        "    c.query_row(\"SELECT count(*) FROM tenants\", [], |r| r.get(0));\n",
        "    c.execute_batch(r#\"DELETE FROM request_log\"#);\n",
        "    let msg = \"select one attribute from the list\";\n",
        "}\n",
    );
    let v = check_sql_in_store("src/http/metrics.rs", text);
    assert_eq!(
        rules_of(&v),
        vec![(4, "sql-in-store"), (5, "sql-in-store")],
        "{v:#?}"
    );
    assert!(check_sql_in_store("src/store/resources.rs", text).is_empty());
    assert!(check_sql_in_store(
        "src/cli/stats.rs",
        "//! X.\nfn f() { println!(\"{}\", \"users\"); }\n"
    )
    .is_empty());
}

#[test]
fn no_http_back_arrow_catches_use_and_inline_paths() {
    let bad = concat!(
        "//! X.\n",
        "use crate::http::metrics::Metrics;\n",
        "use crate::{store, http::tls};\n",
        "fn f() { let _ = crate::http::reqlog::LogQueue::new(); }\n",
        "mod inner { use super::super::super::http::x; }\n",
        "// crate::http in a comment is fine\n",
        "fn g() { let _ = \"crate::http\"; }\n",
    );
    let v = check_no_http_back_arrow("src/store/writer.rs", bad);
    assert_eq!(
        rules_of(&v),
        vec![
            (2, "no-http-back-arrow"),
            (3, "no-http-back-arrow"),
            (4, "no-http-back-arrow"),
            (5, "no-http-back-arrow")
        ],
        "{v:#?}"
    );
    let v = check_no_http_back_arrow("src/store/mod.rs", "//! X.\nuse super::http;\n");
    assert_eq!(rules_of(&v), vec![(2, "no-http-back-arrow")]);
    for f in [
        "src/app.rs",
        "src/maintenance.rs",
        "src/auth/mod.rs",
        "src/telemetry/mod.rs",
        "src/scim/list.rs",
    ] {
        let lines: Vec<usize> = check_no_http_back_arrow(f, bad)
            .iter()
            .map(|v| v.line)
            .collect();
        assert!(lines.starts_with(&[2, 3, 4]), "{f}: {lines:?}");
    }
    // The http layer itself, and the CLI above it, may.
    assert!(check_no_http_back_arrow("src/http/router.rs", bad).is_empty());
    assert!(check_no_http_back_arrow("src/cli/serve.rs", bad).is_empty());
    let clean =
        "//! X.\nuse crate::store::Store;\nuse super::tokens;\nfn f() { crate::auth::verify(); }\n";
    assert!(check_no_http_back_arrow("src/app.rs", clean).is_empty());
}

#[test]
fn module_docs_required_after_inner_attributes() {
    assert!(check_module_docs("a.rs", "//! Doc.\nuse x;\n").is_empty());
    assert!(check_module_docs(
        "a.rs",
        "\n#![allow(clippy::unwrap_used,\n  clippy::expect_used)]\n\n//! Doc.\n"
    )
    .is_empty());
    assert!(check_module_docs("a.rs", "/*! Doc. */\n").is_empty());
    let v = check_module_docs("src/main.rs", "use clap::Parser;\n//! late\n");
    assert_eq!(rules_of(&v), vec![(1, "module-docs")]);
    let v = check_module_docs(
        "a.rs",
        "#![forbid(unsafe_code)]\n/// An item doc, not a module doc.\nfn f() {}\n",
    );
    assert_eq!(rules_of(&v), vec![(2, "module-docs")]);
    assert_eq!(
        rules_of(&check_module_docs("a.rs", "\n\n")),
        vec![(1, "module-docs")]
    );
}

fn fixture_tree() -> Tree {
    Tree::new(
        [
            "Cargo.toml",
            "README.md",
            "ARCHITECTURE.md",
            "docs/entra-id-behaviour.md",
            "scripts/test",
            "src/store/resources.rs",
            "src/scim/patch.rs",
            "src/scim/patch/elements.rs",
            "src/scim/filter.rs",
            "fuzz/fuzz_targets/body.rs",
            "fuzz/README.md",
        ]
        .map(String::from),
    )
}

#[test]
fn links_exist_catches_missing_paths_and_outside_notes() {
    let tree = fixture_tree();
    let lines = |ls: &[&str]| -> Vec<(usize, String)> {
        ls.iter()
            .enumerate()
            .map(|(i, l)| (i + 1, l.to_string()))
            .collect()
    };
    let clean = lines(&[
        "/// See `store/resources.rs` and src/scim/patch.rs:120, ARCHITECTURE.md#invariants.",
        "//! The codemap names `patch/elements.rs` and `filter.rs`; Cargo.toml; scripts/test.",
        "See [the notes](docs/entra-id-behaviour.md#create) and `fuzz_targets/body.rs`.",
        "Config in /etc/grouptalk-scim/config.toml, results in target/bench/results.json,",
        "https://example.org/docs/x.md, $TMPDIR/grouptalk-scim-fuzz/<pid>.sqlite3, ~/.cargo/config.toml",
        "std::fs::read, e.g. 1.5 KiB, `serde_json::Value`, the Users/Groups endpoints.",
        "Write `dir/config.toml`; an example rather than a `build.rs`; **scripts/test**.",
        "cp fuzz/artifacts/x/crash-1 fuzz/corpus/x/ scripts/regress-<what>.txt; fuzz/runs.log",
        "every `scripts/*` and src/scim/patch/*.rs; Vec<String>, Option<&str>; the old docs' text",
    ]);
    assert_eq!(check_links("src/scim/x.rs", &clean, &tree), vec![]);
    // `../README.md` from fuzz/ is the root README.
    assert_eq!(
        check_links("fuzz/README.md", &lines(&["see ../README.md"]), &tree),
        vec![]
    );

    let bad = lines(&[
        "/// See `store/missing.rs`.",
        "// Proves it (see scripts/package-test-old).",
        "as documented in entra-scim-behaviour.md §2",
        "see ../shared/reference/notes.md",
        "[design](docs/design.md#x), the layout in `src/scim/patch/gone.rs:12`",
        "seeds in fuzz/seeds/body/",
        "all of `src/gone/*.rs`, and `notes.md`",
    ]);
    let v = check_links("src/scim/x.rs", &bad, &tree);
    assert_eq!(
        v.iter()
            .map(|v| (
                v.line,
                v.message.split('`').nth(1).unwrap_or("").to_string()
            ))
            .collect::<Vec<_>>(),
        vec![
            (1, "store/missing.rs".to_string()),
            (2, "scripts/package-test-old".to_string()),
            (3, "entra-scim-behaviour.md".to_string()),
            (4, "../shared".to_string()),
            (4, "shared/reference".to_string()),
            (5, "docs/design.md".to_string()),
            (5, "src/scim/patch/gone.rs".to_string()),
            (6, "fuzz/seeds/body/".to_string()),
            (7, "src/gone/*.rs".to_string()),
            (7, "notes.md".to_string()),
        ],
        "{v:#?}"
    );
}

#[test]
fn links_exist_catches_numbers_into_outside_documents() {
    for (line, want) in [
        (
            "/// Entra quirk 24: `manager` as a plain id",
            vec!["quirk 24"],
        ),
        ("/// Quirk 28 / RFC 7644 §3.5.2: removing", vec!["quirk 28"]),
        (
            "/// Entra §2(e).4: add members; also §2b and § 3(c)",
            vec!["§2(e).4", "§2b", "§ 3(c)"],
        ),
        (
            "//! the targets of issue 6; (issue #4)",
            vec!["issue 6", "issue #4"],
        ),
    ] {
        assert_eq!(foreign_numbers(line), want, "{line}");
    }
    for line in [
        "/// RFC 7644 §3.5.2.3 and §3.12; RFC 7643 §2.1.",
        "see https://github.com/o/r/issues/6 (issue 6 there)",
        "issue a new token; a quirky reissue 3 times; the issue asks for FULL",
    ] {
        assert_eq!(foreign_numbers(line), Vec::<String>::new(), "{line}");
    }
    let v = check_links(
        "src/x.rs",
        &[(3, "// Entra quirk 9: filtered add".to_string())],
        &fixture_tree(),
    );
    assert_eq!(rules_of(&v), vec![(3, "links-exist")]);
}

#[test]
fn link_lines_read_comments_only() {
    let rs = "//! Doc: a.rs\nfn f() { let _ = \"b.rs\"; } // c.rs\n";
    let got: Vec<String> = link_lines("src/x.rs", rs)
        .unwrap()
        .into_iter()
        .map(|l| l.1)
        .collect();
    assert_eq!(got, vec!["//! Doc: a.rs", "// c.rs"]);
    let sh = "#!/usr/bin/env bash\n# see docs/x.md\ncargo test # not a full-line comment\n";
    let got: Vec<usize> = link_lines("scripts/test", sh)
        .unwrap()
        .into_iter()
        .map(|l| l.0)
        .collect();
    assert_eq!(got, vec![2]);
    assert!(link_lines("fuzz/seeds/body/entra-00.json", "{}").is_none());
}

#[test]
fn file_length_reports_long_files_except_tables() {
    let long = "x\n".repeat(801);
    assert_eq!(
        rules_of(&check_file_length("src/http/router.rs", &long, 800)),
        vec![(801, "file-length")]
    );
    assert!(check_file_length("src/scim/schema.rs", &long, 800).is_empty());
    assert!(check_file_length("src/http/router.rs", &"x\n".repeat(800), 800).is_empty());
    assert!(check_file_length("tests/e2e/users.rs", &long, 800).is_empty());
}
