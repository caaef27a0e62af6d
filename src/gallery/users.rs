//! The user checks: SCIM_Null_Update_Test, SCIM_User_Create_Test, SCIM_User_Update_Test,
//! SCIM_Update_Manager_Test. Each creates its own users and deletes
//! them again, whatever the outcome.

use serde_json::{json, Map, Value};

use super::mapping::{self, Target, TargetType, USER_TARGETS};
use super::{
    describe, id_of, patch_body, resource_path, short_id, template_get, text, Check, Reply,
    Transport, TEST_DOMAIN,
};
use crate::scim::schema::ENTERPRISE_USER;

/// Targets the template never writes in a create body it builds itself.
const NOT_IN_CREATE: &[&str] = &["userName", "active", "externalId", "roles", "id"];

/// The value the Initialization workflow makes up for a target attribute of the test user.
fn made_up_value(name: &str) -> String {
    let lower = name.to_lowercase();
    let id = short_id();
    if lower.contains("emails[") {
        format!("lasctest{id}@{TEST_DOMAIN}")
    } else if lower.contains("phonenumbers[") {
        format!("+1-555-{}", &id[..4])
    } else if lower.ends_with(".givenname") {
        "Test".into()
    } else if lower.ends_with(".familyname") {
        "User".into()
    } else {
        let leaf = name.rsplit(':').next().unwrap_or(name);
        let leaf = leaf.rsplit('.').next().unwrap_or(leaf);
        let leaf = leaf.split('[').next().unwrap_or(leaf);
        format!("Test-{leaf}-{}", &id[..6])
    }
}

/// Put `value` where the target path names: `urn:…:attr` in its extension object,
/// `emails[type eq "work"].value` in the element of that type (created, `primary` on the first
/// of its attribute), `a.b` in `a`, anything else at the top.
fn set_target(body: &mut Map<String, Value>, path: &str, value: Value) {
    if path.starts_with("urn:") {
        if let Some((urn, attr)) = path.rsplit_once(':') {
            let ext = body.entry(urn).or_insert_with(|| json!({}));
            ext[attr] = value;
            return;
        }
    }
    if let Some((parent, rest)) = path.split_once('[') {
        let ty = rest.split('"').nth(1).unwrap_or_default();
        let sub = rest.rsplit('.').next().unwrap_or("value");
        let list = body.entry(parent).or_insert_with(|| json!([]));
        let Some(items) = list.as_array_mut() else {
            return;
        };
        if let Some(el) = items.iter_mut().find(|e| e["type"] == ty) {
            el[sub] = value;
        } else {
            let primary = items.is_empty();
            items.push(json!({"type": ty, "primary": primary, sub: value}));
        }
        return;
    }
    if let Some((a, b)) = path.split_once('.') {
        let obj = body.entry(a).or_insert_with(|| json!({}));
        obj[b] = value;
        return;
    }
    body.insert(path.to_string(), value);
}

/// The template's `scimUserBody` for the GroupTalk mapping, with this `userName` and a fresh
/// `externalId` (the mapping has one).
pub(crate) fn user_body(user_name: &str) -> Value {
    let mut body = Map::new();
    body.insert("schemas".into(), json!(mapping::user_schemas()));
    body.insert("userName".into(), json!(user_name));
    body.insert("active".into(), json!(true));
    for t in USER_TARGETS
        .iter()
        .filter(|t| t.ty != TargetType::Reference && !NOT_IN_CREATE.contains(&t.name))
    {
        set_target(&mut body, t.name, json!(made_up_value(t.name)));
    }
    body.insert("externalId".into(), json!(uuid::Uuid::new_v4().to_string()));
    Value::Object(body)
}

/// POST a user; its id when the server made one.
fn create(t: &dyn Transport, body: &Value) -> Result<(Reply, String), String> {
    let r = t.scim("POST", "/Users", Some(body))?;
    let id = id_of(&r);
    Ok((r, id))
}

pub(crate) fn delete(t: &dyn Transport, endpoint: &str, id: &str) {
    if !id.is_empty() {
        let _ = t.scim("DELETE", &resource_path(endpoint, id), None);
    }
}

