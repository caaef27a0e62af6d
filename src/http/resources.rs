//! Handlers for `/Users` and `/Groups`: parse with `scim`, run in `store`, render the result.
//! Users and Groups share every handler; what differs lives in the schema table.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use hyper::body::Incoming;
use hyper::header::{HOST, IF_MATCH};
use hyper::{Request, Response};
use serde_json::{json, Value};

use super::auth::{self, AuthFailure};
use super::response::{self, Body};
use crate::app::App;
use crate::auth::{Principal, TokenError};
use crate::scim::error::ScimError;
use crate::scim::list::{self, ListParams, ListRequest};
use crate::scim::render::{self, Meta, Projection};
use crate::scim::schema::{ResourceKind, ResourceType};
use crate::scim::{patch as scim_patch, resource as scim_resource};
use crate::store::request_log;
use crate::store::resources::{self as store, ListQuery, Member, Stored};
use crate::store::{query, StoreError};
use crate::telemetry::reqlog::Draft;

/// What a handler needs to know about its request.
pub struct Ctx {
    pub app: Arc<App>,
    /// Who the token claims to be (signature verified). Until `confirmed` the database has not
    /// yet confirmed it: `read` does so inside its transaction, `write` before it.
    pub principal: Principal,
    confirmed: AtomicBool,
    /// Why the database refused the token, once it did (for the router's log line).
    refused: Mutex<Option<TokenError>>,
    draft: Arc<Draft>,
    host: Option<String>,
    if_match: Option<String>,
    /// Decoded query parameters (`+` is a space, as Entra encodes filters).
    params: Vec<(String, String)>,
}

