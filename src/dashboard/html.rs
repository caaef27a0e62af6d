//! HTML escaping: the only way text gets into the dashboard's markup. `text` for element
//! content, `attr` for a double-quoted attribute value; both escape all five of `& < > " '`, so
//! either is safe in either place. Hand-written (a dozen lines) instead of a template crate: the
//! page is small, and one function everyone calls is easier to audit than a macro language.

use std::fmt::Write;

/// Append `s` escaped for HTML text or a quoted attribute value.
pub fn push(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters other than tab/newline have no business in a page.
            c if c.is_control() && c != '\n' && c != '\t' => {
                let _ = write!(out, "&#xFFFD;");
            }
            c => out.push(c),
        }
    }
}

/// `s` escaped, as a new string.
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    push(&mut out, s);
    out
}

/// Same escaping; named for the place it is used (`href="…"`, `value="…"`).
pub fn attr(s: &str) -> String {
    text(s)
}

/// A query-string component: percent-encoded, then escaped for the attribute it goes into.
pub fn query_value(s: &str) -> String {
    let encoded: String = form_urlencoded::byte_serialize(s.as_bytes()).collect();
    attr(&encoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_characters_are_escaped() {
        for (input, expected) in [
            ("plain", "plain"),
            (
                "<script>alert(1)</script>",
                "&lt;script&gt;alert(1)&lt;/script&gt;",
            ),
            (
                "\"><img src=x onerror=alert(1)>",
                "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;",
            ),
            ("a & b", "a &amp; b"),
            ("it's", "it&#39;s"),
            ("&amp;", "&amp;amp;"),
            ("nul\u{0}bell\u{7}", "nul&#xFFFD;bell&#xFFFD;"),
            ("Malmö ✓", "Malmö ✓"),
        ] {
            assert_eq!(text(input), expected, "{input:?}");
            assert_eq!(attr(input), expected, "{input:?}");
        }
    }

    #[test]
    fn escaped_text_never_contains_a_markup_character() {
        let all: String = (0u32..0x300).filter_map(char::from_u32).collect();
        let out = text(&all);
        assert!(!out.contains(['<', '>', '"', '\'']));
        // Every & starts one of our entities.
        for (i, _) in out.match_indices('&') {
            let rest = &out[i..];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&#xFFFD;"]
                    .iter()
                    .any(|e| rest.starts_with(e)),
                "{rest:.10}"
            );
        }
    }

    #[test]
    fn query_values_are_encoded_then_escaped() {
        assert_eq!(query_value("a b&c\"<"), "a+b%26c%22%3C");
    }
}
