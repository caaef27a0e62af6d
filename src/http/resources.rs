//! Handlers for `/Users` and `/Groups`: parse with `scim`, run in `store`, render the result.
//! Users and Groups share every handler; what differs lives in the schema table.
//! Lists and searches (`GET /Users`, `.search`) live in `list.rs`, which reads through this
//! module's `read_as` / `read_confirming` and renders with `render_with`.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{HOST, IF_MATCH};
use hyper::{Request, Response};
use rusqlite::Connection;
use serde_json::{json, Value};

use super::auth::{self, Refusal};
use super::errors::scim_error;
use super::response::{self, Body};
use crate::app::App;
use crate::auth::{Claimed, Principal, TokenError};
use crate::domain::{ResourceId, TenantId, Version};
use crate::scim::error::ScimError;
use crate::scim::render::{self, Meta, Projection};
use crate::scim::schema::{ResourceKind, ResourceType};
use crate::scim::{patch as scim_patch, resource as scim_resource};
use crate::store::request_log;
use crate::store::resources::{self as store, Member, Precondition, Stored};
use crate::store::{self as storage, Deadline, WriteOptions};
use crate::telemetry::reqlog::Draft;

/// What a request handled on behalf of a claim (a GET: the token is checked inside the
/// handler's own read) came to. A response leaves only with a `Principal`, or after the router
/// confirmed the claim (`Unconfirmed`): the types keep "no answer but 401 for a token the
/// database has not confirmed on this request".
pub enum Handled {
    /// The database confirmed the token in the handler's read; this is the answer.
    Confirmed(Principal, Result<Response<Body>, ScimError>),
    /// Ended before any read (discovery, a bad parameter): the router confirms the token
    /// before this may leave.
    Unconfirmed(Result<Response<Body>, ScimError>),
    /// The database refused the token, or could not be asked.
    Refused(Refusal),
}

impl From<ScimError> for Handled {
    fn from(e: ScimError) -> Handled {
        Handled::Unconfirmed(Err(e))
    }
}

/// What a handler needs to know about its request (besides who is asking).
pub struct Ctx {
    pub app: Arc<App>,
    draft: Arc<Draft>,
    host: Option<String>,
    precondition: Option<Precondition>,
    /// Decoded query parameters (`+` is a space, as Entra encodes filters).
    params: Vec<(String, String)>,
    /// The request's deadline (set by the router): a write starts only before it.
    deadline: Option<Deadline>,
}

