//! Crash safety: 16–64 concurrent writers (user creates, multi-operation PATCHes, deletes,
//! group member adds), SIGKILL at a random moment, restart — and then every acknowledged write
//! is there with its acknowledged content, nothing is half-applied, and the file on disk passes
//! `PRAGMA integrity_check`.
//!
//! Each resource is owned by one writer ("lane"), which works on it one request at a time, so a
//! resource has a linear history: the state after its last acknowledged write, plus at most one
//! request in flight when the server died. After the restart the resource must be in exactly one
//! of those two states. Every value a PATCH writes carries the same counter `k` (given name,
//! family name, title, work email, GroupTalk label), so a PATCH applied in part shows up as
//! mixed counters; a group's description is its member count, written in the same PATCH as the
//! member, so a member row without its document change (or the reverse) shows up too.
//!
//! `CRASH_ROUNDS` (default 10) and `CRASH_SEED` tune a run; `scripts/crash-soak` runs 100+.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use grouptalk_scim::scim::schema::{GROUPTALK_GROUP, GROUPTALK_USER, USER};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::harness::{patch_op, Reply, ScimClient, TenantCtx};

const MAX_LANES: usize = 64;
const MAX_USERS_PER_LANE: usize = 40;
/// Bounds one lane's work in one round even if the kill never came.
const MAX_OPS_PER_ROUND: usize = 2_000;

#[derive(Clone, Debug)]
struct UserM {
    name: String,
    version: i64,
    k: u64,
}

#[derive(Clone, Debug)]
struct GroupM {
    id: String,
    version: i64,
    members: BTreeSet<String>,
}

/// The request a lane had sent when the server died: it may or may not have been committed.
#[derive(Clone, Debug, PartialEq)]
enum Pending {
    CreateUser { name: String },
    PatchUser { id: String, k: u64 },
    DeleteUser { id: String },
    CreateGroup,
    AddMember { user: String },
}

#[derive(Debug)]
struct Lane {
    n: usize,
    users: BTreeMap<String, UserM>,
    group: Option<GroupM>,
    next_name: u64,
    pending: Option<Pending>,
    acked: u64,
    /// The user whose side rows (email index) are checked after the restart.
    last_touched: Option<String>,
}

impl Lane {
    fn prefix(&self) -> String {
        format!("lane{:02}-", self.n)
    }
    fn group_name(&self) -> String {
        format!("lane{:02}", self.n)
    }
}

fn email(name: &str, k: u64) -> String {
    format!("{name}.{k}@example.com")
}

fn user_doc(name: &str, k: u64) -> Value {
    json!({
        "schemas": [USER, GROUPTALK_USER],
        "userName": name,
        "title": format!("t{k}"),
        "name": {"givenName": format!("g{k}"), "familyName": format!("f{k}")},
        "emails": [{"type": "work", "value": email(name, k), "primary": true}],
        GROUPTALK_USER: {"label1": k.to_string()}
    })
}

fn user_patch(name: &str, k: u64) -> Value {
    patch_op(json!([
        {"op": "replace", "path": "name.givenName", "value": format!("g{k}")},
        {"op": "replace", "path": "name.familyName", "value": format!("f{k}")},
        {"op": "replace", "path": "title", "value": format!("t{k}")},
        {"op": "replace", "path": "emails[type eq \"work\"].value", "value": email(name, k)},
        {"op": "replace", "path": format!("{GROUPTALK_USER}:label1"), "value": k.to_string()}
    ]))
}

/// The counter every PATCH-written value of a user carries; an error when they disagree.
fn user_k(r: &Value) -> Result<u64, String> {
    let name = r["userName"].as_str().ok_or("no userName")?;
    let strip = |v: &Value, p: &str| -> Option<u64> { v.as_str()?.strip_prefix(p)?.parse().ok() };
    let emails = r["emails"].as_array().cloned().unwrap_or_default();
    let email_k = match emails.as_slice() {
        [e] if e["type"] == "work" => e["value"]
            .as_str()
            .and_then(|v| v.strip_prefix(&format!("{name}.")))
            .and_then(|v| v.strip_suffix("@example.com"))
            .and_then(|v| v.parse().ok()),
        _ => None,
    };
    let ks = [
        strip(&r["name"]["givenName"], "g"),
        strip(&r["name"]["familyName"], "f"),
        strip(&r["title"], "t"),
        strip(&r[GROUPTALK_USER]["label1"], ""),
        email_k,
    ];
    match ks {
        [Some(k), ..] if ks.iter().all(|x| *x == Some(k)) => Ok(k),
        _ => Err(format!("half-applied user (values disagree): {r}")),
    }
}