impl Ctx {
    pub fn new(
        app: Arc<App>,
        principal: Principal,
        req: &Request<Incoming>,
        draft: Arc<Draft>,
    ) -> Result<Ctx, ScimError> {
        let header = |name| {
            req.headers()
                .get(name)
                .and_then(|v: &hyper::header::HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        let host = header(HOST).or_else(|| req.uri().authority().map(|a| a.to_string()));
        let query = req.uri().query().unwrap_or("");
        let params = decode_query(query)?;
        if params
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("aadOptscim062020"))
        {
            draft.update(|e| e.notes.push("aadOptscim062020 flag".into()));
        }
        Ok(Ctx {
            app,
            principal,
            confirmed: AtomicBool::new(false),
            refused: Mutex::new(None),
            draft,
            host,
            if_match: header(IF_MATCH),
            params,
        })
    }

    /// Whether the database has confirmed the token for this request.
    pub fn is_confirmed(&self) -> bool {
        self.confirmed.load(Ordering::Acquire)
    }

    /// Why the token was refused, if it was.
    pub fn refusal(&self) -> Option<TokenError> {
        self.refused.lock().ok().and_then(|r| *r)
    }

    /// Confirm the token in a read of its own, unless a read already did.
    pub async fn confirm(&self) -> Result<(), ScimError> {
        if self.is_confirmed() {
            return Ok(());
        }
        match auth::confirm(&self.app, &self.principal).await {
            Ok(()) => {
                self.mark_confirmed(false);
                Ok(())
            }
            Err(AuthFailure::Rejected(why)) => Err(self.refuse(why)),
            Err(AuthFailure::Store(e)) => Err(e.into_scim()),
        }
    }

    /// The router confirmed the token (`auth::confirm`) before building this context.
    pub fn confirmed_elsewhere(&self) {
        self.mark_confirmed(false);
    }

    /// The database confirmed the token; `record_use` unless `auth::confirm` already did.
    fn mark_confirmed(&self, record_use: bool) {
        if record_use {
            auth::confirmed(&self.app, &self.principal);
        }
        self.draft.set_caller(&self.principal);
        self.confirmed.store(true, Ordering::Release);
    }

    fn refuse(&self, why: TokenError) -> ScimError {
        if let Ok(mut r) = self.refused.lock() {
            *r = Some(why);
        }
        ScimError::unauthorized()
    }

    /// Record which resource the request is about, for the provisioning log.
    fn about(&self, kind: ResourceKind, id: Option<&str>) {
        self.draft.update(|e| {
            e.resource_type = Some(kind.name().to_string());
            if let Some(id) = id {
                e.resource_id = Some(id.to_string());
            }
        });
    }

    /// Run a write in the writer thread and insert its provisioning-log entry in the same
    /// transaction, so the log shows every change that was committed — and only those.
    async fn write<T, F>(&self, status: u16, f: F) -> Result<T, ScimError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> crate::store::Result<(T, Logged)> + Send + 'static,
    {
        // Nothing is written for a token the database has not confirmed.
        self.confirm().await?;
        let draft = self.draft.clone();
        let result = self
            .app
            .store
            .write(move |conn| {
                let (value, logged) = f(conn)?;
                let mut entry = draft.snapshot();
                entry.status = status;
                entry.resource_id = Some(logged.resource_id);
                entry
                    .notes
                    .extend(logged.notes.iter().map(|n| n.to_string()));
                request_log::insert(conn, &entry)?;
                Ok(value)
            })
            .await;
        match result {
            Ok(v) => {
                self.draft.mark_logged();
                Ok(v)
            }
            Err(e) => Err(e.into_scim()),
        }
    }

    /// Normalisations found before the write (body parsing), for a failure's log entry.
    fn note(&self, notes: &[&'static str]) {
        if !notes.is_empty() {
            self.draft
                .update(|e| e.notes.extend(notes.iter().map(|n| n.to_string())));
        }
    }

    pub fn query_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    fn has_param(&self, name: &str) -> bool {
        self.params
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name))
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Absolute URL of the SCIM base: `public_url` + base_path, else derived from `Host`.
    pub fn base_url(&self) -> String {
        let c = &self.app.config;
        let origin = if !c.server.public_url.is_empty() {
            c.server.public_url.trim_end_matches('/').to_string()
        } else {
            let scheme = if c.tls.enabled { "https" } else { "http" };
            format!(
                "{scheme}://{}",
                self.host.as_deref().unwrap_or(&c.server.listen)
            )
        };
        format!("{origin}{}", c.base_path())
    }

    fn location(&self, rt: &ResourceType, id: &str) -> String {
        format!("{}{}/{id}", self.base_url(), rt.endpoint)
    }

    fn tenant(&self) -> String {
        self.principal.tenant_id.clone()
    }

    fn projection(&self, rt: &'static ResourceType) -> Result<Projection, ScimError> {
        Projection::parse(
            rt,
            self.param("attributes"),
            self.param("excludedAttributes"),
        )
    }
}

/// Decode a query string strictly: `+` is a space (Entra encodes filters that way), and
/// percent-escapes must decode to UTF-8 — never replaced by U+FFFD, which could then match.
fn decode_query(query: &str) -> Result<Vec<(String, String)>, ScimError> {
    let decode = |part: &str, key: &str| -> Result<String, ScimError> {
        let spaced = part.replace('+', " ");
        percent_encoding::percent_decode_str(&spaced)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| {
                let detail = format!("query parameter {key:?} is not valid UTF-8 once decoded");
                if key.eq_ignore_ascii_case("filter") {
                    ScimError::invalid_filter(detail)
                } else {
                    ScimError::invalid_syntax(detail)
                }
            })
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let key = decode(k, k)?;
            Ok((key.clone(), decode(v, &key)?))
        })
        .collect()
}

fn store_err(e: StoreError) -> ScimError {
    e.into_scim()
}

/// What a successful write tells the provisioning log.
struct Logged {
    resource_id: String,
    notes: Vec<&'static str>,
}

/// Render a stored resource with what the projection asks for (members, groups), reading
/// those rows on a separate hop. Used after writes; reads fetch them in the same hop.
async fn render_one(ctx: &Ctx, s: Stored, projection: &Projection) -> Result<Value, ScimError> {
    let want = wants_related(&s, projection);
    let rows = if want {
        let copy = s.clone();
        let read_rows = move |conn: &rusqlite::Connection| store::related_of(conn, &copy);
        Some(read(ctx, !heavy_related(s.kind, projection), read_rows).await?)
    } else {
        None
    };
    Ok(render_with(ctx, s, rows, projection))
}

