//! The GroupTalk attribute mapping (the data contract of the gallery listing: Entra's target
//! attributes for GroupTalk users and groups), and the way the template reads `/Schemas` to
//! decide whether each of them is discoverable.
//!
//! The Logic App takes the target attributes from the provisioning job's schema in Entra; the
//! GroupTalk tutorial's two tables list them (README "Attributes (the GroupTalk tables)"), and
//! these rows are those tables. `matching` is the matching precedence (1 for the attribute
//! Entra matches on); every row is single-valued and read-write except `members`.

use serde_json::Value;

use crate::scim::schema::{ENTERPRISE_USER, GROUP, GROUPTALK_GROUP, GROUPTALK_USER, USER};

/// One target attribute as Entra's schema describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub name: &'static str,
    pub ty: TargetType,
    pub multi_valued: bool,
    /// Matching precedence: 1 for the matching attribute, 0 otherwise.
    pub matching: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetType {
    String,
    Boolean,
    Reference,
}

const fn string(name: &'static str) -> Target {
    Target {
        name,
        ty: TargetType::String,
        multi_valued: false,
        matching: 0,
    }
}

/// The GroupTalk user mapping (tutorial table 1).
pub static USER_TARGETS: &[Target] = &[
    Target {
        matching: 1,
        ..string("userName")
    },
    string("phoneNumbers[type eq \"mobile\"].value"),
    string("emails[type eq \"work\"].value"),
    Target {
        ty: TargetType::Boolean,
        ..string("active")
    },
    string("name.givenName"),
    string("name.familyName"),
    string("externalId"),
    string("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter"),
    string("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:organization"),
    string("urn:ietf:params:scim:schemas:extension:grouptalk:2.0:User:label1"),
    string("urn:ietf:params:scim:schemas:extension:grouptalk:2.0:User:label2"),
    string("urn:ietf:params:scim:schemas:extension:grouptalk:2.0:User:label3"),
    string("urn:ietf:params:scim:schemas:extension:grouptalk:2.0:User:label4"),
    string("urn:ietf:params:scim:schemas:extension:grouptalk:2.0:User:label5"),
];

/// The GroupTalk group mapping (tutorial table 2).
pub static GROUP_TARGETS: &[Target] = &[
    Target {
        matching: 1,
        ..string("displayName")
    },
    Target {
        name: "members",
        ty: TargetType::Reference,
        multi_valued: true,
        matching: 0,
    },
    string("externalId"),
    string("urn:ietf:params:scim:schemas:extension:grouptalk:2.0:Group:description"),
];

/// The extension URNs the user targets name, for a create body's `schemas`.
pub fn user_schemas() -> Vec<&'static str> {
    vec![USER, ENTERPRISE_USER, GROUPTALK_USER]
}

/// The group schemas a create body names.
pub fn group_schemas() -> Vec<&'static str> {
    vec![GROUP, GROUPTALK_GROUP]
}

/// `/Schemas` flattened into attribute names the way Schema_Discoverability_Test does it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Flattened {
    pub user: Vec<String>,
    pub group: Vec<String>,
}

/// The template's flattening: the core User schema's attributes (`manager`/`members` by name;
/// a complex multi-valued attribute whose `type` has canonical values as
/// `name[type eq "v"].sub` for every sub-attribute but `type` and `primary`, otherwise
/// `name[primary eq "True"].sub`; a complex single-valued one as `name.sub` for its simple
/// sub-attributes; a simple one by name; references skipped), then `urn:…:attr` for the
/// top-level attributes of every schema that is neither core User nor core Group. Groups: only
/// the core Group schema, the same way — extensions of Group are not read at all.
pub fn flatten_like_template(schemas: &Value) -> Flattened {
    let resources = schemas["Resources"].as_array().cloned().unwrap_or_default();
    let by_id = |id: &str| resources.iter().find(|r| r["id"] == id);
    let mut out = Flattened::default();
    if let Some(user) = by_id(USER) {
        out.user = flatten_core(user);
    }
    for ext in resources
        .iter()
        .filter(|r| r["id"] != USER && r["id"] != GROUP)
    {
        let id = ext["id"].as_str().unwrap_or_default();
        for a in ext["attributes"].as_array().into_iter().flatten() {
            out.user
                .push(format!("{id}:{}", a["name"].as_str().unwrap_or_default()));
        }
    }
    if let Some(group) = by_id(GROUP) {
        out.group = flatten_core(group);
    }
    out
}

