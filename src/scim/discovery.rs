//! Discovery documents (RFC 7644 §4): `/ServiceProviderConfig`, `/ResourceTypes`, `/Schemas`,
//! generated from the schema table so they always describe what the server really does.

use serde_json::{json, Value};

use super::schema::{
    find, Attribute, ResourceType, Schema, COMMON_ATTRIBUTES, RESOURCE_TYPES, SCHEMAS,
};

/// Largest page a list request returns; also `filter.maxResults`.
pub const MAX_RESULTS: usize = 1000;
/// Page size when the client gives no `count`.
pub const DEFAULT_COUNT: usize = 100;
/// `pagination.cursorTimeout` (RFC 9865), seconds: a list cursor stays valid at least this
/// long (in fact until the directory is restored from a backup).
pub const CURSOR_TIMEOUT_SECS: u64 = 86_400;

fn attribute(a: &Attribute) -> Value {
    let mut v = json!({
        "name": a.name,
        "type": a.ty.as_str(),
        "multiValued": a.multi_valued,
        "description": a.description,
        "required": a.required,
        "caseExact": a.case_exact,
        "mutability": a.mutability.as_str(),
        "returned": a.returned.as_str(),
        "uniqueness": a.uniqueness.as_str(),
    });
    if let Some(obj) = v.as_object_mut() {
        if !a.canonical_values.is_empty() {
            obj.insert("canonicalValues".into(), json!(a.canonical_values));
        }
        if !a.reference_types.is_empty() {
            obj.insert("referenceTypes".into(), json!(a.reference_types));
        }
        if !a.sub_attributes.is_empty() {
            obj.insert(
                "subAttributes".into(),
                a.sub_attributes.iter().map(attribute).collect(),
            );
        }
    }
    v
}

/// The attributes a schema document lists: its own, and for the core schema of a resource type
/// also `externalId`. RFC 7643 §3.1 keeps the common attributes out of schemas but lets a
/// schema list them; Microsoft's gallery validation (Schema_Discoverability_Test, see
/// `docs/gallery-validation.md`) reads only the core schemas' own lists and fails an app whose
/// mapping has `externalId` when it is not there. `id` and `meta` stay out: read-only, never
/// mapped.
fn listed_attributes(s: &Schema) -> Vec<Value> {
    let is_core = RESOURCE_TYPES.iter().any(|rt| std::ptr::eq(rt.schema, s));
    let common = find(COMMON_ATTRIBUTES, "externalId").filter(|_| is_core);
    s.attributes.iter().chain(common).map(attribute).collect()
}

pub fn schema(s: &Schema, base_url: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "attributes": listed_attributes(s),
        "meta": {"resourceType": "Schema", "location": format!("{base_url}/Schemas/{}", s.id)},
    })
}

pub fn resource_type(rt: &ResourceType, base_url: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": rt.name,
        "name": rt.name,
        "endpoint": rt.endpoint,
        "description": rt.description,
        "schema": rt.schema.id,
        "schemaExtensions": rt.extensions.iter().map(|e| json!({"schema": e.id, "required": false})).collect::<Vec<_>>(),
        "meta": {"resourceType": "ResourceType", "location": format!("{base_url}/ResourceTypes/{}", rt.name)},
    })
}

pub fn find_schema(id: &str) -> Option<&'static Schema> {
    SCHEMAS
        .iter()
        .copied()
        .find(|s| s.id.eq_ignore_ascii_case(id))
}

pub fn find_resource_type(id: &str) -> Option<&'static ResourceType> {
    RESOURCE_TYPES
        .iter()
        .copied()
        .find(|r| r.name.eq_ignore_ascii_case(id))
}

pub fn all_schemas(base_url: &str) -> Vec<Value> {
    SCHEMAS.iter().map(|s| schema(s, base_url)).collect()
}

pub fn all_resource_types(base_url: &str) -> Vec<Value> {
    RESOURCE_TYPES
        .iter()
        .map(|r| resource_type(r, base_url))
        .collect()
}

/// What the server supports, truthfully: PATCH, filter (with maxResults), sort and ETags yes;
/// bulk and changePassword no; paging by index (the default, what Entra uses) and by cursor
/// (RFC 9865).
pub fn service_provider_config(base_url: &str, max_payload: usize) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": "https://github.com/grouptalk-scim/grouptalk-scim#readme",
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": max_payload},
        "filter": {"supported": true, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": false},
        "sort": {"supported": true},
        "etag": {"supported": true},
        "pagination": {
            "cursor": true,
            "index": true,
            "defaultPaginationMethod": "index",
            "defaultPageSize": DEFAULT_COUNT,
            "maxPageSize": MAX_RESULTS,
            "cursorTimeout": CURSOR_TIMEOUT_SECS,
        },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication with a bearer token issued by `grouptalk-scim token issue`",
            "primary": true,
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base_url}/ServiceProviderConfig")},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_describe_every_attribute_with_its_characteristics() {
        let all = all_schemas("https://h/api/scim");
        assert_eq!(all.len(), 5);
        let user = &all[0];
        let user_name = user["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "userName")
            .unwrap();
        assert_eq!(user_name["uniqueness"], "server");
        assert_eq!(user_name["required"], true);
        assert_eq!(user_name["caseExact"], false);
        let emails = user["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "emails")
            .unwrap();
        assert_eq!(emails["multiValued"], true);
        assert!(emails["subAttributes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "type"));
        let gt = all
            .iter()
            .find(|s| s["id"] == crate::scim::schema::GROUPTALK_USER)
            .unwrap();
        assert_eq!(gt["attributes"].as_array().unwrap().len(), 5);
    }

    #[test]
    fn core_schemas_list_external_id_and_extensions_do_not() {
        let all = all_schemas("https://h");
        let names = |id: &str| -> Vec<String> {
            let s = all.iter().find(|s| s["id"] == id).unwrap();
            let attrs = s["attributes"].as_array().unwrap();
            attrs
                .iter()
                .map(|a| a["name"].as_str().unwrap().to_string())
                .collect()
        };
        use crate::scim::schema::{ENTERPRISE_USER, GROUP, GROUPTALK_GROUP, USER};
        for core in [USER, GROUP] {
            let n = names(core);
            assert_eq!(n.iter().filter(|a| *a == "externalId").count(), 1, "{core}");
            assert!(!n.iter().any(|a| a == "id" || a == "meta"), "{core}");
        }
        for ext in [ENTERPRISE_USER, GROUPTALK_GROUP] {
            assert!(!names(ext).iter().any(|a| a == "externalId"), "{ext}");
        }
    }

    #[test]
    fn resource_types_name_their_extensions() {
        let rts = all_resource_types("https://h");
        assert_eq!(rts[0]["endpoint"], "/Users");
        assert_eq!(rts[0]["schemaExtensions"].as_array().unwrap().len(), 2);
        assert_eq!(
            rts[1]["schemaExtensions"][0]["schema"],
            crate::scim::schema::GROUPTALK_GROUP
        );
    }

    #[test]
    fn service_provider_config_tells_the_truth() {
        let spc = service_provider_config("https://h", 1024);
        assert_eq!(spc["patch"]["supported"], true);
        assert_eq!(spc["bulk"]["supported"], false);
        assert_eq!(spc["changePassword"]["supported"], false);
        assert_eq!(spc["filter"]["maxResults"], MAX_RESULTS);
        let p = &spc["pagination"];
        assert_eq!((&p["cursor"], &p["index"]), (&json!(true), &json!(true)));
        assert_eq!(p["defaultPaginationMethod"], "index");
        assert_eq!(p["maxPageSize"], MAX_RESULTS);
    }
}