/// Whether the response carries a group's `members` or a user's `groups`.
fn wants_related(s: &Stored, projection: &Projection) -> bool {
    let rt = s.kind.resource_type();
    projection.wants(rt, related_name(s.kind))
}

/// Run a read as a point read (on this thread) when `point`, else on a blocking thread; see
/// `Store::read_point`. While the token is not yet confirmed, its database check runs first in
/// the same read transaction: nothing `f` read leaves it unless the token passed.
async fn read<T, F>(ctx: &Ctx, point: bool, f: F) -> Result<T, ScimError>
where
    T: Send + 'static,
    F: FnOnce(&rusqlite::Connection) -> crate::store::Result<T> + Send + 'static,
{
    let claimed = (!ctx.is_confirmed()).then(|| ctx.principal.clone());
    let checking = claimed.is_some();
    let job = move |conn: &rusqlite::Connection| {
        if let Some(who) = &claimed {
            if let Err(why) = auth::check(conn, who)? {
                return Ok(Err(why));
            }
        }
        f(conn).map(Ok)
    };
    let store = &ctx.app.store;
    let outcome = if point {
        store.read_point(job).await
    } else {
        store.read(job).await
    }
    .map_err(store_err)?;
    match outcome {
        Ok(value) => {
            if checking {
                ctx.mark_confirmed(true);
            }
            Ok(value)
        }
        Err(why) => Err(ctx.refuse(why)),
    }
}

/// Whether the response may carry a group's members: their number has no bound, so such a
/// read runs on a blocking thread.
fn heavy_related(kind: ResourceKind, projection: &Projection) -> bool {
    kind == ResourceKind::Group && projection.wants(kind.resource_type(), "members")
}

fn related_name(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Group => "members",
        ResourceKind::User => "groups",
    }
}

/// The SCIM JSON of a stored resource; `related` holds its members/groups when wanted.
fn render_with(
    ctx: &Ctx,
    s: Stored,
    related: Option<Vec<Member>>,
    projection: &Projection,
) -> Value {
    let rt = s.kind.resource_type();
    let meta = Meta {
        id: &s.id,
        version: s.version,
        created: &s.created,
        last_modified: &s.last_modified,
        location: ctx.location(rt, &s.id),
    };
    let mut extra = Vec::new();
    if let Some(rows) = related {
        // A user without groups simply has no `groups`; a group always shows `members`.
        if !(rows.is_empty() && s.kind == ResourceKind::User) {
            let with_display = s.kind == ResourceKind::User;
            let list: Vec<Value> = rows
                .iter()
                .map(|m| member_json(ctx, m, with_display))
                .collect();
            extra.push((related_name(s.kind), Value::Array(list)));
        }
    }
    let mut v = render::resource(rt, s.doc, &meta, extra);
    projection.apply(rt, &mut v);
    v
}

fn member_json(ctx: &Ctx, m: &Member, with_display: bool) -> Value {
    let rt = m.kind.resource_type();
    let mut v = json!({"value": m.id, "$ref": ctx.location(rt, &m.id), "type": rt.name});
    if let (true, Some(d), Some(o)) = (with_display, &m.display, v.as_object_mut()) {
        o.insert("display".into(), d.clone().into());
    }
    v
}