/// The same flattening, with what the template leaves out: the attributes of the extension
/// schemas `/ResourceTypes` lists for Group (RFC 7643 §6 `schemaExtensions`) join the group
/// names. How a client that follows RFC 7643 would find them.
pub fn flatten_per_rfc(schemas: &Value, resource_types: &Value) -> Flattened {
    let mut out = flatten_like_template(schemas);
    let resources = schemas["Resources"].as_array().cloned().unwrap_or_default();
    let types = resource_types["Resources"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let group_extensions = types
        .iter()
        .filter(|t| t["schema"] == GROUP)
        .flat_map(|t| {
            t["schemaExtensions"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|e| e["schema"].as_str().map(str::to_string));
    for ext_id in group_extensions {
        let Some(ext) = resources.iter().find(|r| r["id"] == ext_id.as_str()) else {
            continue;
        };
        for a in ext["attributes"].as_array().into_iter().flatten() {
            out.group.push(format!(
                "{ext_id}:{}",
                a["name"].as_str().unwrap_or_default()
            ));
        }
    }
    out
}

fn flatten_core(schema: &Value) -> Vec<String> {
    let mut names = Vec::new();
    for a in schema["attributes"].as_array().into_iter().flatten() {
        let name = a["name"].as_str().unwrap_or_default();
        let ty = a["type"].as_str().unwrap_or_default();
        let subs = a["subAttributes"].as_array().cloned().unwrap_or_default();
        let sub_name = |s: &Value| s["name"].as_str().unwrap_or_default().to_string();
        if name == "manager" || name == "members" {
            names.push(name.to_string());
        } else if ty == "complex" && a["multiValued"] == true {
            let canonical = subs
                .iter()
                .find(|s| s["name"] == "type")
                .and_then(|t| t["canonicalValues"].as_array().cloned())
                .unwrap_or_default();
            if canonical.is_empty() {
                for s in subs.iter().filter(|s| s["name"] != "primary") {
                    names.push(format!("{name}[primary eq \"True\"].{}", sub_name(s)));
                }
            } else {
                for v in &canonical {
                    let v = v.as_str().unwrap_or_default();
                    for s in subs
                        .iter()
                        .filter(|s| s["name"] != "type" && s["name"] != "primary")
                    {
                        names.push(format!("{name}[type eq \"{v}\"].{}", sub_name(s)));
                    }
                }
            }
        } else if ty == "complex" {
            for s in subs
                .iter()
                .filter(|s| s["type"] != "complex" && s["type"] != "reference")
            {
                names.push(format!("{name}.{}", sub_name(s)));
            }
        } else if ty != "reference" {
            names.push(name.to_string());
        }
    }
    names
}

/// The targets (other than `id`) whose name is not among `flattened`, compared
/// case-insensitively — the template's "missing attributes".
pub fn missing(targets: &[Target], flattened: &[String]) -> Vec<&'static str> {
    let known: Vec<String> = flattened.iter().map(|n| n.to_lowercase()).collect();
    targets
        .iter()
        .map(|t| t.name)
        .filter(|n| *n != "id" && !known.contains(&n.to_lowercase()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schemas() -> Value {
        json!({"Resources": [
            {"id": USER, "attributes": [
                {"name": "userName", "type": "string"},
                {"name": "name", "type": "complex", "subAttributes": [
                    {"name": "givenName", "type": "string"}]},
                {"name": "emails", "type": "complex", "multiValued": true, "subAttributes": [
                    {"name": "value", "type": "string"},
                    {"name": "type", "type": "string", "canonicalValues": ["work", "home"]},
                    {"name": "primary", "type": "boolean"}]},
                {"name": "x509Certificates", "type": "complex", "multiValued": true,
                 "subAttributes": [{"name": "value"}, {"name": "type"}, {"name": "primary"}]},
                {"name": "profileUrl", "type": "reference"}]},
            {"id": ENTERPRISE_USER, "attributes": [{"name": "costCenter", "type": "string"}]},
            {"id": GROUP, "attributes": [
                {"name": "displayName", "type": "string"},
                {"name": "members", "type": "complex", "multiValued": true}]},
            {"id": GROUPTALK_GROUP, "attributes": [{"name": "description", "type": "string"}]}
        ]})
    }

    #[test]
    fn flattening_follows_the_templates_rules() {
        let f = flatten_like_template(&schemas());
        assert_eq!(
            f.user,
            vec![
                "userName",
                "name.givenName",
                "emails[type eq \"work\"].value",
                "emails[type eq \"home\"].value",
                "x509Certificates[primary eq \"True\"].value",
                "x509Certificates[primary eq \"True\"].type",
                &format!("{ENTERPRISE_USER}:costCenter"),
                &format!("{GROUPTALK_GROUP}:description"),
            ]
        );
        assert_eq!(f.group, vec!["displayName", "members"]);
    }

    #[test]
    fn the_template_never_reads_group_extensions_and_the_rfc_reading_does() {
        let types = json!({"Resources": [
            {"schema": GROUP, "schemaExtensions": [{"schema": GROUPTALK_GROUP}]}]});
        let desc = "urn:ietf:params:scim:schemas:extension:grouptalk:2.0:Group:description";
        assert!(missing(GROUP_TARGETS, &flatten_like_template(&schemas()).group).contains(&desc));
        assert!(
            !missing(GROUP_TARGETS, &flatten_per_rfc(&schemas(), &types).group).contains(&desc)
        );
    }

    #[test]
    fn missing_compares_case_insensitively() {
        let flat = vec!["USERNAME".to_string()];
        assert!(!missing(&USER_TARGETS[..1], &flat).contains(&"userName"));
    }
}