const CREATE: &str = "SCIM_User_Create_Test";

/// POST /Users with the template's body: 200 or 201, a non-empty `id`, the same `userName`.
pub fn user_create(t: &dyn Transport) -> Check {
    let user_name = format!("lascuser{}@{TEST_DOMAIN}", short_id());
    let (r, id) = match create(t, &user_body(&user_name)) {
        Ok(x) => x,
        Err(e) => return Check::fail(CREATE, e),
    };
    delete(t, "/Users", &id);
    if !matches!(r.status, 200 | 201) || id.is_empty() {
        return Check::fail(CREATE, format!("POST /Users: {}", describe(&r)));
    }
    if r.body["userName"] != user_name.as_str() {
        return Check::fail(
            CREATE,
            format!("userName came back as {}", r.body["userName"]),
        );
    }
    Check::pass(CREATE, format!("HTTP {}, userName round-tripped", r.status))
}

/// PATCH operations in the two shapes the template sends: `verbose` (one operation per path) or
/// Entra's default (filtered paths as operations, the rest in one path-less `replace`).
fn operations(targets: &[(&'static str, Value)], verbose: bool) -> Vec<Value> {
    let op = |path: &str, value: &Value| json!({"op": "replace", "path": path, "value": value});
    if verbose {
        return targets.iter().map(|(p, v)| op(p, v)).collect();
    }
    let mut ops: Vec<Value> = targets
        .iter()
        .filter(|(p, _)| p.contains('['))
        .map(|(p, v)| op(p, v))
        .collect();
    let rest: Map<String, Value> = targets
        .iter()
        .filter(|(p, _)| !p.contains('['))
        .map(|(p, v)| (p.to_string(), v.clone()))
        .collect();
    if !rest.is_empty() {
        ops.push(json!({"op": "replace", "value": rest}));
    }
    ops
}

fn shape(verbose: bool) -> &'static str {
    if verbose {
        "one operation per path"
    } else {
        "path-less"
    }
}

const NULL_UPDATE: &str = "SCIM_Null_Update_Test";

/// The optional mapped attributes the null test clears: not matching, not a reference, not
/// userName/active/externalId/roles, not required by the served schema (only userName is).
fn null_targets() -> Vec<&'static Target> {
    USER_TARGETS
        .iter()
        .filter(|t| t.matching == 0 && t.ty != TargetType::Reference)
        .filter(|t| !NOT_IN_CREATE.contains(&t.name))
        .collect()
}

/// What the template reads back for a target after clearing it (phase 1): the element of that
/// type's sub-attribute, or the attribute where `template_get` finds it.
fn read_back(body: &Value, path: &str) -> Value {
    if let Some((parent, rest)) = path.split_once("[type eq") {
        let ty = rest.split(']').next().unwrap_or_default();
        let ty = ty.replace(['"', '\''], "").trim().to_lowercase();
        let el = body[parent]
            .as_array()
            .and_then(|a| {
                a.iter()
                    .find(|e| e["type"].as_str().map(str::to_lowercase).as_deref() == Some(&ty))
            })
            .cloned()
            .unwrap_or(Value::Null);
        let sub = path.rsplit('.').next().unwrap_or("value");
        return el[sub].clone();
    }
    template_get(body, path).clone()
}

/// Create a user with every optional mapped attribute, PATCH them to `""` (each must read back
/// empty or absent), then to `null` (each must read back absent), in both PATCH shapes.
pub fn null_update(t: &dyn Transport) -> Check {
    let mut done = Vec::new();
    for verbose in [true, false] {
        match null_update_once(t, verbose) {
            Ok(()) => done.push(shape(verbose)),
            Err(e) => return Check::fail(NULL_UPDATE, format!("{}: {e}", shape(verbose))),
        }
    }
    Check::pass(
        NULL_UPDATE,
        format!(
            "{} attributes cleared with \"\" then null ({})",
            null_targets().len(),
            done.join(", ")
        ),
    )
}

fn null_update_once(t: &dyn Transport, verbose: bool) -> Result<(), String> {
    let user_name = format!("scnull{}@{TEST_DOMAIN}", short_id());
    let (r, id) = create(t, &user_body(&user_name))?;
    if id.is_empty() {
        return Err(format!("POST /Users: {}", describe(&r)));
    }
    let result = null_phases(t, &id, verbose);
    delete(t, "/Users", &id);
    result
}

