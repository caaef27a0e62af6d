//! What a write changed, for an object's history (`grouptalk-scim history`), and the request
//! bodies the provisioning log may keep (`log.keep_bodies`): pure functions over JSON, no I/O.
//!
//! `diff` compares the resource before and after a write, attribute by attribute: complex
//! attributes (`name`, the enterprise extension, `manager`) by sub-attribute, multi-valued ones
//! (`emails`, `phoneNumbers`, `roles`…) as the elements removed and the elements added. A
//! `password` is never shown, only that one was sent. Every value is capped in size and a
//! diff holds at most `MAX_CHANGES` entries, so a stored diff stays small whatever was written.
//!
//! `redact_body` strips every `password` from a request body — as a key at any depth, and as
//! the `value` of a PATCH operation whose `path` names it — and caps the text.

use serde_json::{Map, Value};

/// Longest string value a diff shows; longer ones are cut and marked with `…`.
pub const MAX_VALUE_CHARS: usize = 200;
/// Largest JSON text of one value a diff shows (an element, an array of them); a larger one is
/// replaced by a note of its size.
pub const MAX_VALUE_BYTES: usize = 1024;
/// Most attribute changes one diff lists; beyond it a last entry says how many more there were.
pub const MAX_CHANGES: usize = 64;
/// Most member ids a diff lists per direction (added / removed); the counts are always exact.
pub const MAX_MEMBER_IDS: usize = 100;
/// Largest request body the provisioning log keeps (`log.keep_bodies`), in bytes of JSON text
/// once passwords are stripped; a larger one is cut there and marked.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// What shows instead of a password.
pub const REDACTED: &str = "(redacted)";

/// One attribute a write changed: its path (`name.givenName`, `emails`,
/// `urn:…:enterprise:2.0:User:department`) and its value before and after (None: absent). For a
/// multi-valued attribute, `from` holds the elements removed and `to` the elements added.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AttrChange {
    pub attr: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub from: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub to: Option<Value>,
}

/// A group's member changes: the ids added and removed (at most `MAX_MEMBER_IDS` each) and how
/// many there were.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemberChanges {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub added_count: usize,
    pub removed_count: usize,
}

