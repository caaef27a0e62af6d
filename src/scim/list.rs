//! List requests (RFC 7644 §3.4.2): query parameters or a `.search` body in, ListResponse out.
//! Index paging (`startIndex`, what Entra uses) or RFC 9865 cursor paging (`cursor`: empty for
//! the first page, then each answer's `nextCursor`); docs/pagination.md.

use serde_json::{json, Value};

use super::discovery::{DEFAULT_COUNT, MAX_RESULTS};
use super::error::ScimError;
use super::filter::{self, Filter};
use super::path::AttrPath;
use super::render::Projection;
use super::schema::{ResourceType, SEARCH_REQUEST};

/// A parsed list request, independent of whether it came as GET parameters or POST /.search.
#[derive(Debug, Clone)]
pub struct ListRequest {
    pub filter: Option<Filter>,
    pub sort_by: Option<AttrPath>,
    pub descending: bool,
    pub start_index: usize,
    pub count: usize,
    pub projection: Projection,
    /// RFC 9865 cursor paging: `Some("")` asks for the first page, `Some(c)` for the page after
    /// `c`; `None` is index paging.
    pub cursor: Option<String>,
}

/// The raw parameters, as strings (names matched case-insensitively by the caller).
#[derive(Debug, Default, Clone)]
pub struct ListParams {
    pub filter: Option<String>,
    pub sort_by: Option<String>,
    pub sort_order: Option<String>,
    pub start_index: Option<String>,
    pub count: Option<String>,
    pub attributes: Option<String>,
    pub excluded_attributes: Option<String>,
    pub cursor: Option<String>,
}

impl ListParams {
    /// The field a parameter name (case-insensitive) fills, if it is one we know.
    fn slot(&mut self, key: &str) -> Option<&mut Option<String>> {
        Some(match key.to_ascii_lowercase().as_str() {
            "filter" => &mut self.filter,
            "sortby" => &mut self.sort_by,
            "sortorder" => &mut self.sort_order,
            "startindex" => &mut self.start_index,
            "count" => &mut self.count,
            "attributes" => &mut self.attributes,
            "excludedattributes" => &mut self.excluded_attributes,
            "cursor" => &mut self.cursor,
            _ => return None,
        })
    }

    /// From decoded query pairs. Unknown parameters (Entra's `aadOptscim062020`) are ignored.
    pub fn from_query<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> ListParams {
        let mut p = ListParams::default();
        for (k, v) in pairs {
            if let Some(slot) = p.slot(k) {
                *slot = Some(v.to_string());
            }
        }
        p
    }

    /// From a SearchRequest body (RFC 7644 §3.4.3).
    pub fn from_search_body(body: &Value) -> Result<ListParams, ScimError> {
        let obj = body
            .as_object()
            .ok_or_else(|| ScimError::invalid_syntax("a SearchRequest must be a JSON object"))?;
        if let Some(schemas) = obj.get("schemas") {
            let ok = schemas.as_array().is_some_and(|a| {
                a.iter().any(|s| {
                    s.as_str()
                        .is_some_and(|s| s.eq_ignore_ascii_case(SEARCH_REQUEST))
                })
            });
            if !ok {
                return Err(ScimError::invalid_syntax(format!(
                    "schemas must contain {SEARCH_REQUEST}"
                )));
            }
        }
        let mut p = ListParams::default();
        for (k, v) in obj {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Array(items) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
                _ => continue,
            };
            let Some(slot) = p.slot(k) else { continue };
            *slot = Some(text);
        }
        Ok(p)
    }

    pub fn parse(&self, rt: &'static ResourceType) -> Result<ListRequest, ScimError> {
        let filter = match self.filter.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(filter::parse(text)?),
        };
        let sort_by = match self.sort_by.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(
                AttrPath::parse(text)
                    .map_err(|e| ScimError::invalid_value(format!("sortBy: {}", e.detail)))?,
            ),
        };
        let descending = match self
            .sort_order
            .as_deref()
            .map(|s| s.trim().to_ascii_lowercase())
        {
            None => false,
            Some(s) if s.is_empty() || s == "ascending" => false,
            Some(s) if s == "descending" => true,
            Some(s) => {
                return Err(ScimError::invalid_value(format!(
                    "sortOrder must be ascending or descending, not '{s}'"
                )))
            }
        };
        // RFC 7644 §3.4.2.4: startIndex < 1 is treated as 1; negative count as 0.
        let start_index =
            parse_int(self.start_index.as_deref(), "startIndex")?.map_or(1, |i| i.max(1) as usize);
        let count = parse_int(self.count.as_deref(), "count")?
            .map_or(DEFAULT_COUNT, |c| c.clamp(0, MAX_RESULTS as i64) as usize);
        let projection = Projection::parse(
            rt,
            self.attributes.as_deref(),
            self.excluded_attributes.as_deref(),
        )?;
        let cursor = self.cursor.as_deref().map(str::trim);
        if cursor.is_some() {
            if self
                .start_index
                .as_deref()
                .is_some_and(|s| !s.trim().is_empty())
            {
                return Err(ScimError::invalid_value(
                    "cursor and startIndex cannot be used together: page with one or the other \
                     (RFC 9865)",
                ));
            }
            if sort_by.is_some() {
                return Err(ScimError::invalid_value(
                    "sortBy cannot be used with cursor paging: a cursor walk is in the server's \
                     own stable order (creation order); sort with startIndex paging instead",
                ));
            }
        }
        Ok(ListRequest {
            filter,
            sort_by,
            descending,
            start_index,
            count,
            projection,
            cursor: cursor.map(str::to_string),
        })
    }
}