pub async fn get(ctx: &Ctx, kind: ResourceKind, id: &str) -> Result<Response<Body>, ScimError> {
    let rt = kind.resource_type();
    ctx.about(kind, Some(id));
    let projection = ctx.projection(rt)?;
    let (tenant, id_owned) = (ctx.tenant(), id.to_string());
    let proj = projection.clone();
    let lookup = move |conn: &rusqlite::Connection| {
        let Some(s) = store::get(conn, &tenant, kind, &id_owned)? else {
            return Ok(None);
        };
        let related = if wants_related(&s, &proj) {
            Some(store::related_of(conn, &s)?)
        } else {
            None
        };
        Ok(Some((s, related)))
    };
    // A lookup by id is one index probe, except a group's members (100,000 rows, perhaps).
    let found = read(ctx, !heavy_related(kind, &projection), lookup).await?;
    let (stored, related) =
        found.ok_or_else(|| ScimError::not_found(format!("{} {id} not found", rt.name)))?;
    let etag = stored.etag();
    let body = render_with(ctx, stored, related, &projection);
    Ok(response::resource(200, &body, &etag, None))
}

pub async fn create(
    ctx: &Ctx,
    kind: ResourceKind,
    body: Value,
) -> Result<Response<Body>, ScimError> {
    let rt = kind.resource_type();
    ctx.about(kind, None);
    let projection = ctx.projection(rt)?;
    let normalised = scim_resource::normalise(rt, &body)?;
    ctx.note(&normalised.notes);
    let tenant = ctx.tenant();
    let proj = projection.clone();
    let (stored, related) = ctx
        .write(201, move |conn| {
            let s = store::create(
                conn,
                &tenant,
                kind,
                normalised.doc,
                normalised.members.as_deref(),
            )?;
            // In the same transaction, so no second hop: a new user belongs to no group yet,
            // and a new group's members are the ones in this request (bounded by its size).
            let related = match (kind, wants_related(&s, &proj)) {
                (_, false) => None,
                (ResourceKind::User, true) => Some(Vec::new()),
                (ResourceKind::Group, true) => Some(store::related_of(conn, &s)?),
            };
            let logged = Logged {
                resource_id: s.id.clone(),
                notes: Vec::new(),
            };
            Ok(((s, related), logged))
        })
        .await?;
    let etag = stored.etag();
    let location = ctx.location(rt, &stored.id);
    let body = render_with(ctx, stored, related, &projection);
    Ok(response::resource(201, &body, &etag, Some(&location)))
}

pub async fn replace(
    ctx: &Ctx,
    kind: ResourceKind,
    id: &str,
    body: Value,
) -> Result<Response<Body>, ScimError> {
    let rt = kind.resource_type();
    ctx.about(kind, Some(id));
    let projection = ctx.projection(rt)?;
    let normalised = scim_resource::normalise(rt, &body)?;
    ctx.note(&normalised.notes);
    let (tenant, id, if_match) = (ctx.tenant(), id.to_string(), ctx.if_match.clone());
    let stored = ctx
        .write(200, move |conn| {
            let s = store::replace(
                conn,
                &tenant,
                kind,
                &id,
                normalised.doc,
                normalised.members.as_deref(),
                if_match.as_deref(),
            )?;
            Ok((
                s,
                Logged {
                    resource_id: id,
                    notes: Vec::new(),
                },
            ))
        })
        .await?;
    let etag = stored.etag();
    let body = render_one(ctx, stored, &projection).await?;
    Ok(response::resource(200, &body, &etag, None))
}

/// PATCH: users answer 200 with the resource (what Microsoft's validator expects); groups answer
/// 204 (Entra: "returning a body with a list of all the members isn't advisable") unless the
/// request asks for attributes.
pub async fn patch(
    ctx: &Ctx,
    kind: ResourceKind,
    id: &str,
    body: Value,
) -> Result<Response<Body>, ScimError> {
    let rt = kind.resource_type();
    ctx.about(kind, Some(id));
    let projection = ctx.projection(rt)?;
    let request = scim_patch::parse_request(&body)?;
    ctx.note(&request.notes);
    let wants_body = kind == ResourceKind::User
        || ctx.has_param("attributes")
        || ctx.has_param("excludedAttributes");
    let status = if wants_body { 200 } else { 204 };
    let (tenant, id, if_match) = (ctx.tenant(), id.to_string(), ctx.if_match.clone());
    let stored = ctx
        .write(status, move |conn| {
            let (s, notes) = store::patch(conn, &tenant, kind, &id, &request, if_match.as_deref())?;
            Ok((
                s,
                Logged {
                    resource_id: id,
                    notes,
                },
            ))
        })
        .await?;
    let etag = stored.etag();
    if !wants_body {
        return Ok(response::no_content(Some(&etag)));
    }
    let body = render_one(ctx, stored, &projection).await?;
    Ok(response::resource(200, &body, &etag, None))
}