fn version_of(etag: &str) -> Option<i64> {
    etag.trim_start_matches("W/").trim_matches('"').parse().ok()
}

/// A reply as a lane records it: the version from the `ETag` header alongside.
struct Answer {
    status: u16,
    etag: Option<i64>,
    body: Value,
}

impl From<Reply> for Answer {
    fn from(r: Reply) -> Answer {
        let etag = r
            .headers
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .and_then(version_of);
        Answer {
            status: r.status,
            etag,
            body: r.body,
        }
    }
}

/// GET `path` with `filter` and room for every resource of a lane. Err when the server is gone.
fn filter(http: &ScimClient, path: &str, filter: &str) -> Result<Reply, String> {
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("filter", filter)
        .append_pair("count", "1000")
        .finish();
    http.try_send("GET", &format!("{path}?{q}"), None)
}

/// Why a lane stopped: the server went away (expected), or it answered something wrong.
enum Stop {
    Gone,
    Wrong(String),
}

/// Send one write and, on a 2xx, hand the answer to `ack`. While the request is out,
/// `lane.pending` says what it was.
fn write(
    lane: &mut Lane,
    http: &ScimClient,
    pending: Pending,
    req: (&str, String, Option<Value>),
    want: u16,
    ack: impl FnOnce(&mut Lane, Answer) -> Result<(), String>,
) -> Result<(), Stop> {
    lane.pending = Some(pending);
    // No complete reply (the server died) means the write was not acknowledged.
    let answer: Answer = http
        .try_send(req.0, &req.1, req.2.as_ref())
        .map_err(|_| Stop::Gone)?
        .into();
    lane.pending = None;
    if answer.status != want {
        return Err(Stop::Wrong(format!(
            "{} {} answered {} (expected {want}): {}",
            req.0, req.1, answer.status, answer.body
        )));
    }
    ack(lane, answer).map_err(Stop::Wrong)?;
    lane.acked += 1;
    Ok(())
}

fn create_user(lane: &mut Lane, http: &ScimClient) -> Result<(), Stop> {
    let name = format!("{}{:06}", lane.prefix(), lane.next_name);
    lane.next_name += 1;
    let body = user_doc(&name, 0);
    let pending = Pending::CreateUser { name: name.clone() };
    write(
        lane,
        http,
        pending,
        ("POST", "/Users".into(), Some(body)),
        201,
        |lane, a| {
            let id = a.body["id"].as_str().ok_or("no id")?.to_string();
            if a.body["userName"] != name.as_str() || user_k(&a.body)? != 0 || a.etag != Some(1) {
                return Err(format!("create answered wrong content: {}", a.body));
            }
            lane.last_touched = Some(id.clone());
            lane.users.insert(
                id,
                UserM {
                    name,
                    version: 1,
                    k: 0,
                },
            );
            Ok(())
        },
    )
}

fn patch_user(lane: &mut Lane, http: &ScimClient, rng: &mut StdRng) -> Result<(), Stop> {
    let ids: Vec<&String> = lane.users.keys().collect();
    let id = ids[rng.random_range(0..ids.len())].clone();
    let u = lane.users[&id].clone();
    let k = u.k + 1;
    write(
        lane,
        http,
        Pending::PatchUser { id: id.clone(), k },
        (
            "PATCH",
            format!("/Users/{id}"),
            Some(user_patch(&u.name, k)),
        ),
        200,
        |lane, a| {
            let version = a.body["meta"]["version"].as_str().and_then(version_of);
            if user_k(&a.body)? != k || version != Some(u.version + 1) || a.etag != version {
                return Err(format!("PATCH k={k} answered wrong content: {}", a.body));
            }
            lane.users.insert(
                id.clone(),
                UserM {
                    version: u.version + 1,
                    k,
                    ..u
                },
            );
            lane.last_touched = Some(id);
            Ok(())
        },
    )
}

