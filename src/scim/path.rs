//! Attribute paths as SCIM writes them (RFC 7644 §3.10): `[URN ":"] attrName ["." subAttr]`.
//!
//! The URN of a schema itself contains dots and colons (`…:enterprise:2.0:User`), so a qualified
//! path is split at the last `:` first (Entra: "split on the last `:` after the URN"), and only the
//! remainder is split at `.`. Resolution against the schema table is a separate step.

use std::fmt;

use super::error::ScimError;
use super::schema::{self, Resolved, ResourceType};

/// An attribute path as written, not yet checked against a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    pub urn: Option<String>,
    pub name: String,
    pub sub: Option<String>,
}

/// Longest accepted path, so hostile input cannot make us allocate or scan without bound.
pub const MAX_PATH_LEN: usize = 512;

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        // `$ref` is the one attribute name RFC 7643 allows to start with `$`.
        Some('$') => s.eq_ignore_ascii_case("$ref"),
        Some(c) if c.is_ascii_alphabetic() => {
            chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        }
        _ => false,
    }
}

impl AttrPath {
    pub fn new(urn: Option<&str>, name: &str, sub: Option<&str>) -> Self {
        AttrPath {
            urn: urn.map(str::to_string),
            name: name.to_string(),
            sub: sub.map(str::to_string),
        }
    }

    /// Parse `name`, `name.sub`, `urn:…:name` or `urn:…:name.sub`.
    pub fn parse(text: &str) -> Result<AttrPath, ScimError> {
        if text.is_empty() || text.len() > MAX_PATH_LEN {
            return Err(ScimError::invalid_path(format!(
                "attribute path must be 1 to {MAX_PATH_LEN} characters"
            )));
        }
        let (urn, rest) = if text.len() > 4
            && text
                .get(..4)
                .is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
        {
            match text.rfind(':') {
                Some(i) if i + 1 < text.len() => (Some(&text[..i]), &text[i + 1..]),
                _ => {
                    return Err(ScimError::invalid_path(format!(
                        "'{text}' names a schema but no attribute"
                    )))
                }
            }
        } else {
            (None, text)
        };
        let (name, sub) = match rest.split_once('.') {
            Some((n, s)) => (n, Some(s)),
            None => (rest, None),
        };
        if !is_name(name) || sub.is_some_and(|s| !is_name(s)) {
            return Err(ScimError::invalid_path(format!(
                "'{text}' is not a valid attribute path"
            )));
        }
        Ok(AttrPath::new(urn, name, sub))
    }

    /// Look the path up in the schema of a resource type.
    pub fn resolve(&self, rt: &'static ResourceType) -> Result<Resolved, ScimError> {
        schema::resolve(rt, self.urn.as_deref(), &self.name, self.sub.as_deref()).ok_or_else(|| {
            ScimError::invalid_path(format!("'{self}' is not an attribute of {}", rt.name))
        })
    }

    /// The same path with a sub-attribute appended (for `emails[…].value`).
    pub fn with_sub(&self, sub: &str) -> AttrPath {
        AttrPath {
            sub: Some(sub.to_string()),
            ..self.clone()
        }
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            write!(f, "{urn}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::{ENTERPRISE_USER, USER_TYPE};

    fn check(input: &str, expected: Option<(Option<&str>, &str, Option<&str>)>) {
        let got = AttrPath::parse(input).ok();
        let want = expected.map(|(u, n, s)| AttrPath::new(u, n, s));
        assert_eq!(got, want, "{input}");
    }

    #[test]
    fn parses_paths() {
        check("userName", Some((None, "userName", None)));
        check("name.givenName", Some((None, "name", Some("givenName"))));
        check(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter",
            Some((Some(ENTERPRISE_USER), "costCenter", None)),
        );
        check(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
            Some((Some(ENTERPRISE_USER), "manager", Some("value"))),
        );
        check("members.$ref", Some((None, "members", Some("$ref"))));
        check("", None);
        check("urn:ietf:params:scim:schemas:core:2.0:User:", None);
        check("a.b.c", None);
        check("1abc", None);
        check("emails[type eq \"work\"]", None);
    }

    #[test]
    fn resolves_qualified_core_names() {
        let p =
            AttrPath::parse("urn:ietf:params:scim:schemas:core:2.0:User:name.familyName").unwrap();
        let r = p.resolve(&USER_TYPE).unwrap();
        assert_eq!(r.target().name, "familyName");
        assert!(AttrPath::parse("nope")
            .unwrap()
            .resolve(&USER_TYPE)
            .is_err());
    }
}