fn parse_int(text: Option<&str>, name: &str) -> Result<Option<i64>, ScimError> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) => t
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ScimError::invalid_value(format!("{name} must be an integer, not '{t}'"))),
    }
}

/// The ListResponse body.
pub fn response(total: usize, start_index: usize, resources: Vec<Value>) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

/// The ListResponse of a cursor page (RFC 9865): `nextCursor` unless this is the last page, and
/// no `startIndex`. `previousCursor` is optional in RFC 9865 and not given: a walk goes
/// forward.
pub fn cursor_response(total: usize, resources: Vec<Value>, next: Option<String>) -> Value {
    let mut body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": total,
        "itemsPerPage": resources.len(),
    });
    if let (Some(obj), Some(next)) = (body.as_object_mut(), next) {
        obj.insert("nextCursor".into(), next.into());
    }
    if let Some(obj) = body.as_object_mut() {
        obj.insert("Resources".into(), resources.into());
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::error::ScimType;
    use crate::scim::schema::USER_TYPE;

    #[test]
    fn unknown_parameters_are_ignored_and_paging_is_clamped() {
        let p = ListParams::from_query(
            [
                ("aadOptscim062020", ""),
                ("startIndex", "0"),
                ("COUNT", "5000"),
            ]
            .into_iter(),
        );
        let r = p.parse(&USER_TYPE).unwrap();
        assert_eq!((r.start_index, r.count), (1, MAX_RESULTS));
        assert!(r.filter.is_none());
    }

    #[test]
    fn bad_numbers_and_sort_order_are_invalid_value() {
        let p = ListParams {
            count: Some("x".into()),
            ..Default::default()
        };
        assert_eq!(p.parse(&USER_TYPE).unwrap_err().status, 400);
        let p = ListParams {
            sort_order: Some("up".into()),
            ..Default::default()
        };
        assert_eq!(p.parse(&USER_TYPE).unwrap_err().status, 400);
    }

    #[test]
    fn cursor_with_start_index_or_sort_by_is_invalid_value_and_an_empty_cursor_is_the_first_page() {
        let q = |pairs: &[(&str, &str)]| ListParams::from_query(pairs.iter().copied());
        let r = q(&[("cursor", ""), ("count", "10")])
            .parse(&USER_TYPE)
            .unwrap();
        assert_eq!((r.cursor.as_deref(), r.count), (Some(""), 10));
        assert_eq!(q(&[]).parse(&USER_TYPE).unwrap().cursor, None);
        for bad in [
            q(&[("cursor", ""), ("startIndex", "1")]),
            q(&[("Cursor", "abc"), ("sortBy", "userName")]),
        ] {
            let e = bad.parse(&USER_TYPE).unwrap_err();
            assert_eq!((e.status, e.scim_type), (400, Some(ScimType::InvalidValue)));
        }
    }

    #[test]
    fn a_cursor_page_has_next_cursor_unless_last_and_no_start_index() {
        let page = cursor_response(3, vec![json!({"id": "a"})], Some("c".into()));
        assert_eq!(page["nextCursor"], "c");
        assert_eq!(
            (page["totalResults"].as_u64(), page["itemsPerPage"].as_u64()),
            (Some(3), Some(1))
        );
        assert!(page.get("startIndex").is_none());
        let last = cursor_response(1, vec![json!({"id": "a"})], None);
        assert!(last.get("nextCursor").is_none());
    }

    #[test]
    fn search_body_reads_arrays_and_numbers() {
        let body = json!({"schemas": [SEARCH_REQUEST], "attributes": ["userName", "emails"], "count": 2, "startIndex": 3});
        let p = ListParams::from_search_body(&body).unwrap();
        assert_eq!(p.attributes.as_deref(), Some("userName,emails"));
        assert_eq!(p.count.as_deref(), Some("2"));
    }
}