fn delete_user(lane: &mut Lane, http: &ScimClient, id: String) -> Result<(), Stop> {
    write(
        lane,
        http,
        Pending::DeleteUser { id: id.clone() },
        ("DELETE", format!("/Users/{id}"), None),
        204,
        |lane, _| {
            lane.users.remove(&id);
            if lane.last_touched.as_ref() == Some(&id) {
                lane.last_touched = None;
            }
            Ok(())
        },
    )
}

fn create_group(lane: &mut Lane, http: &ScimClient) -> Result<(), Stop> {
    let body = json!({"displayName": lane.group_name(), GROUPTALK_GROUP: {"description": "0"}});
    write(
        lane,
        http,
        Pending::CreateGroup,
        ("POST", "/Groups".into(), Some(body)),
        201,
        |lane, a| {
            let id = a.body["id"].as_str().ok_or("no id")?.to_string();
            lane.group = Some(GroupM {
                id,
                version: a.etag.ok_or("no ETag")?,
                members: BTreeSet::new(),
            });
            Ok(())
        },
    )
}

fn add_member(lane: &mut Lane, http: &ScimClient, user: String) -> Result<(), Stop> {
    let g = lane.group.clone().unwrap();
    let count = g.members.len() + 1;
    let body = patch_op(json!([
        {"op": "add", "path": "members", "value": [{"value": user}]},
        {"op": "replace", "path": format!("{GROUPTALK_GROUP}:description"), "value": count.to_string()}
    ]));
    write(
        lane,
        http,
        Pending::AddMember { user: user.clone() },
        ("PATCH", format!("/Groups/{}", g.id), Some(body)),
        204,
        |lane, a| {
            if a.etag != Some(g.version + 1) {
                return Err(format!(
                    "member add answered ETag {:?}, expected {}",
                    a.etag,
                    g.version + 1
                ));
            }
            let g = lane.group.as_mut().unwrap();
            g.version += 1;
            g.members.insert(user);
            Ok(())
        },
    )
}

/// One lane's writes until the server dies (or the bound is reached).
fn drive(
    lane: &mut Lane,
    http: &ScimClient,
    stop: &AtomicBool,
    rng: &mut StdRng,
) -> Option<String> {
    for _ in 0..MAX_OPS_PER_ROUND {
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        let roll = rng.random_range(0..100);
        let members = lane.group.as_ref().map(|g| g.members.clone());
        let outsider = lane
            .users
            .keys()
            .find(|id| !members.as_ref().is_some_and(|m| m.contains(*id)))
            .cloned();
        let grow = lane.users.len() < 2 || (roll < 25 && lane.users.len() < MAX_USERS_PER_LANE);
        let result = match (roll, outsider) {
            _ if grow => create_user(lane, http),
            (..60, _) => patch_user(lane, http, rng),
            (..66, Some(user)) => delete_user(lane, http, user),
            _ if lane.group.is_none() => create_group(lane, http),
            (_, Some(user)) => add_member(lane, http, user),
            _ => patch_user(lane, http, rng),
        };
        match result {
            Ok(()) => {}
            Err(Stop::Gone) => return None,
            Err(Stop::Wrong(e)) => return Some(format!("lane {}: {e}", lane.n)),
        }
    }
    None
}