impl MemberChanges {
    /// From the full lists of ids added and removed, capped.
    pub fn of(added: &[&str], removed: &[&str]) -> MemberChanges {
        let cap = |ids: &[&str]| {
            ids.iter()
                .take(MAX_MEMBER_IDS)
                .map(|s| s.to_string())
                .collect()
        };
        MemberChanges {
            added: cap(added),
            removed: cap(removed),
            added_count: added.len(),
            removed_count: removed.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.added_count == 0 && self.removed_count == 0
    }
}

/// What one write did to one resource, as `history` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Diff {
    /// create | update | deactivate | reactivate | delete | restore
    pub op: String,
    pub changes: Vec<AttrChange>,
    /// Attribute changes beyond `MAX_CHANGES`, not listed.
    #[serde(skip_serializing_if = "is_zero", default)]
    pub more: usize,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub members: Option<MemberChanges>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The difference between a resource before (`old`, None for a create) and after (`new`, None
/// for a delete) a write. Server-owned attributes (`id`, `meta`, `schemas`, `members`,
/// `groups`) are not compared: members come as `MemberChanges`.
pub fn diff(op: &str, old: Option<&Value>, new: Option<&Value>) -> Diff {
    let mut out = Vec::new();
    let empty = Map::new();
    let old = old.and_then(Value::as_object).unwrap_or(&empty);
    let new = new.and_then(Value::as_object).unwrap_or(&empty);
    walk("", '.', old, new, &mut out);
    let more = out.len().saturating_sub(MAX_CHANGES);
    out.truncate(MAX_CHANGES);
    Diff {
        op: op.to_string(),
        changes: out,
        more,
        members: None,
    }
}

/// Largest create stored as its document (`created_text`); a larger one is stored as its
/// capped diff, so a stored diff stays small whatever was written.
pub const MAX_CREATED_BYTES: usize = 8 * 1024;

/// A create's diff as stored JSON text: the created document itself (`"created"`) and the member
/// ids a new group is created with (duplicates once), turned into its `Diff` only when read
/// (`parse_stored`). Every create stores one and few are ever read, so the write path only
/// serializes the document: no attribute walk, and fewer bytes than the diff's own form. Pure,
/// so a handler computes it before its write instead of on the single writer thread.
pub fn created_text(doc: &Value, member_ids: &[&str]) -> String {
    #[derive(serde::Serialize)]
    struct Created<'a> {
        op: &'static str,
        created: &'a Value,
        #[serde(skip_serializing_if = "Option::is_none")]
        members: Option<&'a MemberChanges>,
    }
    let mut ids: Vec<&str> = member_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let members = Some(MemberChanges::of(&ids, &[])).filter(|m| !m.is_empty());
    // A stored resource never holds a password (write-only, dropped by normalisation); should a
    // document still carry one, it is stripped here, before anything is stored.
    let stripped;
    let created = match holds_password(doc) {
        false => doc,
        true => {
            stripped = redact_value(doc);
            &stripped
        }
    };
    let text = serde_json::to_string(&Created {
        op: "create",
        created,
        members: members.as_ref(),
    })
    .unwrap_or_default();
    if text.len() <= MAX_CREATED_BYTES {
        return text;
    }
    let mut d = diff("create", None, Some(created));
    d.members = members;
    serde_json::to_string(&d).unwrap_or_default()
}

/// A stored diff (`request_details.diff`) as `history` shows it: a `Diff`, or a create stored as
/// its document (`created_text`), compared here against nothing.
pub fn parse_stored(text: &str) -> serde_json::Result<Diff> {
    #[derive(serde::Deserialize)]
    struct StoredDiff {
        op: String,
        #[serde(default)]
        changes: Vec<AttrChange>,
        #[serde(default)]
        more: usize,
        #[serde(default)]
        members: Option<MemberChanges>,
        #[serde(default)]
        created: Option<Value>,
    }
    let s: StoredDiff = serde_json::from_str(text)?;
    Ok(match s.created {
        Some(doc) => Diff {
            members: s.members,
            ..diff(&s.op, None, Some(&doc))
        },
        None => Diff {
            op: s.op,
            changes: s.changes,
            more: s.more,
            members: s.members,
        },
    })
}

/// Whether `password` is a key anywhere in `v` (without copying it).
fn holds_password(v: &Value) -> bool {
    match v {
        Value::Object(map) => map.iter().any(|(k, v)| is_password(k) || holds_password(v)),
        Value::Array(items) => items.iter().any(holds_password),
        _ => false,
    }
}

/// Keys never compared at the top level: the server's own, or carried elsewhere.
const SKIPPED: [&str; 5] = ["id", "meta", "schemas", "members", "groups"];

fn is_password(key: &str) -> bool {
    let last = key.rsplit(':').next().unwrap_or(key);
    let last = last.rsplit('.').next().unwrap_or(last);
    last.eq_ignore_ascii_case("password")
}

/// Compare two objects under `prefix` (joined to their keys with `sep`).
fn walk(
    prefix: &str,
    sep: char,
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    out: &mut Vec<AttrChange>,
) {
    // Keys in the order of the old document, then the new keys: stable and readable.
    let mut keys: Vec<&String> = old.keys().collect();
    keys.extend(new.keys().filter(|k| !old.contains_key(*k)));
    for key in keys {
        if prefix.is_empty() && SKIPPED.contains(&key.as_str()) {
            continue;
        }
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}{sep}{key}")
        };
        // An extension's attributes are named `urn:…:User:attr` (RFC 7644 §3.10).
        let inner = if prefix.is_empty() && key.starts_with("urn:") {
            ':'
        } else {
            '.'
        };
        let (a, b) = (old.get(key), new.get(key));
        if is_password(key) {
            if b.is_some_and(|v| !v.is_null()) {
                out.push(AttrChange {
                    attr: path,
                    from: None,
                    to: Some(Value::from(REDACTED)),
                });
            }
            continue;
        }
        let (a, b) = (a.filter(|v| !v.is_null()), b.filter(|v| !v.is_null()));
        if a == b {
            continue;
        }
        match (a, b) {
            (Some(Value::Object(x)), Some(Value::Object(y))) => walk(&path, inner, x, y, out),
            (Some(Value::Object(x)), None) => walk(&path, inner, x, &Map::new(), out),
            (None, Some(Value::Object(y))) => walk(&path, inner, &Map::new(), y, out),
            (a, b) if is_array(a) || is_array(b) => {
                let xs = a.and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
                let ys = b.and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
                let removed: Vec<Value> = xs
                    .iter()
                    .filter(|x| !ys.contains(x))
                    .map(redact_value)
                    .collect();
                let added: Vec<Value> = ys
                    .iter()
                    .filter(|y| !xs.contains(y))
                    .map(redact_value)
                    .collect();
                if removed.is_empty() && added.is_empty() {
                    continue; // the same elements in another order
                }
                out.push(AttrChange {
                    attr: path,
                    from: (!removed.is_empty()).then(|| cap(Value::Array(removed))),
                    to: (!added.is_empty()).then(|| cap(Value::Array(added))),
                });
            }
            (a, b) => out.push(AttrChange {
                attr: path,
                from: a.map(|v| cap(v.clone())),
                to: b.map(|v| cap(v.clone())),
            }),
        }
    }
}