fn null_phases(t: &dyn Transport, id: &str, verbose: bool) -> Result<(), String> {
    let path = resource_path("/Users", id);
    let targets = null_targets();
    for (phase, value) in [("\"\"", json!("")), ("null", Value::Null)] {
        let pairs: Vec<(&str, Value)> = targets.iter().map(|t| (t.name, value.clone())).collect();
        let r = t.scim(
            "PATCH",
            &path,
            Some(&patch_body(operations(&pairs, verbose))),
        )?;
        if !matches!(r.status, 200 | 204) {
            return Err(format!("PATCH to {phase}: {}", describe(&r)));
        }
        let got = t.scim("GET", &path, None)?;
        let failed: Vec<String> = targets
            .iter()
            .filter(|tg| {
                let v = read_back(&got.body, tg.name);
                if value.is_null() {
                    // Phase 2: the template skips filtered paths and wants JSON null.
                    !tg.name.contains('[') && !v.is_null()
                } else {
                    !(v.is_null() || v == "")
                }
            })
            .map(|tg| format!("{} = {}", tg.name, read_back(&got.body, tg.name)))
            .collect();
        if !failed.is_empty() {
            return Err(format!("after PATCH to {phase}, still set: {failed:?}"));
        }
    }
    Ok(())
}

const UPDATE: &str = "SCIM_User_Update_Test";

/// Every eligible mapped attribute (single-valued, read-write, not a reference, not
/// id/schemas/meta/active/groups/roles) replaced with a made-up `upd-…` value; the GET after must
/// show each exactly, in both PATCH shapes.
pub fn user_update(t: &dyn Transport) -> Check {
    let eligible: Vec<&Target> = USER_TARGETS
        .iter()
        .filter(|t| !t.multi_valued && t.ty == TargetType::String)
        .filter(|t| !["id", "schemas", "meta", "active", "groups", "roles"].contains(&t.name))
        .collect();
    for verbose in [true, false] {
        if let Err(e) = user_update_once(t, &eligible, verbose) {
            return Check::fail(UPDATE, format!("{}: {e}", shape(verbose)));
        }
    }
    Check::pass(
        UPDATE,
        format!(
            "{} attributes round-tripped exactly (both PATCH shapes)",
            eligible.len()
        ),
    )
}

fn user_update_once(t: &dyn Transport, eligible: &[&Target], verbose: bool) -> Result<(), String> {
    let (r, id) = create(
        t,
        &user_body(&format!("lasupduser{}@{TEST_DOMAIN}", short_id())),
    )?;
    if id.is_empty() {
        return Err(format!("POST /Users: {}", describe(&r)));
    }
    let path = resource_path("/Users", &id);
    let pairs: Vec<(&str, Value)> = eligible
        .iter()
        .map(|tg| (tg.name, json!(format!("upd-{}", short_id()))))
        .collect();
    let result = (|| {
        let r = t.scim(
            "PATCH",
            &path,
            Some(&patch_body(operations(&pairs, verbose))),
        )?;
        if !matches!(r.status, 200 | 204) {
            return Err(format!("PATCH: {}", describe(&r)));
        }
        let got = t.scim("GET", &path, None)?;
        if !matches!(got.status, 200 | 204) {
            return Err(format!("GET: {}", describe(&got)));
        }
        let mismatches = mismatches(&got.body, &pairs);
        if mismatches.is_empty() {
            Ok(())
        } else {
            Err(format!("mismatches: {mismatches:?}"))
        }
    })();
    delete(t, "/Users", &id);
    result
}

/// The template's verification: a filtered path matches when the JSON text of its attribute
/// contains the value; any other path when `template_get` finds exactly the value.
fn mismatches(body: &Value, sent: &[(&str, Value)]) -> Vec<String> {
    sent.iter()
        .filter(|(p, v)| {
            let want = text(v);
            match p.split_once('[') {
                Some((parent, _)) => !body[parent].to_string().contains(&want),
                None => text(template_get(body, p)) != want,
            }
        })
        .map(|(p, v)| format!("{p}: sent {v}, got {}", template_get(body, p)))
        .collect()
}