/// After the restart: the lane's resources are in their acknowledged state, or (only for the
/// resource of the request in flight) in the state that request would have produced. The model
/// is then brought in line with what was found.
fn verify(lane: &mut Lane, http: &ScimClient) -> Result<(), String> {
    let pending = lane.pending.take();
    let n = lane.n;
    let list = filter(
        http,
        "/Users",
        &format!("userName sw \"{}\"", lane.prefix()),
    )?;
    if list.status != 200 {
        return Err(format!("lane {n}: list answered {}", list.status));
    }
    let mut found: BTreeMap<String, Value> = list.body["Resources"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|r| (r["id"].as_str().unwrap_or("").to_string(), r))
        .collect();
    let ids: Vec<String> = lane.users.keys().cloned().collect();
    for id in ids {
        let u = lane.users[&id].clone();
        let Some(r) = found.remove(&id) else {
            if pending == Some(Pending::DeleteUser { id: id.clone() }) {
                lane.users.remove(&id);
                continue;
            }
            return Err(format!(
                "lane {n}: acknowledged user {} ({id}, version {}) is gone after the crash",
                u.name, u.version
            ));
        };
        let k = user_k(&r).map_err(|e| format!("lane {n}: {e}"))?;
        let version = r["meta"]["version"]
            .as_str()
            .and_then(version_of)
            .unwrap_or(-1);
        let in_flight =
            matches!(&pending, Some(Pending::PatchUser { id: p, k: pk }) if *p == id && *pk == k);
        if r["userName"] != u.name.as_str() {
            return Err(format!("lane {n}: user {id} has the wrong userName: {r}"));
        }
        if (version, k) == (u.version, u.k) {
            continue;
        }
        if in_flight && version == u.version + 1 {
            lane.users.insert(id.clone(), UserM { version, k, ..u });
            continue;
        }
        return Err(format!(
            "lane {n}: user {id} is at version {version} k={k}; acknowledged version {} k={} \
             (in flight: {pending:?})",
            u.version, u.k
        ));
    }
    // Anything left over must be the create that was in flight.
    for (id, r) in found {
        match &pending {
            Some(Pending::CreateUser { name })
                if r["userName"] == name.as_str()
                    && user_k(&r) == Ok(0)
                    && r["meta"]["version"] == "W/\"1\"" =>
            {
                lane.users.insert(
                    id.clone(),
                    UserM {
                        name: name.clone(),
                        version: 1,
                        k: 0,
                    },
                );
                lane.last_touched = Some(id);
            }
            _ => {
                return Err(format!(
                    "lane {n}: user {id} exists but was never acknowledged (in flight: {pending:?}): {r}"
                ))
            }
        }
    }
    verify_group(lane, http, &pending)?;
    verify_side_rows(lane, http, &pending)
}