fn is_array(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::Array(_)))
}

/// A value without any password inside (an element of a multi-valued complex attribute).
fn redact_value(v: &Value) -> Value {
    let mut v = v.clone();
    strip_passwords(&mut v);
    v
}

/// A value as a diff shows it: long strings cut, large values replaced by their size.
fn cap(v: Value) -> Value {
    match v {
        Value::String(s) => Value::String(cut_chars(&s, MAX_VALUE_CHARS)),
        other => {
            let len = serde_json::to_string(&other).map_or(0, |t| t.len());
            if len <= MAX_VALUE_BYTES {
                other
            } else {
                Value::String(format!("(a value of {len} bytes, not shown)"))
            }
        }
    }
}

/// `text` cut to `max` characters, with `…` when something was cut.
fn cut_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((at, _)) => format!("{}…", &text[..at]),
    }
}

/// Remove every `password` key, at any depth, and blank the `value` of a PATCH operation whose
/// `path` names the password.
pub fn strip_passwords(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|k, _| !is_password(k));
            let names_password = map
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("path"))
                .and_then(|(_, p)| p.as_str())
                .is_some_and(path_names_password);
            if names_password {
                for (k, val) in map.iter_mut() {
                    if k.eq_ignore_ascii_case("value") {
                        *val = Value::from(REDACTED);
                    }
                }
            }
            for val in map.values_mut() {
                strip_passwords(val);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip_passwords),
        _ => {}
    }
}

/// A PATCH path that is (or is inside) the password: `password`, `urn:…:User:password`, with
/// any filter or sub-attribute after it.
fn path_names_password(path: &str) -> bool {
    let head = path.split(['[', ' ']).next().unwrap_or(path);
    head.split([':', '.'])
        .any(|part| part.eq_ignore_ascii_case("password"))
}

