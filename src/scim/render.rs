//! Output side of resources: stored document + server attributes → SCIM JSON, and the
//! `attributes` / `excludedAttributes` projection (RFC 7644 §3.4.2.5, §3.9).

use serde_json::{Map, Value};

use super::error::ScimError;
use super::path::AttrPath;
use super::schema::{self, ResourceType, Returned};

/// Server-owned attributes of one resource.
pub struct Meta<'a> {
    pub id: &'a str,
    pub version: i64,
    pub created: &'a str,
    pub last_modified: &'a str,
    /// Absolute URL of the resource.
    pub location: String,
}

/// The full resource: `schemas`, `id`, the document's attributes, then `extra` (members,
/// groups…) and `meta`. `schemas` lists the core schema and every extension present. Takes the
/// document by value: its attributes move into the result instead of being copied.
pub fn resource(
    rt: &'static ResourceType,
    doc: Value,
    meta: &Meta<'_>,
    extra: Vec<(&'static str, Value)>,
) -> Value {
    let mut out = Map::new();
    let mut schemas = vec![Value::from(rt.schema.id)];
    for ext in rt.extensions {
        if doc
            .get(ext.id)
            .is_some_and(|v| v.as_object().is_some_and(|o| !o.is_empty()))
        {
            schemas.push(ext.id.into());
        }
    }
    out.insert("schemas".into(), Value::Array(schemas));
    out.insert("id".into(), meta.id.into());
    if let Value::Object(obj) = doc {
        out.extend(obj);
    }
    for (k, v) in extra {
        out.insert(k.into(), v);
    }
    out.insert(
        "meta".into(),
        serde_json::json!({
            "resourceType": rt.name,
            "created": meta.created,
            "lastModified": meta.last_modified,
            "location": meta.location,
            "version": format!("W/\"{}\"", meta.version),
        }),
    );
    Value::Object(out)
}

/// Which attributes a request wants back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Projection {
    pub attributes: Vec<AttrPath>,
    pub excluded: Vec<AttrPath>,
}

/// A projection entry may also be a bare extension URN (the whole extension object).
fn parse_list(
    rt: &'static ResourceType,
    text: Option<&str>,
    param: &str,
) -> Result<Vec<AttrPath>, ScimError> {
    let mut out = Vec::new();
    for item in text
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        if let Some(ext) = rt.extension(item) {
            out.push(AttrPath::new(Some(ext.id), "*", None));
            continue;
        }
        let p = AttrPath::parse(item)
            .map_err(|e| ScimError::invalid_value(format!("{param}: {}", e.detail)))?;
        // Unknown attributes are ignored rather than refused: clients ask for what they know.
        if p.resolve(rt).is_ok() {
            out.push(p);
        }
    }
    Ok(out)
}

impl Projection {
    pub fn parse(
        rt: &'static ResourceType,
        attributes: Option<&str>,
        excluded: Option<&str>,
    ) -> Result<Projection, ScimError> {
        Ok(Projection {
            attributes: parse_list(rt, attributes, "attributes")?,
            excluded: parse_list(rt, excluded, "excludedAttributes")?,
        })
    }

    /// Whether the top-level attribute `name` (core) will be returned — e.g. to skip reading
    /// a group's member rows when `excludedAttributes=members`.
    pub fn wants(&self, rt: &'static ResourceType, name: &str) -> bool {
        let Some(r) = schema::resolve(rt, None, name, None) else {
            return false;
        };
        if r.attr.returned == Returned::Always {
            return true;
        }
        if !self.attributes.is_empty() {
            return self.attributes.iter().any(|p| {
                p.urn
                    .as_deref()
                    .is_none_or(|u| u.eq_ignore_ascii_case(rt.schema.id))
                    && p.name.eq_ignore_ascii_case(name)
            });
        }
        !self.excluded.iter().any(|p| {
            p.sub.is_none()
                && p.urn
                    .as_deref()
                    .is_none_or(|u| u.eq_ignore_ascii_case(rt.schema.id))
                && p.name.eq_ignore_ascii_case(name)
        })
    }

    /// Apply the projection to a rendered resource in place.
    pub fn apply(&self, rt: &'static ResourceType, resource: &mut Value) {
        let Some(obj) = resource.as_object_mut() else {
            return;
        };
        if !self.attributes.is_empty() {
            let mut kept = Map::new();
            for (k, v) in std::mem::take(obj) {
                if k == "schemas" || k == "id" {
                    kept.insert(k, v);
                    continue;
                }
                if let Some(v) = self.keep_selected(rt, &k, v) {
                    kept.insert(k, v);
                }
            }
            *obj = kept;
        }
        for p in &self.excluded {
            remove_path(rt, obj, p);
        }
    }