fn verify_group(
    lane: &mut Lane,
    http: &ScimClient,
    pending: &Option<Pending>,
) -> Result<(), String> {
    let n = lane.n;
    let list = filter(
        http,
        "/Groups",
        &format!("displayName eq \"{}\"", lane.group_name()),
    )?;
    let found = list.body["Resources"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let r = match (&lane.group, found.as_slice()) {
        (None, []) => return Ok(()),
        (None, [r]) if *pending == Some(Pending::CreateGroup) => {
            lane.group = Some(GroupM {
                id: r["id"].as_str().unwrap_or("").to_string(),
                version: 1,
                members: BTreeSet::new(),
            });
            r.clone()
        }
        (Some(g), [r]) if r["id"] == g.id.as_str() => r.clone(),
        _ => {
            return Err(format!(
                "lane {n}: group expected {:?}, found {found:?}",
                lane.group
            ))
        }
    };
    let members: BTreeSet<String> = r["members"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|m| m["value"].as_str().unwrap_or("").to_string())
        .collect();
    let description = r[GROUPTALK_GROUP]["description"].as_str().unwrap_or("");
    if description != members.len().to_string() {
        return Err(format!(
            "lane {n}: half-applied member PATCH: description {description:?} but {} members: {r}",
            members.len()
        ));
    }
    let version = r["meta"]["version"]
        .as_str()
        .and_then(version_of)
        .unwrap_or(-1);
    let g = lane.group.as_mut().unwrap();
    if members == g.members && version == g.version {
        return Ok(());
    }
    if let Some(Pending::AddMember { user }) = pending {
        let mut with = g.members.clone();
        with.insert(user.clone());
        if members == with && version == g.version + 1 {
            g.members = with;
            g.version = version;
            return Ok(());
        }
    }
    Err(format!(
        "lane {n}: group at version {version} with members {members:?}; acknowledged version {} \
         with {:?} (in flight: {pending:?})",
        g.version, g.members
    ))
}

/// The work email of the last user written is found through the email index (side rows written
/// in the same transaction as the document).
fn verify_side_rows(
    lane: &Lane,
    http: &ScimClient,
    pending: &Option<Pending>,
) -> Result<(), String> {
    let target = match pending {
        Some(Pending::PatchUser { id, .. }) if lane.users.contains_key(id) => Some(id),
        _ => lane
            .last_touched
            .as_ref()
            .filter(|id| lane.users.contains_key(*id)),
    };
    let Some(id) = target else { return Ok(()) };
    let u = &lane.users[id];
    let f = format!(
        "emails[type eq \"work\"].value eq \"{}\"",
        email(&u.name, u.k)
    );
    let r = filter(http, "/Users", &f)?;
    let got: Vec<&str> = r.body["Resources"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["id"].as_str()).collect())
        .unwrap_or_default();
    if got != [id.as_str()] {
        return Err(format!(
            "lane {}: {f} found {got:?}, expected [{id}] (email index out of step with the document)",
            lane.n
        ));
    }
    Ok(())
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn acknowledged_writes_survive_sigkill_and_nothing_is_half_applied() {
    let rounds = env_u64("CRASH_ROUNDS").unwrap_or(10);
    let seed = env_u64("CRASH_SEED").unwrap_or_else(|| rand::rng().random());
    eprintln!("crash test: {rounds} rounds, CRASH_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    // Rate limiting is not what this test is about: 64 writers on one token exceed it.
    let TenantCtx { mut server, token } = TenantCtx::start_with(
        "acme",
        "[limits]\nrate_per_token = 1000000\nrate_burst = 1000000\n",
        &[],
    );
    let mut lanes: Vec<Lane> = (0..MAX_LANES)
        .map(|n| Lane {
            n,
            users: BTreeMap::new(),
            group: None,
            next_name: 0,
            pending: None,
            acked: 0,
            last_touched: None,
        })
        .collect();
    let started = Instant::now();
    let mut in_flight_at_kill = 0;
    for round in 0..rounds {
        let writers = rng.random_range(16..=MAX_LANES);
        let window = Duration::from_millis(match rng.random_range(0..10) {
            0 => rng.random_range(0..60),
            _ => rng.random_range(60..1_200),
        });
        let http = server.scim_client(&token);
        let stop = Arc::new(AtomicBool::new(false));
        let wrong = Arc::new(Mutex::new(Vec::new()));
        let active: Vec<Lane> = lanes.drain(..writers).collect();
        let handles: Vec<_> = active
            .into_iter()
            .map(|mut lane| {
                let (http, stop, wrong) = (http.clone(), stop.clone(), wrong.clone());
                let lane_seed = seed ^ (round << 20) ^ lane.n as u64;
                std::thread::spawn(move || {
                    let mut rng = StdRng::seed_from_u64(lane_seed);
                    if let Some(e) = drive(&mut lane, &http, &stop, &mut rng) {
                        wrong.lock().unwrap().push(e);
                    }
                    lane
                })
            })
            .collect();
        std::thread::sleep(window);
        server.kill();
        stop.store(true, Ordering::Relaxed);
        let mut done: Vec<Lane> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let wrong = wrong.lock().unwrap().clone();
        assert!(
            wrong.is_empty(),
            "round {round} (CRASH_SEED={seed}): wrong answers before the kill: {wrong:#?}"
        );
        in_flight_at_kill += done.iter().filter(|l| l.pending.is_some()).count();
        // The file as the crash left it, before the restart touches it.
        server.assert_db_intact();
        server.spawn();
        let http = server.scim_client(&token);
        done.append(&mut lanes);
        lanes = done;
        lanes.sort_by_key(|l| l.n);
        for lane in lanes.iter_mut() {
            if let Err(e) = verify(lane, &http) {
                panic!("round {round} (CRASH_SEED={seed}): {e}");
            }
        }
    }
    let acked: u64 = lanes.iter().map(|l| l.acked).sum();
    eprintln!(
        "crash test: {rounds} rounds, {acked} acknowledged writes, {in_flight_at_kill} in flight \
         at a kill, {:?}",
        started.elapsed()
    );
    assert!(
        acked >= rounds * 16,
        "too few writes were acknowledged ({acked}) for the test to mean anything"
    );
    server.stop();
    server.assert_db_intact();
}