/// A request body as the provisioning log keeps it: passwords stripped, then its JSON text cut
/// at `MAX_BODY_BYTES` (on a character boundary) with a note of the full size.
pub fn redact_body(body: &Value) -> String {
    let mut v = body.clone();
    strip_passwords(&mut v);
    let text = serde_json::to_string(&v).unwrap_or_default();
    if text.len() <= MAX_BODY_BYTES {
        return text;
    }
    let mut at = MAX_BODY_BYTES;
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    format!("{}… (cut: {} bytes in all)", &text[..at], text.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    #[test]
    fn a_create_lists_every_attribute_and_a_delete_every_old_one() {
        let doc = json!({"schemas": ["x"], "userName": "a@x", "active": true, "name": {"givenName": "A"}});
        let d = diff("create", None, Some(&doc));
        assert_eq!(
            d.changes,
            vec![
                AttrChange {
                    attr: "userName".into(),
                    from: None,
                    to: Some(json!("a@x"))
                },
                AttrChange {
                    attr: "active".into(),
                    from: None,
                    to: Some(json!(true))
                },
                AttrChange {
                    attr: "name.givenName".into(),
                    from: None,
                    to: Some(json!("A"))
                },
            ]
        );
        let d = diff("delete", Some(&doc), None);
        assert_eq!(d.changes.len(), 3);
        assert!(d.changes.iter().all(|c| c.to.is_none() && c.from.is_some()));
    }

    #[test]
    fn a_create_is_stored_as_its_document_and_read_back_as_its_diff() {
        let doc = json!({
            "schemas": ["x"], "userName": "a@x", "active": true,
            "name": {"givenName": "A", "familyName": "B"},
            "emails": [{"type": "work", "value": "a@x", "primary": true}],
            ENT: {"department": "Ops"},
        });
        let text = created_text(&doc, &[]);
        let stored: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(stored["created"], doc, "{text}");
        let as_diff = diff("create", None, Some(&doc));
        assert!(text.len() < serde_json::to_string(&as_diff).unwrap().len());
        assert_eq!(parse_stored(&text).unwrap(), as_diff);
    }

    #[test]
    fn a_diff_stored_in_its_own_form_reads_back_unchanged() {
        let mut d = diff(
            "update",
            Some(&json!({"title": "A"})),
            Some(&json!({"title": "B"})),
        );
        d.members = Some(MemberChanges::of(&["m"], &[]));
        let text = serde_json::to_string(&d).unwrap();
        assert_eq!(parse_stored(&text).unwrap(), d);
        let create =
            serde_json::to_string(&diff("create", None, Some(&json!({"userName": "a"})))).unwrap();
        assert_eq!(parse_stored(&create).unwrap().changes[0].attr, "userName");
        assert!(
            parse_stored("{\"changes\": []}").is_err(),
            "an op is required"
        );
    }

    #[test]
    fn a_large_create_is_stored_as_its_capped_diff() {
        let mut doc = json!({"userName": "a@x"});
        for i in 0..100 {
            doc[format!("x{i}")] = json!("v".repeat(500));
        }
        let text = created_text(&doc, &[]);
        assert!(text.len() <= MAX_CREATED_BYTES * 2, "{} bytes", text.len());
        let d = parse_stored(&text).unwrap();
        assert_eq!((d.changes.len(), d.more), (MAX_CHANGES, 101 - MAX_CHANGES));
        assert!(d.changes.iter().all(
            |c| c.to.as_ref().unwrap().as_str().unwrap().chars().count() <= MAX_VALUE_CHARS + 1
        ));
    }

    #[test]
    fn a_password_in_a_created_document_is_never_stored() {
        let doc = json!({"userName": "a@x", "password": "Hunter2", ENT: {"password": "Hunter3"}});
        let text = created_text(&doc, &[]);
        assert!(!text.contains("Hunter"), "{text}");
        assert_eq!(parse_stored(&text).unwrap().changes.len(), 1);
    }

    #[test]
    fn a_creates_text_names_every_attribute_and_each_member_once() {
        let text = created_text(&json!({"displayName": "Ops"}), &["b", "a", "b"]);
        let d = parse_stored(&text).unwrap();
        assert_eq!(d.op, "create");
        assert_eq!(d.changes[0].to, Some(json!("Ops")));
        let m = d.members.unwrap();
        assert_eq!(
            (m.added, m.added_count),
            (vec!["a".to_string(), "b".to_string()], 2)
        );
    }

    #[test]
    fn sub_attributes_and_extension_attributes_are_named_by_their_path() {
        let old = json!({"name": {"givenName": "A", "familyName": "B"}, ENT: {"department": "Ops", "manager": {"value": "m1"}}});
        let new = json!({"name": {"givenName": "A", "familyName": "C"}, ENT: {"department": "Sales", "manager": {"value": "m2"}}});
        let d = diff("update", Some(&old), Some(&new));
        let attrs: Vec<_> = d
            .changes
            .iter()
            .map(|c| (c.attr.as_str(), c.from.clone(), c.to.clone()))
            .collect();
        assert_eq!(
            attrs,
            vec![
                ("name.familyName", Some(json!("B")), Some(json!("C"))),
                (
                    &*format!("{ENT}:department"),
                    Some(json!("Ops")),
                    Some(json!("Sales"))
                ),
                (
                    &*format!("{ENT}:manager.value"),
                    Some(json!("m1")),
                    Some(json!("m2"))
                ),
            ]
        );
    }

    #[test]
    fn multi_valued_attributes_show_the_elements_removed_and_added_not_a_reorder() {
        let old =
            json!({"emails": [{"type": "work", "value": "a@x"}, {"type": "home", "value": "h@x"}]});
        let new =
            json!({"emails": [{"type": "home", "value": "h@x"}, {"type": "work", "value": "b@x"}]});
        let d = diff("update", Some(&old), Some(&new));
        assert_eq!(
            d.changes,
            vec![AttrChange {
                attr: "emails".into(),
                from: Some(json!([{"type": "work", "value": "a@x"}])),
                to: Some(json!([{"type": "work", "value": "b@x"}])),
            }]
        );
        let reordered =
            json!({"emails": [{"type": "home", "value": "h@x"}, {"type": "work", "value": "a@x"}]});
        assert!(diff("update", Some(&old), Some(&reordered))
            .changes
            .is_empty());
    }

    #[test]
    fn unchanged_null_and_server_owned_attributes_are_not_listed() {
        let old = json!({"id": "1", "meta": {"version": "W/\"1\""}, "title": "T", "nick": null});
        let new = json!({"id": "1", "meta": {"version": "W/\"2\""}, "title": "T", "groups": [{"value": "g"}]});
        assert!(diff("update", Some(&old), Some(&new)).changes.is_empty());
    }

    #[test]
    fn a_password_is_never_shown_only_that_one_was_sent() {
        let old = json!({"password": "old-secret"});
        let new = json!({"password": "new-secret", "x": [{"password": "p", "value": "v"}]});
        let d = diff("update", Some(&old), Some(&new));
        let text = serde_json::to_string(&d).unwrap();
        assert!(
            !text.contains("secret") && !text.contains("\"p\""),
            "{text}"
        );
        assert_eq!(d.changes[0].to, Some(json!(REDACTED)));
    }

    #[test]
    fn values_and_the_number_of_changes_are_capped() {
        let long = "x".repeat(5000);
        let big: Vec<Value> = (0..500)
            .map(|i| json!({"value": format!("v{i}")}))
            .collect();
        let mut new = json!({"title": long, "roles": big});
        for i in 0..200 {
            new[format!("a{i}")] = json!(i);
        }
        let d = diff("create", None, Some(&new));
        assert_eq!(d.changes.len(), MAX_CHANGES);
        assert_eq!(d.more, 202 - MAX_CHANGES);
        let title = d.changes[0].to.as_ref().unwrap().as_str().unwrap();
        assert_eq!(title.chars().count(), MAX_VALUE_CHARS + 1);
        let roles = d.changes[1].to.as_ref().unwrap().as_str().unwrap();
        assert!(roles.contains("not shown"), "{roles}");
        assert!(serde_json::to_string(&d).unwrap().len() < 32 * 1024);
    }

    #[test]
    fn member_changes_list_at_most_a_hundred_ids_but_count_all() {
        let ids: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let m = MemberChanges::of(&refs, &["r"]);
        assert_eq!(
            (m.added.len(), m.added_count, m.removed_count),
            (MAX_MEMBER_IDS, 1000, 1)
        );
    }

    #[test]
    fn bodies_lose_every_password_also_inside_patch_operations() {
        let body = json!({
            "userName": "a", "password": "S1", "Password": "S2",
            "Operations": [
                {"op": "replace", "path": "password", "value": "S3"},
                {"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:password", "value": "S4"},
                {"op": "add", "value": {"password": "S5", "title": "T"}},
                {"op": "Replace", "Path": "PASSWORD", "Value": "S6"},
            ]
        });
        let text = redact_body(&body);
        for s in ["S1", "S2", "S3", "S4", "S5", "S6"] {
            assert!(!text.contains(s), "{s} in {text}");
        }
        assert!(
            text.contains("\"title\":\"T\"") && text.contains("\"userName\":\"a\""),
            "{text}"
        );
    }

    #[test]
    fn a_huge_body_is_cut_on_a_character_boundary() {
        let body = json!({"title": "é".repeat(100_000)});
        let text = redact_body(&body);
        assert!(text.len() < MAX_BODY_BYTES + 100, "{}", text.len());
        assert!(
            text.ends_with("bytes in all)"),
            "{}",
            &text[text.len() - 40..]
        );
    }
}