    /// With `attributes=…`: what remains of top-level key `key`, if anything.
    fn keep_selected(&self, rt: &'static ResourceType, key: &str, value: Value) -> Option<Value> {
        if let Some(ext) = rt.extension(key) {
            let selected: Vec<&AttrPath> = self
                .attributes
                .iter()
                .filter(|p| {
                    p.urn
                        .as_deref()
                        .is_some_and(|u| u.eq_ignore_ascii_case(ext.id))
                })
                .collect();
            if selected.iter().any(|p| p.name == "*") {
                return Some(value);
            }
            let Value::Object(map) = value else {
                return None;
            };
            let kept: Map<String, Value> = map
                .into_iter()
                .filter_map(|(k, v)| {
                    let hits: Vec<&&AttrPath> = selected
                        .iter()
                        .filter(|p| p.name.eq_ignore_ascii_case(&k))
                        .collect();
                    if hits.is_empty() {
                        None
                    } else if hits.iter().any(|p| p.sub.is_none()) {
                        Some((k, v))
                    } else {
                        Some((
                            k,
                            keep_subs(v, hits.iter().filter_map(|p| p.sub.as_deref())),
                        ))
                    }
                })
                .collect();
            return (!kept.is_empty()).then_some(Value::Object(kept));
        }
        let hits: Vec<&AttrPath> = self
            .attributes
            .iter()
            .filter(|p| {
                p.urn
                    .as_deref()
                    .is_none_or(|u| u.eq_ignore_ascii_case(rt.schema.id))
                    && p.name.eq_ignore_ascii_case(key)
            })
            .collect();
        if hits.is_empty() {
            None
        } else if hits.iter().any(|p| p.sub.is_none()) {
            Some(value)
        } else {
            Some(keep_subs(
                value,
                hits.iter().filter_map(|p| p.sub.as_deref()),
            ))
        }
    }
}

/// Keep only the named sub-attributes of a complex value (or of each element of an array).
fn keep_subs<'a>(value: Value, subs: impl Iterator<Item = &'a str> + Clone) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| subs.clone().any(|s| s.eq_ignore_ascii_case(k)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| keep_subs(v, subs.clone()))
                .collect(),
        ),
        other => other,
    }
}

fn remove_path(rt: &'static ResourceType, obj: &mut Map<String, Value>, p: &AttrPath) {
    let never = schema::resolve(rt, p.urn.as_deref(), &p.name, None)
        .is_some_and(|r| r.attr.returned == Returned::Always);
    if never {
        return;
    }
    let container = match p.urn.as_deref() {
        Some(u) if !u.eq_ignore_ascii_case(rt.schema.id) => {
            let Some(ext) = rt.extension(u) else { return };
            if p.name == "*" {
                obj.remove(ext.id);
                return;
            }
            match obj.get_mut(ext.id).and_then(Value::as_object_mut) {
                Some(m) => m,
                None => return,
            }
        }
        _ => obj,
    };
    let Some(key) = container
        .keys()
        .find(|k| k.eq_ignore_ascii_case(&p.name))
        .cloned()
    else {
        return;
    };
    match &p.sub {
        None => {
            container.remove(&key);
        }
        Some(sub) => {
            let strip = |v: &mut Value| {
                if let Some(m) = v.as_object_mut() {
                    m.retain(|k, _| !k.eq_ignore_ascii_case(sub));
                }
            };
            match container.get_mut(&key) {
                Some(Value::Array(items)) => items.iter_mut().for_each(strip),
                Some(v) => strip(v),
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::{ENTERPRISE_USER, GROUP_TYPE, USER_TYPE};
    use serde_json::json;

    fn user() -> Value {
        let doc = json!({"userName": "a", "name": {"givenName": "A", "familyName": "B"},
            "emails": [{"value": "a@x", "type": "work"}],
            ENTERPRISE_USER: {"costCenter": "C1", "department": "D"}});
        resource(
            &USER_TYPE,
            doc,
            &Meta {
                id: "1",
                version: 2,
                created: "t",
                last_modified: "t",
                location: "https://h/Users/1".into(),
            },
            vec![],
        )
    }

    fn project(attrs: Option<&str>, excl: Option<&str>) -> Value {
        let mut u = user();
        Projection::parse(&USER_TYPE, attrs, excl)
            .unwrap()
            .apply(&USER_TYPE, &mut u);
        u
    }

    #[test]
    fn renders_schemas_for_present_extensions_and_meta() {
        let u = user();
        assert_eq!(
            u["schemas"],
            json!([crate::scim::schema::USER, ENTERPRISE_USER])
        );
        assert_eq!(u["meta"]["version"], "W/\"2\"");
        assert_eq!(u["meta"]["resourceType"], "User");
    }

    #[test]
    fn attributes_keeps_id_and_schemas() {
        let u = project(Some("userName,name.givenName"), None);
        assert_eq!(
            u,
            json!({"schemas": [crate::scim::schema::USER, ENTERPRISE_USER], "id": "1", "userName": "a", "name": {"givenName": "A"}})
        );
    }

    #[test]
    fn attributes_with_extension_paths() {
        let u = project(Some(&format!("{ENTERPRISE_USER}:costCenter")), None);
        assert_eq!(u[ENTERPRISE_USER], json!({"costCenter": "C1"}));
        assert!(u.get("userName").is_none());
        let u = project(Some(ENTERPRISE_USER), None);
        assert_eq!(u[ENTERPRISE_USER]["department"], "D");
    }

    #[test]
    fn excluded_attributes_never_drop_id() {
        let u = project(None, Some("emails,id,name.familyName"));
        assert!(u.get("emails").is_none());
        assert_eq!(u["id"], "1");
        assert_eq!(u["name"], json!({"givenName": "A"}));
    }

    #[test]
    fn wants_members_follows_exclusion() {
        let p = Projection::parse(&GROUP_TYPE, None, Some("members")).unwrap();
        assert!(!p.wants(&GROUP_TYPE, "members"));
        let p = Projection::parse(&GROUP_TYPE, Some("displayName"), None).unwrap();
        assert!(!p.wants(&GROUP_TYPE, "members"));
        assert!(Projection::default().wants(&GROUP_TYPE, "members"));
    }
}
