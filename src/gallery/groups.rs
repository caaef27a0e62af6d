//! The group checks: SCIM_Group_Create_Test and SCIM_Group_Update_Test (with the GroupTalk
//! `description` extension).

use serde_json::{json, Value};

use super::mapping::{Target, TargetType, GROUP_TARGETS};
use super::{
    describe, id_of, patch_body, resource_path, short_id, template_get, text, Check, Transport,
};
use crate::scim::schema::GROUP;

/// The template's `scimGroupBody`: the core Group schema only, a displayName, and a fresh
/// `externalId` (the mapping has one).
pub(crate) fn group_body(display_name: &str) -> Value {
    json!({
        "schemas": [GROUP],
        "displayName": display_name,
        "externalId": uuid::Uuid::new_v4().to_string(),
    })
}

fn delete(t: &dyn Transport, id: &str) {
    if !id.is_empty() {
        let _ = t.scim("DELETE", &resource_path("/Groups", id), None);
    }
}

const CREATE: &str = "SCIM_Group_Create_Test";

/// POST /Groups: 200 or 201, a non-empty `id`, the same `displayName`.
pub fn group_create(t: &dyn Transport) -> Check {
    let name = format!("LASCDirectGroup-{}", short_id());
    let r = match t.scim("POST", "/Groups", Some(&group_body(&name))) {
        Ok(r) => r,
        Err(e) => return Check::fail(CREATE, e),
    };
    let id = id_of(&r);
    delete(t, &id);
    if !matches!(r.status, 200 | 201) || id.is_empty() {
        return Check::fail(CREATE, format!("POST /Groups: {}", describe(&r)));
    }
    if r.body["displayName"] != name.as_str() {
        return Check::fail(
            CREATE,
            format!("displayName came back as {}", r.body["displayName"]),
        );
    }
    Check::pass(
        CREATE,
        format!("HTTP {}, displayName round-tripped", r.status),
    )
}

const UPDATE: &str = "SCIM_Group_Update_Test";

/// The mapped group attributes the template updates: single-valued, read-write, not a
/// reference, not id/members/schemas/meta — displayName, externalId and the GroupTalk
/// `description` extension.
pub fn update_targets() -> Vec<&'static Target> {
    GROUP_TARGETS
        .iter()
        .filter(|t| !t.multi_valued && t.ty != TargetType::Reference)
        .filter(|t| !["id", "members", "schemas", "meta"].contains(&t.name))
        .collect()
}

/// The paths whose value the template's comparison would not find: it reads every path at the
/// top level of the response (`body[path]`), so an extension attribute such as
/// `urn:…:Group:description` — which RFC 7643 §3.3 puts inside its extension object — never
/// matches.
pub fn template_mismatches(body: &Value, sent: &[(&str, Value)]) -> Vec<String> {
    sent.iter()
        .filter(|(p, v)| text(&body[*p]) != text(v))
        .map(|(p, _)| p.to_string())
        .collect()
}

/// The same comparison, reading extension attributes where RFC 7643 puts them.
pub fn rfc_mismatches(body: &Value, sent: &[(&str, Value)]) -> Vec<String> {
    sent.iter()
        .filter(|(p, v)| text(template_get(body, p)) != text(v))
        .map(|(p, v)| format!("{p}: sent {v}, got {}", template_get(body, p)))
        .collect()
}

/// Create a group, replace every eligible attribute with a made-up `upd-…` value (one operation
/// per path, as the template always sends), GET it: each value must be there exactly.
pub fn group_update(t: &dyn Transport) -> Check {
    let r = match t.scim(
        "POST",
        "/Groups",
        Some(&group_body(&format!("LASUpdGroup-{}", short_id()))),
    ) {
        Ok(r) => r,
        Err(e) => return Check::fail(UPDATE, e),
    };
    let id = id_of(&r);
    if id.is_empty() {
        return Check::fail(UPDATE, format!("POST /Groups: {}", describe(&r)));
    }
    let sent: Vec<(&str, Value)> = update_targets()
        .iter()
        .map(|tg| (tg.name, json!(format!("upd-{}", short_id()))))
        .collect();
    let result = update_and_read(t, &id, &sent);
    delete(t, &id);
    let body = match result {
        Ok(b) => b,
        Err(e) => return Check::fail(UPDATE, e),
    };
    let rfc = rfc_mismatches(&body, &sent);
    if !rfc.is_empty() {
        return Check::fail(UPDATE, format!("mismatches: {rfc:?}"));
    }
    let mut check = Check::pass(UPDATE, format!("{} attributes round-tripped", sent.len()));
    let template = template_mismatches(&body, &sent);
    if !template.is_empty() {
        check.template_flaw = Some(format!(
            "the template reads {template:?} at the top level of the response, where RFC 7643 \
             §3.3 does not put extension attributes, and would report mismatches"
        ));
    }
    check
}

fn update_and_read(t: &dyn Transport, id: &str, sent: &[(&str, Value)]) -> Result<Value, String> {
    let path = resource_path("/Groups", id);
    let ops = sent
        .iter()
        .map(|(p, v)| json!({"op": "replace", "path": p, "value": v}))
        .collect();
    let r = t.scim("PATCH", &path, Some(&patch_body(ops)))?;
    if !matches!(r.status, 200 | 204) {
        return Err(format!("PATCH: {}", describe(&r)));
    }
    let got = t.scim("GET", &path, None)?;
    if !matches!(got.status, 200 | 204) {
        return Err(format!("GET: {}", describe(&got)));
    }
    Ok(got.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_templates_top_level_reading_misses_extension_attributes_and_only_them() {
        let desc = "urn:ietf:params:scim:schemas:extension:grouptalk:2.0:Group:description";
        let body = json!({
            "displayName": "upd-1",
            "urn:ietf:params:scim:schemas:extension:grouptalk:2.0:Group": {"description": "upd-2"}
        });
        let sent = [("displayName", json!("upd-1")), (desc, json!("upd-2"))];
        assert_eq!(template_mismatches(&body, &sent), vec![desc.to_string()]);
        assert!(rfc_mismatches(&body, &sent).is_empty());
    }

    #[test]
    fn the_template_updates_display_name_external_id_and_description() {
        let names: Vec<&str> = update_targets().iter().map(|t| t.name).collect();
        assert_eq!(names.len(), 3);
        assert!(names.contains(&"displayName") && names.contains(&"externalId"));
    }
}
