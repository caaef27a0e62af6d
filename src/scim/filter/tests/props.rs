//! Properties over generated ASTs and text: printing round-trips, parsing never panics.

use super::*;

fn literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        proptest::collection::vec(any::<char>(), 0..16)
            .prop_map(|c| Literal::String(c.into_iter().collect())),
        "[a-z0-9@./]{1,8}".prop_map(Literal::String),
        any::<i64>().prop_map(|n| Literal::Number(n.into())),
        any::<u64>().prop_map(|n| Literal::Number(n.into())),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Literal::Number)),
        any::<bool>().prop_map(Literal::Bool),
        Just(Literal::Null),
    ]
}

fn op() -> impl Strategy<Value = CompareOp> {
    proptest::sample::select(CompareOp::ALL.to_vec())
}

fn attr_expr(paths: &'static [&'static str]) -> BoxedStrategy<Filter> {
    let p = proptest::sample::select(paths).prop_map(path);
    prop_oneof![
        (p.clone(), op(), literal()).prop_map(|(path, op, value)| Filter::Compare {
            path,
            op,
            value
        }),
        p.prop_map(Filter::Present),
    ]
    .boxed()
}

fn logic(leaf: BoxedStrategy<Filter>) -> BoxedStrategy<Filter> {
    leaf.prop_recursive(5, 32, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(l, r)| and(l, r)),
            (inner.clone(), inner.clone()).prop_map(|(l, r)| or(l, r)),
            inner.prop_map(not),
        ]
    })
    .boxed()
}

const TOP_PATHS: &[&str] = &[
    "userName",
    "DISPLAYNAME",
    "name.familyName",
    "emails.value",
    "members.$ref",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
];
const SUB_PATHS: &[&str] = &["type", "value", "primary", "Display"];
const MULTI_PATHS: &[&str] = &[
    "emails",
    "phoneNumbers",
    "urn:ietf:params:scim:schemas:core:2.0:User:emails",
];

/// ASTs of every shape `parse` produces: value paths at any level, never nested.
pub(in crate::scim::filter) fn filter_ast() -> impl Strategy<Value = Filter> {
    let value_path = (
        proptest::sample::select(MULTI_PATHS),
        logic(attr_expr(SUB_PATHS)),
    )
        .prop_map(|(p, f)| vp(p, f));
    logic(prop_oneof![attr_expr(TOP_PATHS), value_path].boxed())
}

/// Fragments that combine into mostly-plausible filters, to reach deep into the grammar.
fn filter_text() -> impl Strategy<Value = String> {
    let fragment = proptest::sample::select(vec![
        "userName",
        "emails",
        "[",
        "]",
        "(",
        ")",
        ".value",
        " ",
        " eq ",
        " pr",
        " and ",
        " or ",
        "not",
        " not (",
        "\"x\"",
        "\"a\\\"]\"",
        "\"\\u00e9\"",
        "\"",
        "1e5",
        "-0",
        "null",
        "TRUE",
        "jyoung",
        "type",
        "urn:ietf:params:scim:schemas:core:2.0:User:",
        "é",
        "😀",
        "\t",
        "\\",
    ]);
    proptest::collection::vec(fragment, 0..24).prop_map(|parts| parts.concat())
}

/// Prints an AST as a client might: any keyword case, extra whitespace and parentheses, bare
/// values, `not(`, `\/` escapes, and Entra's `attr[f].sub op value`.
struct Noisy(u64);

impl Noisy {
    fn one_in(&mut self, n: u64) -> bool {
        // xorshift64: deterministic per proptest seed, so failures shrink and replay.
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0.is_multiple_of(n)
    }

    fn space(&mut self) -> &'static str {
        if self.one_in(2) {
            " "
        } else {
            ["  ", "\t", "\n ", " \r\n"][(self.0 % 4) as usize]
        }
    }

    fn keyword(&mut self, k: &str) -> String {
        if self.one_in(3) {
            k.to_uppercase()
        } else if self.one_in(2) {
            k[..1].to_uppercase() + &k[1..]
        } else {
            k.to_string()
        }
    }

    fn filter(&mut self, f: &Filter) -> String {
        let text = self.node(f);
        if self.one_in(6) {
            format!("({}{text}{})", self.space(), self.space())
        } else {
            text
        }
    }

    fn node(&mut self, f: &Filter) -> String {
        match f {
            Filter::Compare { path, op, value } => {
                let (s1, op, s2) = (self.space(), self.keyword(op.as_str()), self.space());
                format!("{path}{s1}{op}{s2}{}", self.literal(value))
            }
            Filter::Present(path) => format!("{path}{}{}", self.space(), self.keyword("pr")),
            Filter::And(l, r) | Filter::Or(l, r) => {
                let keyword = self.keyword(if matches!(f, Filter::And(..)) {
                    "and"
                } else {
                    "or"
                });
                let left = self.operand(f, l, false);
                let (s1, s2) = (self.space(), self.space());
                format!("{left}{s1}{keyword}{s2}{}", self.operand(f, r, true))
            }
            Filter::Not(inner) => {
                let gap = if self.one_in(2) { "" } else { " " };
                format!("{}{gap}({})", self.keyword("not"), self.filter(inner))
            }
            Filter::ValuePath { path, filter } => match &**filter {
                Filter::And(l, r) if is_simple(r) && self.one_in(2) => {
                    format!("{path}[{}].{}", self.filter(l), self.node(r))
                }
                inner => format!("{path}[{}]", self.filter(inner)),
            },
        }
    }

    fn operand(&mut self, parent: &Filter, child: &Filter, right: bool) -> String {
        if needs_parens(parent, child, right) {
            format!("({})", self.filter(child))
        } else {
            self.filter(child)
        }
    }

    fn literal(&mut self, value: &Literal) -> String {
        match value {
            Literal::String(s) if can_be_bare(s) && self.one_in(2) => s.clone(),
            Literal::String(_) if self.one_in(2) => value.to_string().replace('/', "\\/"),
            Literal::Bool(_) | Literal::Null => self.keyword(&value.to_string()),
            _ => value.to_string(),
        }
    }
}

fn is_simple(f: &Filter) -> bool {
    matches!(f, Filter::Compare { .. } | Filter::Present(_))
}

fn can_be_bare(s: &str) -> bool {
    !s.is_empty()
        && !s.contains(is_delimiter)
        && !is_keyword(s)
        && matches!(word_literal(s, 0), Ok(Literal::String(_)))
}

proptest! {
    #[test]
    fn noisy_spellings_parse_to_the_same_ast(filter in filter_ast(), seed in 1..u64::MAX) {
        let text = Noisy(seed).filter(&filter);
        prop_assert_eq!(parse(&text), Ok(filter), "{:?}", text);
    }

    #[test]
    fn printed_asts_parse_back(filter in filter_ast()) {
        let printed = filter.to_string();
        prop_assert_eq!(parse(&printed), Ok(filter), "{}", printed);
    }

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        if let Ok(filter) = parse(&text) {
            prop_assert_eq!(parse(&filter.to_string()), Ok(filter));
        }
        let _ = parse_patch_path(&text);
    }

    #[test]
    fn whatever_parses_prints_back_to_itself(text in filter_text()) {
        if let Ok(filter) = parse(&text) {
            let printed = filter.to_string();
            prop_assert_eq!(parse(&printed), Ok(filter), "{} printed as {}", text, printed);
        }
        if let Ok(path) = parse_patch_path(&text) {
            prop_assert_eq!(parse_patch_path(&path.to_string()), Ok(path));
        }
    }
}
