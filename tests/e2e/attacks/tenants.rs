//! Tenant isolation: tenant B's token on every route and method, aimed at tenant A's ids,
//! names and filters. B must learn nothing (a 404 exactly like a missing id, empty lists) and
//! change nothing; memberships may not point across tenants.

use grouptalk_scim::scim::schema::{ENTERPRISE_USER, GROUPTALK_GROUP, GROUPTALK_USER, USER};
use serde_json::{json, Value};

use crate::harness::{assert_scim_error, create_user, patch_op, reply, Reply, Scim, TenantCtx};

/// Every string tenant A stores contains this (in some case), so a leak is easy to see.
const MARK: &str = "secret-a";

/// Tenant A's data, as A sees it.
struct Victim {
    users: Vec<String>,
    group: String,
}

fn seed_victim(a: &Scim<'_>) -> Victim {
    let mut users = Vec::new();
    for who in ["alice", "bob"] {
        let r = a.post(
            "/Users",
            &json!({
                "schemas": [USER, ENTERPRISE_USER, GROUPTALK_USER],
                "userName": format!("secret-a-{who}@acme.example"),
                "externalId": format!("SECRET-A-ext-{who}"),
                "displayName": format!("SECRET-A {who}"),
                "emails": [{"type": "work", "value": format!("secret-a-{who}@acme.example")}],
                "phoneNumbers": [{"type": "mobile", "value": format!("+46 secret-a {who}")}],
                ENTERPRISE_USER: {"costCenter": "SECRET-A-CC"},
                GROUPTALK_USER: {"label1": "SECRET-A-label"}
            }),
        );
        assert_eq!(r.status, 201, "{:?}", r.body);
        users.push(r.body["id"].as_str().unwrap().to_string());
    }
    let r = a.post(
        "/Groups",
        &json!({"displayName": "SECRET-A Dispatch", "externalId": "SECRET-A-gext",
                "members": [{"value": users[0]}], GROUPTALK_GROUP: {"description": "SECRET-A-desc"}}),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    Victim {
        users,
        group: r.body["id"].as_str().unwrap().to_string(),
    }
}

/// Everything A can read about its own data, to compare before and after the attack.
fn snapshot(a: &Scim<'_>, v: &Victim) -> Vec<Value> {
    let mut out: Vec<Value> = v
        .users
        .iter()
        .map(|id| a.get(&format!("/Users/{id}")).body)
        .collect();
    out.push(a.get(&format!("/Groups/{}", v.group)).body);
    out.push(a.get("/Users").body);
    out.push(a.get("/Groups").body);
    out
}

/// B's reply must not contain A's ids or marked values, except what B itself sent (an error
/// detail may quote the request).
fn assert_no_leak(r: &Reply, request: &str, v: &Victim, what: &str) {
    let text = r.body.to_string().to_lowercase();
    let request = request.to_lowercase();
    let mut secrets: Vec<String> = v.users.clone();
    secrets.push(v.group.clone());
    secrets.push(MARK.to_string());
    for s in secrets {
        let s = s.to_lowercase();
        assert!(
            !text.contains(&s) || request.contains(&s),
            "{what}: leaked {s:?}: {}",
            r.body
        );
    }
}

/// A 404 for A's id must be indistinguishable from a 404 for an id nobody has.
fn assert_like_missing(b: &Scim<'_>, method: &str, path: &str, id: &str, body: Option<&Value>) {
    let missing_id = "4b1d0c3e-0000-4000-8000-000000000000";
    let send = |p: &str| match body {
        Some(body) => b.send(method, p, body),
        None if method == "GET" => b.get(p),
        None => b.delete(p),
    };
    let got = send(path);
    assert_scim_error(&got, 404, None);
    let baseline = send(&path.replace(id, missing_id));
    assert_eq!(
        got.body.to_string().replace(id, "<id>"),
        baseline.body.to_string().replace(missing_id, "<id>"),
        "{method} {path}: the 404 differs from one for a missing id"
    );
    assert_eq!(got.content_type, baseline.content_type);
}

#[test]
fn another_tenants_token_reads_and_changes_nothing_on_any_route() {
    let TenantCtx { server, token: ta } = TenantCtx::start("acme");
    let tb = server.tenant_token("beta");
    let (a, b) = (server.as_tenant(&ta), server.as_tenant(&tb));
    let v = seed_victim(&a);
    let ub = create_user(&b, "bob@beta.example");
    let before = snapshot(&a, &v);

    // Every single-resource route and method, on A's ids — also under the other kind's path,
    // with projections, and with If-Match: *.
    let targets = [
        ("Users", v.users[0].clone()),
        ("Users", v.users[1].clone()),
        ("Groups", v.group.clone()),
        ("Users", v.group.clone()),
        ("Groups", v.users[0].clone()),
    ];
    let user_put = json!({"userName": "taken-over@beta.example"});
    let group_put = json!({"displayName": "taken over", "members": [{"value": ub}]});
    let patches = [
        patch_op(json!([{"op": "replace", "path": "displayName", "value": "taken over"}])),
        patch_op(json!([{"op": "add", "path": "members", "value": [{"value": ub}]}])),
        patch_op(json!([{"op": "remove", "path": "members"}])),
        patch_op(json!([{"op": "replace", "value": {"active": false}}])),
    ];
    for (kind, id) in &targets {
        let path = format!("/{kind}/{id}");
        assert_like_missing(&b, "GET", &path, id, None);
        assert_like_missing(
            &b,
            "GET",
            &format!("{path}?attributes=userName,displayName,members,groups"),
            id,
            None,
        );
        let put = if *kind == "Users" {
            &user_put
        } else {
            &group_put
        };
        assert_like_missing(&b, "PUT", &path, id, Some(put));
        for p in &patches {
            assert_like_missing(&b, "PATCH", &path, id, Some(p));
        }
        assert_like_missing(&b, "DELETE", &path, id, None);
        // If-Match: * ("whatever version it has") changes nothing either.
        let r = reply(
            b.request("DELETE", &path)
                .header("if-match", "*")
                .send()
                .unwrap(),
        );
        assert_scim_error(&r, 404, None);
        // Spellings of the same id.
        for variant in [id.to_uppercase(), format!("{id}%00"), format!(" {id}")] {
            let r = b.get(&format!("/{kind}/{variant}"));
            assert!(
                r.status == 404 || r.status == 400,
                "{kind}/{variant}: {}",
                r.status
            );
            assert_no_leak(&r, &variant, &v, "id spelling");
        }
    }

    // Filters that would match A's data, by GET and by every .search.
    let user_filters = vec![
        "userName eq \"secret-a-alice@acme.example\"".to_string(),
        "userName co \"secret\"".into(),
        "userName sw \"SECRET-A\"".into(),
        format!("id eq \"{}\"", v.users[0]),
        "externalId eq \"SECRET-A-ext-alice\"".into(),
        "displayName co \"secret\"".into(),
        "emails[type eq \"work\"].value eq \"secret-a-alice@acme.example\"".into(),
        "emails.value co \"acme\"".into(),
        "phoneNumbers[type eq \"mobile\"].value co \"secret\"".into(),
        format!("{ENTERPRISE_USER}:costCenter eq \"SECRET-A-CC\""),
        format!("{GROUPTALK_USER}:label1 pr"),
        format!("groups.value eq \"{}\"", v.group),
        "meta.created gt \"2000-01-01T00:00:00Z\" and userName co \"acme\"".into(),
    ];
    let group_filters = vec![
        "displayName eq \"SECRET-A Dispatch\"".to_string(),
        "displayName co \"secret\"".into(),
        format!("id eq \"{}\"", v.group),
        format!("members[value eq \"{}\"]", v.users[0]),
        format!("members.value eq \"{}\"", v.users[0]),
        "externalId eq \"SECRET-A-gext\"".into(),
        format!("{GROUPTALK_GROUP}:description co \"secret\""),
    ];
    for (path, filters) in [("/Users", &user_filters), ("/Groups", &group_filters)] {
        for f in filters {
            for r in [
                b.filter(path, f),
                b.post(&format!("{path}/.search"), &json!({"filter": f})),
                b.post("/.search", &json!({"filter": f})),
            ] {
                assert!(
                    r.status == 200 || r.status == 400,
                    "{path} {f}: {} {:?}",
                    r.status,
                    r.body
                );
                if r.status == 200 {
                    assert_eq!(r.body["totalResults"], 0, "{path} {f}: {:?}", r.body);
                }
                assert_no_leak(&r, f, &v, f);
            }
        }
    }
    // Unfiltered lists show B's own resources only.
    for r in [
        b.get("/Users"),
        b.get("/Groups"),
        b.post("/.search", &json!({})),
    ] {
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_no_leak(&r, "", &v, "unfiltered list");
    }
    assert_eq!(b.get("/Users").body["totalResults"], 1);

    // Memberships never point across tenants: A's users and groups are not B's to reference.
    let foreign = [v.users[0].as_str(), v.group.as_str()];
    let gb = b.post(
        "/Groups",
        &json!({"displayName": "Beta team", "members": [{"value": ub}]}),
    );
    assert_eq!(gb.status, 201, "{:?}", gb.body);
    let gb = gb.body["id"].as_str().unwrap().to_string();
    for f in foreign {
        let r = b.post(
            "/Groups",
            &json!({"displayName": "Beta 2", "members": [{"value": f}]}),
        );
        assert_scim_error(&r, 400, Some("invalidValue"));
        assert_no_leak(&r, f, &v, "POST member");
        let r = b.put(
            &format!("/Groups/{gb}"),
            &json!({"displayName": "Beta team", "members": [{"value": ub}, {"value": f}]}),
        );
        assert_scim_error(&r, 400, Some("invalidValue"));
        for op in ["add", "replace"] {
            let r = b.patch(
                &format!("/Groups/{gb}"),
                &patch_op(json!([{"op": op, "path": "members", "value": [{"value": f}]}])),
            );
            assert_scim_error(&r, 400, Some("invalidValue"));
            assert_no_leak(&r, f, &v, "PATCH member");
        }
        // Removing a foreign id answers exactly like removing an id nobody has.
        let remove = |id: &str| {
            b.patch(
                &format!("/Groups/{gb}"),
                &patch_op(json!([{"op": "remove", "path": format!("members[value eq \"{id}\"]")}])),
            )
        };
        let (got, missing) = (remove(f), remove("4b1d0c3e-0000-4000-8000-000000000000"));
        assert_eq!(
            got.status, missing.status,
            "{:?} vs {:?}",
            got.body, missing.body
        );
        assert_no_leak(&got, f, &v, "remove foreign member");
    }
    let members = b.get(&format!("/Groups/{gb}")).body["members"].clone();
    assert_eq!(members.as_array().map(Vec::len), Some(1), "{members}");
    assert_eq!(members[0]["value"], ub.as_str());
    // A manager reference to A's user reveals nothing of that user.
    let r = b.patch(
        &format!("/Users/{ub}"),
        &patch_op(
            json!([{"op": "add", "path": format!("{ENTERPRISE_USER}:manager"), "value": v.users[0]}]),
        ),
    );
    assert!(r.status == 200 || r.status == 400, "{:?}", r.body);
    // (The id is B's own input; A's user's display name would be the leak.)
    assert_no_leak(&b.get(&format!("/Users/{ub}")), &v.users[0], &v, "manager");

    // And A's data is exactly as it was: same bodies, same versions, same lists.
    assert_eq!(snapshot(&a, &v), before, "tenant B changed tenant A's data");
}