impl Ctx {
    pub fn new(
        app: Arc<App>,
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
            draft,
            host,
            precondition: header(IF_MATCH).as_deref().map(parse_if_match),
            params,
            deadline: req.extensions().get::<Deadline>().cloned(),
        })
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
    /// transaction, so the log shows every change that was committed — and only those. Takes a
    /// `Principal`: nothing is written for a token the database has not confirmed.
    ///
    /// The write starts only before the request's deadline and runs within the configured time
    /// budget and protocol limits (`[limits]`); see `store::writer`.
    async fn write<T, F>(&self, who: &Principal, status: u16, f: F) -> Result<T, ScimError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &TenantId) -> storage::Result<(T, Logged)> + Send + 'static,
    {
        let draft = self.draft.clone();
        let tenant = who.tenant().clone();
        let l = &self.app.config.limits;
        let options = WriteOptions {
            deadline: self.deadline.clone(),
            budget: (l.writer_job_budget_ms > 0)
                .then(|| std::time::Duration::from_millis(l.writer_job_budget_ms)),
            limits: scim_resource::Limits {
                max_values_per_attribute: l.max_values_per_attribute,
                max_patch_operations: l.max_patch_operations,
                max_members_per_request: l.max_members_per_request,
            },
        };
        let brake = self.app.config.brake.settings();
        let result = self
            .app
            .store
            .write_with(options, move |conn| {
                // The write's diff (`store::history`) goes with its log row.
                storage::history::begin();
                let (written, held) = storage::brake::within(brake, || f(conn, &tenant));
                let (value, logged) = written?;
                let mut entry = draft.snapshot();
                entry.status = status;
                entry.resource_id = Some(logged.resource_id);
                entry
                    .notes
                    .extend(logged.notes.iter().map(|n| n.to_string()));
                if held > 0 {
                    entry.notes.push(format!(
                        "deletion brake: {held} change(s) held from the change feed"
                    ));
                }
                let seq = request_log::insert(conn, &entry)?;
                storage::history::finish(conn, seq)?;
                Ok(value)
            })
            .await;
        match result {
            Ok(v) => {
                self.draft.mark_logged();
                Ok(v)
            }
            Err(e) => Err(scim_error(e)),
        }
    }

    /// With `log.keep_bodies`: the request body goes with its provisioning-log entry, passwords
    /// stripped and capped (`scim::diff::redact_body`). Only SCIM writes call this.
    fn keep_body(&self, body: &Value) {
        if self.app.config.log.keep_bodies {
            let text = crate::scim::diff::redact_body(body);
            self.draft.update(|e| e.body = Some(text));
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

    /// The request's provisioning-log entry in the making.
    pub(super) fn draft(&self) -> &Draft {
        &self.draft
    }

    pub(super) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Absolute URL of the SCIM base: `public_url` + base_path, else derived from `Host`.
    pub fn base_url(&self) -> String {
        let (c, s) = (&self.app.config, &self.app.settings);
        let origin = match &s.public_url {
            Some(url) => url.clone(),
            None => {
                let scheme = if c.tls.enabled { "https" } else { "http" };
                match &self.host {
                    Some(host) => format!("{scheme}://{host}"),
                    None => format!("{scheme}://{}", s.listen),
                }
            }
        };
        format!("{origin}{}", c.base_path())
    }

    fn location(&self, rt: &ResourceType, id: &str) -> String {
        format!("{}{}/{id}", self.base_url(), rt.endpoint)
    }

    fn projection(&self, rt: &'static ResourceType) -> Result<Projection, ScimError> {
        Projection::parse(
            rt,
            self.param("attributes"),
            self.param("excludedAttributes"),
        )
    }
}

/// `If-Match` (RFC 7232 §3.1): `*`, or a list of entity tags. Ours are `W/"n"`; the strong form
/// `"n"` names the same version. A tag that is not one of ours matches no version.
fn parse_if_match(header: &str) -> Precondition {
    let mut versions = Vec::new();
    for tag in header.split(',').map(str::trim) {
        if tag == "*" {
            return Precondition::Any;
        }
        let opaque = tag.strip_prefix("W/").unwrap_or(tag);
        let number = opaque
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .and_then(|t| t.parse::<i64>().ok());
        if let Some(n) = number {
            versions.push(Version(n));
        }
    }
    Precondition::OneOf(versions)
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

/// What a successful write tells the provisioning log.
struct Logged {
    resource_id: String,
    notes: Vec<&'static str>,
}

impl Logged {
    fn about(resource_id: String) -> Logged {
        Logged {
            resource_id,
            notes: Vec::new(),
        }
    }
}

/// Render a stored resource with what the projection asks for (members, groups), reading
/// those rows on a separate hop. Used after writes; reads fetch them in the same hop.
async fn render_one(
    ctx: &Ctx,
    who: &Principal,
    s: Stored,
    projection: &Projection,
) -> Result<Value, ScimError> {
    let rows = if wants_related(&s, projection) {
        let copy = s.clone();
        let read_rows = move |conn: &Connection, _: &TenantId| store::related_of(conn, &copy);
        Some(read_as(ctx, who, !heavy_related(s.kind, projection), read_rows).await?)
    } else {
        None
    };
    Ok(render_with(ctx, s, rows, projection))
}

/// Whether the response carries a group's `members` or a user's `groups`.
pub(super) fn wants_related(s: &Stored, projection: &Projection) -> bool {
    let rt = s.kind.resource_type();
    projection.wants(rt, related_name(s.kind))
}

/// Run a read for a claim: the token's database check runs first, in the same read
/// transaction, and `f` only runs for the principal it yields — nothing `f` read leaves unless
/// the token passed. A point read (`point`) runs on this thread, anything else on a blocking
/// thread; see `Store::read_point`.
pub(super) async fn read_confirming<T, F>(
    ctx: &Ctx,
    claimed: &Claimed,
    point: bool,
    f: F,
) -> Result<(Principal, Result<T, ScimError>), Handled>
where
    T: Send + 'static,
    F: FnOnce(&Connection, &TenantId) -> storage::Result<T> + Send + 'static,
{
    // A data-sized read waits for one of the claimed tenant's read slots: one tenant's slow
    // queries cannot hold every read connection.
    let _slot = match point {
        true => None,
        false => ctx.app.tenant_reads.enter(claimed.tenant()).await,
    };
    let claim = claimed.clone();
    type Confirmed<T> = Result<(Principal, storage::Result<T>), TokenError>;
    let job = move |conn: &Connection| -> storage::Result<Confirmed<T>> {
        Ok(claim.confirm(conn)?.map(|who| {
            let value = f(conn, who.tenant());
            (who, value)
        }))
    };
    let store = &ctx.app.store;
    let outcome = if point {
        store.read_point(job).await
    } else {
        store.read(job).await
    };
    match outcome {
        Err(e) => Err(Handled::Refused(Refusal::Unavailable(scim_error(e)))),
        Ok(Err(why)) => Err(Handled::Refused(Refusal::Token(why))),
        Ok(Ok((who, value))) => {
            auth::accepted(&ctx.app, &ctx.draft, &who);
            Ok((who, value.map_err(scim_error)))
        }
    }
}

/// Run a read for a principal the database already confirmed on this request.
pub(super) async fn read_as<T, F>(
    ctx: &Ctx,
    who: &Principal,
    point: bool,
    f: F,
) -> Result<T, ScimError>
where
    T: Send + 'static,
    F: FnOnce(&Connection, &TenantId) -> storage::Result<T> + Send + 'static,
{
    let _slot = match point {
        true => None,
        false => ctx.app.tenant_reads.enter(who.tenant()).await,
    };
    let tenant = who.tenant().clone();
    let job = move |conn: &Connection| f(conn, &tenant);
    let store = &ctx.app.store;
    let outcome = if point {
        store.read_point(job).await
    } else {
        store.read(job).await
    };
    outcome.map_err(scim_error)
}

/// A resource's members/groups as a read fetched them.
pub(super) enum Related {
    /// Not asked for.
    NotWanted,
    Rows(Vec<Member>),
    /// More than a point read fetches on the calling thread: fetch them on a blocking thread.
    TooManyInline,
}

impl Related {
    pub(super) fn rows(self) -> Option<Vec<Member>> {
        match self {
            Related::Rows(rows) => Some(rows),
            Related::NotWanted | Related::TooManyInline => None,
        }
    }
}

/// The related rows the projection asks for. In a point read (`inline`) at most
/// `stats::INLINE_RELATED` of them: a user may be in any number of groups.
pub(super) fn related_rows(
    conn: &Connection,
    s: &Stored,
    projection: &Projection,
    inline: bool,
) -> storage::Result<Related> {
    if !wants_related(s, projection) {
        return Ok(Related::NotWanted);
    }
    if inline && storage::stats::related_exceeds_inline(conn, s)? {
        return Ok(Related::TooManyInline);
    }
    Ok(Related::Rows(store::related_of(conn, s)?))
}

/// A resource's members/groups on a blocking thread.
async fn read_related(ctx: &Ctx, who: &Principal, s: &Stored) -> Result<Vec<Member>, ScimError> {
    let copy = s.clone();
    read_as(ctx, who, false, move |conn, _| {
        store::related_of(conn, &copy)
    })
    .await
}

/// Whether the response may carry a group's members: their number has no bound, so such a
/// read runs on a blocking thread.
pub(super) fn heavy_related(kind: ResourceKind, projection: &Projection) -> bool {
    kind == ResourceKind::Group && projection.wants(kind.resource_type(), "members")
}

fn related_name(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Group => "members",
        ResourceKind::User => "groups",
    }
}

/// The SCIM JSON of a stored resource; `related` holds its members/groups when wanted.
pub(super) fn render_with(
    ctx: &Ctx,
    s: Stored,
    related: Option<Vec<Member>>,
    projection: &Projection,
) -> Value {
    let rt = s.kind.resource_type();
    let (created, last_modified) = (s.created.to_rfc3339(), s.last_modified.to_rfc3339());
    let meta = Meta {
        id: s.id.as_str(),
        version: s.version.0,
        created: &created,
        last_modified: &last_modified,
        location: ctx.location(rt, s.id.as_str()),
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

pub(super) fn member_json(ctx: &Ctx, m: &Member, with_display: bool) -> Value {
    let rt = m.kind.resource_type();
    let mut v =
        json!({"value": m.id.as_str(), "$ref": ctx.location(rt, m.id.as_str()), "type": rt.name});
    if let (true, Some(d), Some(o)) = (with_display, &m.display, v.as_object_mut()) {
        o.insert("display".into(), d.clone().into());
    }
    v
}

/// `GET /Users/{id}`, `GET /Groups/{id}`.
pub async fn get(
    ctx: &Ctx,
    claimed: &Claimed,
    kind: ResourceKind,
    id: &str,
) -> Result<Handled, Handled> {
    let rt = kind.resource_type();
    ctx.about(kind, Some(id));
    let projection = ctx.projection(rt)?;
    let id_owned = ResourceId::new(id);
    let proj = projection.clone();
    // A lookup by id is one index probe, except a group's members (100,000 rows, perhaps).
    let point = !heavy_related(kind, &projection);
    let lookup = move |conn: &Connection, tenant: &TenantId| {
        let Some(s) = store::get(conn, tenant, kind, &id_owned)? else {
            return Ok(None);
        };
        let related = related_rows(conn, &s, &proj, point)?;
        Ok(Some((s, related)))
    };
    let (who, found) = read_confirming(ctx, claimed, point, lookup).await?;
    let found = match found {
        Ok(Some((stored, Related::TooManyInline))) => {
            // A user in more groups than a point read fetches inline: on a blocking thread.
            let related = read_related(ctx, &who, &stored).await;
            related.map(|rows| Some((stored, Related::Rows(rows))))
        }
        other => other,
    };
    let answer = found.and_then(|found| {
        let (stored, related) =
            found.ok_or_else(|| ScimError::not_found(format!("{} {id} not found", rt.name)))?;
        let etag = stored.etag();
        let body = render_with(ctx, stored, related.rows(), &projection);
        Ok(response::resource(200, &body, &etag, None))
    });
    Ok(Handled::Confirmed(who, answer))
}

/// `POST /Users`, `POST /Groups`.
pub async fn create(
    ctx: &Ctx,
    who: &Principal,
    kind: ResourceKind,
    body: Value,
) -> Result<Response<Body>, ScimError> {
    let rt = kind.resource_type();
    ctx.about(kind, None);
    ctx.keep_body(&body);
    let projection = ctx.projection(rt)?;
    let normalised = scim_resource::normalise(rt, &body)?;
    ctx.note(&normalised.notes);
    let proj = projection.clone();
    // The history's diff of a create, computed here rather than on the single writer thread.
    let member_ids: Vec<&str> = normalised
        .members
        .iter()
        .flatten()
        .map(|m| m.value.as_str())
        .collect();
    let created = crate::scim::diff::created_text(&normalised.doc, &member_ids);
    let (stored, related) = ctx
        .write(who, 201, move |conn, tenant| {
            let s = store::create(
                conn,
                tenant,
                kind,
                normalised.doc,
                normalised.members.as_deref(),
            )?;
            storage::history::set_pending_text(created);
            // In the same transaction, so no second hop: a new user belongs to no group yet,
            // and a new group's members are the ones in this request (bounded by its size).
            let related = match (kind, wants_related(&s, &proj)) {
                (_, false) => None,
                (ResourceKind::User, true) => Some(Vec::new()),
                (ResourceKind::Group, true) => Some(store::related_of(conn, &s)?),
            };
            let logged = Logged::about(s.id.to_string());
            Ok(((s, related), logged))
        })
        .await?;
    let etag = stored.etag();
    let location = ctx.location(rt, stored.id.as_str());
    let body = render_with(ctx, stored, related, &projection);
    Ok(response::resource(201, &body, &etag, Some(&location)))
}

/// `PUT /Users/{id}`, `PUT /Groups/{id}`.
pub async fn replace(
    ctx: &Ctx,
    who: &Principal,
    kind: ResourceKind,
    id: &str,
    body: Value,
) -> Result<Response<Body>, ScimError> {
    let rt = kind.resource_type();
    ctx.about(kind, Some(id));
    ctx.keep_body(&body);
    let projection = ctx.projection(rt)?;
    let normalised = scim_resource::normalise(rt, &body)?;
    ctx.note(&normalised.notes);
    let (id, precondition) = (ResourceId::new(id), ctx.precondition.clone());
    let stored = ctx
        .write(who, 200, move |conn, tenant| {
            let s = store::replace(
                conn,
                tenant,
                kind,
                &id,
                normalised.doc,
                normalised.members.as_deref(),
                precondition.as_ref(),
            )?;
            Ok((s, Logged::about(id.to_string())))
        })
        .await?;
    let etag = stored.etag();
    let body = render_one(ctx, who, stored, &projection).await?;
    Ok(response::resource(200, &body, &etag, None))
}

/// PATCH: users answer 200 with the resource (what Microsoft's validator expects); groups answer
/// 204 (Entra: "returning a body with a list of all the members isn't advisable") unless the
/// request asks for attributes.
pub async fn patch(
    ctx: &Ctx,
    who: &Principal,
    kind: ResourceKind,
    id: &str,
    body: Value,
) -> Result<Response<Body>, ScimError> {
    let rt = kind.resource_type();
    ctx.about(kind, Some(id));
    ctx.keep_body(&body);
    let projection = ctx.projection(rt)?;
    let request = scim_patch::parse_request(&body)?;
    ctx.note(&request.notes);
    let wants_body = kind == ResourceKind::User
        || ctx.has_param("attributes")
        || ctx.has_param("excludedAttributes");
    let status = if wants_body { 200 } else { 204 };
    let (id, precondition) = (ResourceId::new(id), ctx.precondition.clone());
    let stored = ctx
        .write(who, status, move |conn, tenant| {
            let (s, notes) =
                store::patch(conn, tenant, kind, &id, &request, precondition.as_ref())?;
            Ok((
                s,
                Logged {
                    resource_id: id.to_string(),
                    notes,
                },
            ))
        })
        .await?;
    let etag = stored.etag();
    if !wants_body {
        return Ok(response::no_content(Some(&etag)));
    }
    let body = render_one(ctx, who, stored, &projection).await?;
    Ok(response::resource(200, &body, &etag, None))
}

/// `DELETE /Users/{id}`, `DELETE /Groups/{id}`.
pub async fn delete(
    ctx: &Ctx,
    who: &Principal,
    kind: ResourceKind,
    id: &str,
) -> Result<Response<Body>, ScimError> {
    ctx.about(kind, Some(id));
    let (id, precondition) = (ResourceId::new(id), ctx.precondition.clone());
    ctx.write(who, 204, move |conn, tenant| {
        store::delete(conn, tenant, kind, &id, precondition.as_ref())?;
        Ok(((), Logged::about(id.to_string())))
    })
    .await?;
    Ok(response::no_content(None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_names_versions_or_any() {
        assert_eq!(parse_if_match("*"), Precondition::Any);
        assert_eq!(
            parse_if_match("W/\"3\", \"4\""),
            Precondition::OneOf(vec![Version(3), Version(4)])
        );
        // Not one of our tags: matches no version (412), never "any".
        assert_eq!(parse_if_match("W/\"abc\""), Precondition::OneOf(vec![]));
        assert_eq!(parse_if_match("W/\"2\", *"), Precondition::Any);
    }
}