pub async fn delete(ctx: &Ctx, kind: ResourceKind, id: &str) -> Result<Response<Body>, ScimError> {
    ctx.about(kind, Some(id));
    let (tenant, id, if_match) = (ctx.tenant(), id.to_string(), ctx.if_match.clone());
    ctx.write(204, move |conn| {
        store::delete(conn, &tenant, kind, &id, if_match.as_deref())?;
        Ok((
            (),
            Logged {
                resource_id: id,
                notes: Vec::new(),
            },
        ))
    })
    .await?;
    Ok(response::no_content(None))
}

/// Run one list query for a resource type and render its page.
async fn run_list(
    ctx: &Ctx,
    kind: ResourceKind,
    req: &ListRequest,
    start: usize,
    count: usize,
) -> Result<(usize, Vec<Value>), ScimError> {
    let rt = kind.resource_type();
    let sort = match &req.sort_by {
        Some(p) => Some((query::sort_expression(p, rt)?, req.descending)),
        None => None,
    };
    let q = ListQuery {
        filter: req.filter.clone(),
        sort,
        start_index: start,
        count,
    };
    let tenant = ctx.tenant();
    let proj = req.projection.clone();
    let point = req
        .filter
        .as_ref()
        .is_some_and(|f| query::is_point_lookup(f, rt))
        && !heavy_related(kind, &req.projection);
    // One read for the page and, when wanted, each resource's members/groups.
    let page = move |conn: &rusqlite::Connection| {
        let (total, rows) = store::list(conn, &tenant, kind, &q)?;
        let mut out = Vec::with_capacity(rows.len());
        for s in rows {
            let related = if wants_related(&s, &proj) {
                Some(store::related_of(conn, &s)?)
            } else {
                None
            };
            out.push((s, related));
        }
        Ok((total, out))
    };
    let (total, rows) = read(ctx, point, page).await?;
    let out = rows
        .into_iter()
        .map(|(s, related)| render_with(ctx, s, related, &req.projection))
        .collect();
    Ok((total, out))
}

pub async fn list(
    ctx: &Ctx,
    kind: ResourceKind,
    params: ListParams,
) -> Result<Response<Body>, ScimError> {
    let req = params.parse(kind.resource_type())?;
    let (total, resources) = run_list(ctx, kind, &req, req.start_index, req.count).await?;
    Ok(response::json(
        200,
        &list::response(total, req.start_index, resources),
    ))
}

/// `POST /.search` at the root: Users then Groups, paged over the concatenation. An attribute
/// that one type does not have simply matches nothing of that type.
pub async fn search_all(ctx: &Ctx, params: ListParams) -> Result<Response<Body>, ScimError> {
    let mut total = 0;
    let mut page = Vec::new();
    let mut start = None;
    for kind in [ResourceKind::User, ResourceKind::Group] {
        let req = match params.parse(kind.resource_type()) {
            Ok(r) => r,
            Err(e) if e.scim_type == Some(crate::scim::error::ScimType::InvalidFilter) => continue,
            Err(e) => return Err(e),
        };
        let skip = req.start_index.saturating_sub(1).saturating_sub(total);
        let want = req.count.saturating_sub(page.len());
        start.get_or_insert(req.start_index);
        match run_list(ctx, kind, &req, skip + 1, want).await {
            Ok((n, mut rows)) => {
                total += n;
                page.append(&mut rows);
            }
            Err(e) if e.scim_type == Some(crate::scim::error::ScimType::InvalidFilter) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(response::json(
        200,
        &list::response(total, start.unwrap_or(1), page),
    ))
}