const MANAGER: &str = "SCIM_Update_Manager_Test";

/// The manager id a user shows: the enterprise extension's `manager.value` (or a top-level
/// `manager.value`, which the template also accepts).
fn manager_of(body: &Value) -> Value {
    let ext = &body[ENTERPRISE_USER]["manager"];
    if !ext.is_null() {
        return ext["value"].clone();
    }
    body["manager"]["value"].clone()
}

/// Set a manager with `Add` (a plain id as value), change it with `replace`, remove it with
/// `replace` to `""`; a GET after each must show it. Microsoft's run skips this test unless the
/// app's user mapping has `manager`.
pub fn update_manager(t: &dyn Transport) -> Check {
    let mut ids = Vec::new();
    let result = (|| {
        let mut make = |prefix: &str| -> Result<String, String> {
            let (r, id) = create(
                t,
                &user_body(&format!("{prefix}{}@{TEST_DOMAIN}", short_id())),
            )?;
            if id.is_empty() {
                return Err(format!("POST /Users: {}", describe(&r)));
            }
            ids.push(id.clone());
            Ok(id)
        };
        let user = make("scmgr-user-")?;
        let path = resource_path("/Users", &user);
        let manager_path = format!("{ENTERPRISE_USER}:manager");
        let step = |op: &str, value: &str, want: Option<&str>| -> Result<(), String> {
            let body = patch_body(vec![
                json!({"op": op, "path": manager_path, "value": value}),
            ]);
            let r = t.scim("PATCH", &path, Some(&body))?;
            if !matches!(r.status, 200 | 204) {
                return Err(format!("PATCH {op} {value:?}: {}", describe(&r)));
            }
            let got = manager_of(&t.scim("GET", &path, None)?.body);
            let ok = match want {
                Some(id) => got == id,
                None => got.is_null() || got == "",
            };
            if ok {
                Ok(())
            } else {
                Err(format!("after {op} {value:?} the manager is {got}"))
            }
        };
        let first = make("scmgr-mgr-")?;
        step("Add", &first, Some(&first))?;
        let second = make("scmgr-mgr2-")?;
        step("replace", &second, Some(&second))?;
        step("replace", "", None)
    })();
    for id in &ids {
        delete(t, "/Users", id);
    }
    match result {
        Ok(()) => Check::pass(
            MANAGER,
            "set (Add), changed (replace), removed (replace with \"\"); Microsoft's run skips \
             it unless the user mapping has manager",
        ),
        Err(e) => Check::fail(MANAGER, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_create_body_has_every_mapped_attribute_where_scim_puts_it() {
        let b = user_body("a@example.com");
        assert_eq!(b["userName"], "a@example.com");
        assert_eq!(b["emails"][0]["type"], "work");
        assert_eq!(b["emails"][0]["primary"], true);
        assert_eq!(b["phoneNumbers"][0]["type"], "mobile");
        assert_eq!(b["name"]["givenName"], "Test");
        assert!(b[ENTERPRISE_USER]["costCenter"]
            .as_str()
            .unwrap()
            .starts_with("Test-costCenter-"));
        assert!(b["externalId"].as_str().is_some_and(|s| s.len() == 36));
    }

    #[test]
    fn path_less_operations_keep_filtered_paths_as_their_own_operations() {
        let ops = operations(
            &[
                ("emails[type eq \"work\"].value", json!("")),
                ("name.givenName", json!("")),
            ],
            false,
        );
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0]["path"], "emails[type eq \"work\"].value");
        assert_eq!(ops[1]["value"]["name.givenName"], "");
        assert!(ops[1].get("path").is_none());
    }

    #[test]
    fn read_back_finds_the_element_of_the_filtered_type() {
        let body = json!({"phoneNumbers": [{"type": "Mobile", "value": "1"}]});
        assert_eq!(
            read_back(&body, "phoneNumbers[type eq \"mobile\"].value"),
            "1"
        );
        assert!(read_back(&body, "emails[type eq \"work\"].value").is_null());
    }
}
