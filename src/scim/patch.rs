//! The PATCH engine (RFC 7644 §3.5.2): parse a PatchOp body, apply it to a stored document.
//!
//! Pure: no I/O, no SQL. The document is changed on a clone and written back only when every
//! operation succeeded, so a failing request changes nothing. Group members never enter the
//! document (a group may have 100,000 of them): member changes come back as [`MemberOp`]s that
//! the store applies as row inserts and deletes, in order.
//!
//! Besides the RFC, this accepts what Microsoft Entra ID actually sends (see
//! `docs/entra-id-behaviour.md`, "Update (PATCH)" and "Groups and members"): capitalised `op`,
//! booleans as strings, path-less values whose keys are paths, filtered paths that must create
//! the element they name, member removal by a `value` array, and `manager` as a plain string.
//! Each tolerance applied is named in `notes`.
//!
//! The work is bounded by [`Limits`]: at most `max_patch_operations` operations, each leaving
//! every multi-valued attribute it touches within `max_values_per_attribute` values, and at
//! most `max_members_per_request` members named in all. Each operation costs time linear in
//! the size of its value and of the attribute it changes (`patch/elements.rs`), so a request
//! the limits allow is applied in milliseconds — it runs while the single writer waits.

mod elements;

use serde_json::{Map, Value};

use self::elements::{complex_op, elements_op, multi_op};
use super::error::{ScimError, ScimType};
use super::filter::{self, CompareOp, Filter, Literal, PatchPath};
use super::resource::{self, Limits, MemberRef, Notes};
use super::schema::{self, AttrType, Attribute, Mutability, ResourceType, Schema};

/// `add`, `replace` or `remove`; matched case-insensitively (Entra sends `"Replace"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Add,
    Replace,
    Remove,
}

/// Where an operation points.
#[derive(Debug, Clone, PartialEq)]
pub enum OpPath {
    /// A whole schema by URN (scim2-tester patches `urn:…:enterprise:2.0:User` as one path).
    /// Holds the canonical URN; whether it belongs to the resource type is checked in `apply`.
    Schema(&'static str),
    /// An attribute path, possibly with a value filter.
    Attr(PatchPath),
}

/// One entry of `Operations`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOperation {
    pub op: OpKind,
    pub path: Option<OpPath>,
    /// Present for `add`/`replace` (may be JSON null: "clear"); optional for `remove`.
    pub value: Option<Value>,
}

/// A parsed PatchOp body.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchRequest {
    pub operations: Vec<PatchOperation>,
    /// Quirks seen while parsing (e.g. "capitalised op"); carried into [`PatchOutcome::notes`].
    pub notes: Vec<&'static str>,
}

/// A change to a Group's membership, for the store to apply in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberOp {
    Add(Vec<MemberRef>),
    Remove(Vec<String>),
    Clear,
}

/// What `apply` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchOutcome {
    /// The document differs from before (member operations are not counted here).
    pub changed: bool,
    pub member_ops: Vec<MemberOp>,
    pub notes: Vec<&'static str>,
}

/// Parse a PatchOp body. Unknown keys (Microsoft's Postman tests send a top-level `id`) are
/// ignored; errors inside an operation say which one (`Operations[2]: …`).
pub fn parse_request(body: &Value) -> Result<PatchRequest, ScimError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("a PATCH body must be a JSON object"))?;
    check_schemas(obj)?;
    let ops = get_ci(obj, "Operations")
        .and_then(Value::as_array)
        .filter(|ops| !ops.is_empty())
        .ok_or_else(|| ScimError::invalid_syntax("'Operations' must be a non-empty array"))?;
    let mut notes = Notes::default();
    let operations = ops
        .iter()
        .enumerate()
        .map(|(i, op)| parse_operation(op, &mut notes).map_err(|e| e.at(at_op(i))))
        .collect::<Result<_, _>>()?;
    Ok(PatchRequest {
        operations,
        notes: notes.into_vec(),
    })
}

/// RFC 7644 §3.5.2: the body's `schemas` is REQUIRED and holds the PatchOp URN. Entra, the
/// Validator and Microsoft's Postman tests always send it, so a missing one is rejected.
fn check_schemas(obj: &Map<String, Value>) -> Result<(), ScimError> {
    let listed = get_ci(obj, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .any(|s| s.eq_ignore_ascii_case(schema::PATCH_OP))
        });
    if listed {
        Ok(())
    } else {
        Err(ScimError::invalid_syntax(format!(
            "'schemas' must contain \"{}\"",
            schema::PATCH_OP
        )))
    }
}

fn parse_operation(v: &Value, notes: &mut Notes) -> Result<PatchOperation, ScimError> {
    let obj = v
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("an operation must be a JSON object"))?;
    let text = get_ci(obj, "op")
        .and_then(Value::as_str)
        .ok_or_else(|| ScimError::invalid_syntax("'op' is required"))?;
    let op = match text.to_ascii_lowercase().as_str() {
        "add" => OpKind::Add,
        "replace" => OpKind::Replace,
        "remove" => OpKind::Remove,
        _ => {
            return Err(ScimError::invalid_syntax(format!(
                "'op' must be add, replace or remove, not '{text}'"
            )))
        }
    };
    if text.chars().any(|c| c.is_ascii_uppercase()) {
        notes.add("capitalised op");
    }
    let path = match get_ci(obj, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(parse_path(s.trim())?),
        Some(_) => return Err(ScimError::invalid_path("'path' must be a string")),
    };
    let value = get_ci(obj, "value").cloned();
    // RFC 7644 §3.5.2.2: "If "path" is unspecified, the operation fails with HTTP status code
    // 400 and a "scimType" error code of "noTarget"."
    if op == OpKind::Remove && path.is_none() {
        return Err(ScimError::no_target("'remove' needs a 'path'"));
    }
    if op != OpKind::Remove && value.is_none() {
        return Err(ScimError::invalid_syntax(format!(
            "'{text}' needs a 'value'"
        )));
    }
    Ok(PatchOperation { op, path, value })
}

/// A path that is a whole schema URN would otherwise split into `urn:…:2.0` + attribute `User`.
fn parse_path(text: &str) -> Result<OpPath, ScimError> {
    match schema::SCHEMAS
        .iter()
        .find(|s| s.id.eq_ignore_ascii_case(text))
    {
        Some(s) => Ok(OpPath::Schema(s.id)),
        None => filter::parse_patch_path(text).map(OpPath::Attr),
    }
}

/// Apply a parsed request to `doc` within the default [`Limits`]. Atomic: on error `doc` is
/// untouched.
pub fn apply(
    rt: &'static ResourceType,
    doc: &mut Value,
    req: &PatchRequest,
) -> Result<PatchOutcome, ScimError> {
    apply_within(rt, doc, req, &Limits::DEFAULT)
}

/// Apply a parsed request to `doc`, refusing what exceeds `limits` (400 `invalidValue` naming
/// the limit). Atomic: on error `doc` is untouched.
///
/// After all operations the required attributes are checked. RFC 7644 §3.5.2: "If an attribute
/// is removed or becomes unassigned and is defined as a required attribute or a read-only
/// attribute, the server SHALL return … a "scimType" error code of "mutability"."
pub fn apply_within(
    rt: &'static ResourceType,
    doc: &mut Value,
    req: &PatchRequest,
    limits: &Limits,
) -> Result<PatchOutcome, ScimError> {
    let Some(before) = doc.as_object() else {
        return Err(ScimError::internal());
    };
    limits.check_operations(req.operations.len())?;
    let mut engine = Engine {
        rt,
        doc: before.clone(),
        member_ops: Vec::new(),
        notes: Notes::from(req.notes.clone()),
        limits: *limits,
        members_named: 0,
    };
    for (i, op) in req.operations.iter().enumerate() {
        engine.operation(op).map_err(|e| e.at(at_op(i)))?;
    }
    prune(&mut engine.doc);
    let after = Value::Object(engine.doc);
    if let Some(name) = resource::missing_required(rt, &after) {
        return Err(ScimError::mutability(format!(
            "'{name}' is required and cannot be removed or emptied"
        )));
    }
    let changed = after != *doc;
    if changed {
        *doc = after;
    }
    Ok(PatchOutcome {
        changed,
        member_ops: engine.member_ops,
        notes: engine.notes.into_vec(),
    })
}

/// A resolved attribute path: which attribute, in which container, narrowed how.
struct Target<'a> {
    ext: Option<&'static Schema>,
    attr: &'static Attribute,
    filter: Option<&'a Filter>,
    sub: Option<&'static Attribute>,
}

/// The working state of one `apply`: the cloned document and what it produced so far.
struct Engine {
    rt: &'static ResourceType,
    doc: Map<String, Value>,
    member_ops: Vec<MemberOp>,
    notes: Notes,
    limits: Limits,
    /// Members named by the operations so far (added, removed or filtered).
    members_named: usize,
}

impl Engine {
    fn operation(&mut self, op: &PatchOperation) -> Result<(), ScimError> {
        let value = op.value.as_ref();
        match &op.path {
            None => self.pathless(op.op, value.unwrap_or(&Value::Null)),
            Some(OpPath::Schema(urn)) => {
                let ext = self.rt.extension(urn).ok_or_else(|| {
                    ScimError::invalid_path(format!(
                        "'{urn}' is not an extension of {}",
                        self.rt.name
                    ))
                })?;
                self.extension(op.op, ext, value)
            }
            Some(OpPath::Attr(path)) => {
                let target = self.target(path)?;
                self.attribute(op.op, &target, value)
            }
        }
    }

    /// Resolve a path against the schema; read-only targets are refused here.
    fn target<'a>(&self, path: &'a PatchPath) -> Result<Target<'a>, ScimError> {
        let resolved = path.attr.resolve(self.rt)?;
        let sub = match &path.sub {
            Some(name) => Some(resolved.attr.sub(name).ok_or_else(|| {
                ScimError::invalid_path(format!(
                    "'{}' has no sub-attribute '{name}'",
                    resolved.attr.name
                ))
            })?),
            None => resolved.sub,
        };
        if path.filter.is_some() && resolved.attr.ty != AttrType::Complex {
            return Err(ScimError::invalid_path(format!(
                "'{}' is not complex and cannot take a value filter",
                resolved.attr.name
            )));
        }
        // RFC 7644 §3.5.2: "A client MUST NOT modify an attribute that has mutability "readOnly"".
        let read_only = [Some(resolved.attr), sub]
            .into_iter()
            .flatten()
            .find(|a| a.mutability == Mutability::ReadOnly);
        if let Some(a) = read_only {
            return Err(ScimError::mutability(format!("'{}' is read-only", a.name)));
        }
        Ok(Target {
            ext: resolved.extension,
            attr: resolved.attr,
            filter: path.filter.as_ref(),
            sub,
        })
    }

    /// RFC 7644 §3.5.2.1: without a path, "the "value" parameter contains a set of attributes to
    /// be added to the resource". Entra's flag mode makes the keys *paths* (`name.givenName`,
    /// `urn:…:User:costCenter`); each key is applied as if it were its own operation. Keys that
    /// are not writable attributes are dropped, exactly as in a POST body.
    fn pathless(&mut self, kind: OpKind, value: &Value) -> Result<(), ScimError> {
        let obj = value.as_object().ok_or_else(|| {
            ScimError::invalid_value("an operation without 'path' needs an object 'value'")
        })?;
        for (key, v) in obj {
            self.pathless_key(kind, key, v).map_err(|e| e.at(key))?;
        }
        Ok(())
    }

    fn pathless_key(&mut self, kind: OpKind, key: &str, value: &Value) -> Result<(), ScimError> {
        if key.eq_ignore_ascii_case("schemas") {
            return Ok(());
        }
        if let Some(ext) = self.rt.extension(key) {
            return self.extension(kind, ext, Some(value));
        }
        let path = filter::parse_patch_path(key);
        let target = match path
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|p| self.target(p))
        {
            Ok(t) => t,
            // `id`, `meta`, `groups` in a resource fragment: ignored, as in a POST body.
            Err(e) if e.scim_type == Some(ScimType::Mutability) => return Ok(()),
            Err(_) => {
                self.notes.add("unknown attribute dropped");
                return Ok(());
            }
        };
        if key.contains(['.', ':', '[']) {
            self.notes.add("path-less map of paths");
        }
        self.attribute(kind, &target, Some(value))
    }

    /// A whole extension as path (or as a path-less key): each attribute of the value object is
    /// applied on its own, so `add` and `replace` merge (like a complex attribute, §3.5.2.3).
    fn extension(
        &mut self,
        kind: OpKind,
        ext: &'static Schema,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        let value = value.unwrap_or(&Value::Null);
        if kind == OpKind::Remove || (kind == OpKind::Replace && resource::is_unassigned(value)) {
            self.doc.shift_remove(ext.id);
            return Ok(());
        }
        if resource::is_unassigned(value) {
            return Ok(());
        }
        let obj = value.as_object().ok_or_else(|| {
            ScimError::invalid_value(format!("the value for '{}' must be an object", ext.id))
        })?;
        for (key, v) in obj {
            let Some(attr) = resource::extension_attribute(ext, key, &mut self.notes) else {
                continue;
            };
            if attr.mutability != Mutability::ReadOnly {
                let target = Target {
                    ext: Some(ext),
                    attr,
                    filter: None,
                    sub: None,
                };
                self.attribute(kind, &target, Some(v))?;
            }
        }
        Ok(())
    }

    /// One operation on one attribute: pick the shape-specific rule.
    fn attribute(
        &mut self,
        kind: OpKind,
        t: &Target,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        if resource::is_members(self.rt, t.ext, t.attr) {
            return self.members(kind, t, value);
        }
        if t.attr.mutability == Mutability::WriteOnly {
            return Ok(()); // `password`: accepted, never stored.
        }
        let whole = t.filter.is_none() && t.sub.is_none();
        if kind == OpKind::Remove && whole && t.attr.required {
            return Err(ScimError::mutability(format!(
                "'{}' is required and cannot be removed",
                t.attr.name
            )));
        }
        let value = value.unwrap_or(&Value::Null);
        let (notes, limits) = (&mut self.notes, &self.limits);
        with_container(&mut self.doc, t.ext, |c| {
            if !t.attr.multi_valued {
                return single_op(c, kind, t, whole, value, notes);
            }
            // Each operation leaves the attribute within the limit (or, for a document stored
            // before the limit, no larger than it was), so no operation works on more.
            let before = count_values(c, t.attr);
            if whole {
                // The value's own size first: refused before any of it is normalised.
                let given = match value {
                    Value::Array(items) => items.len(),
                    _ => 1,
                };
                limits.check_values(t.attr, given)?;
                multi_op(c, kind, t.attr, value, notes)?;
            } else {
                elements_op(c, kind, t, value, notes)?;
            }
            let after = count_values(c, t.attr);
            if after > before {
                limits.check_values(t.attr, after)?;
            }
            Ok(())
        })
    }

    /// Group members become [`MemberOp`]s; the document never holds them.
    fn members(
        &mut self,
        kind: OpKind,
        t: &Target,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        // Counted before any of them is read: the limit bounds the work, not just the result.
        let named = match (value, t.filter) {
            (Some(Value::Array(items)), _) => items.len(),
            (_, Some(f)) => filter_terms(f),
            (Some(_), None) => 1,
            (None, None) => 0,
        };
        self.members_named = self.members_named.saturating_add(named);
        self.limits.check_members(self.members_named)?;
        self.member_change(kind, t, value)
    }
    /// The member operation itself, once the limit allowed it.
    fn member_change(
        &mut self,
        kind: OpKind,
        t: &Target,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        if t.sub.is_some() {
            return Err(ScimError::invalid_path(
                "members can only be changed whole or as members[value eq \"…\"]",
            ));
        }
        // Only an absent or null value means "all members"; `[]` or `""` names none.
        let value = value.filter(|v| !v.is_null());
        let refs = |notes: &mut Notes| match value {
            Some(v) if !resource::is_unassigned(v) => resource::member_refs(t.attr, v, notes),
            _ => Ok(Vec::new()),
        };
        let op = match (kind, t.filter) {
            // Flag mode and the Validator: `members[value eq "id"]`.
            (OpKind::Remove, Some(f)) => MemberOp::Remove(member_filter_ids(f)?),
            // No-flag mode: `"path":"members","value":[{"value":"id"}]` removes only those;
            // treating it as "remove all" is the destructive bug this guards against.
            (OpKind::Remove, None) if value.is_some() => {
                let ids: Vec<String> = refs(&mut self.notes)?
                    .into_iter()
                    .map(|m| m.value)
                    .collect();
                if !ids.is_empty() {
                    self.notes.add("members removed by value array");
                }
                MemberOp::Remove(ids)
            }
            (OpKind::Remove, None) => MemberOp::Clear,
            (_, Some(_)) => {
                return Err(ScimError::invalid_filter(
                    "a members filter is only supported by remove",
                ))
            }
            (OpKind::Add, None) => MemberOp::Add(refs(&mut self.notes)?),
            (OpKind::Replace, None) => {
                self.member_ops.push(MemberOp::Clear);
                MemberOp::Add(refs(&mut self.notes)?)
            }
        };
        let empty = matches!(&op, MemberOp::Add(v) if v.is_empty())
            || matches!(&op, MemberOp::Remove(v) if v.is_empty());
        if !empty {
            self.member_ops.push(op);
        }
        Ok(())
    }
}

/// A single-valued attribute: a complex one (`name`, `manager`) whole or by sub-attribute, or a
/// simple one.
fn single_op(
    c: &mut Map<String, Value>,
    kind: OpKind,
    t: &Target,
    whole: bool,
    value: &Value,
    notes: &mut Notes,
) -> Result<(), ScimError> {
    match (whole, t.attr.ty) {
        (false, _) => elements_op(c, kind, t, value, notes),
        (true, AttrType::Complex) => complex_op(c, kind, t.attr, value, notes),
        (true, _) => {
            let v = match kind {
                OpKind::Remove => None,
                _ => resource::normalise_one(t.attr, value, notes)?,
            };
            resource::set(c, t.attr.name, v);
            Ok(())
        }
    }
}

/// How many values a multi-valued attribute holds in its container.
fn count_values(c: &Map<String, Value>, attr: &Attribute) -> usize {
    match c.get(attr.name) {
        Some(Value::Array(items)) => items.len(),
        Some(Value::Null) | None => 0,
        Some(_) => 1,
    }
}

/// The comparisons in a filter: how many members `members[value eq "a" or …]` names at most.
fn filter_terms(f: &Filter) -> usize {
    match f {
        Filter::And(a, b) | Filter::Or(a, b) => filter_terms(a).saturating_add(filter_terms(b)),
        Filter::Not(a) => filter_terms(a),
        _ => 1,
    }
}

/// The ids named by `members[value eq "a" or value eq "b"]`; any other filter is refused.
fn member_filter_ids(f: &Filter) -> Result<Vec<String>, ScimError> {
    match f {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value: Literal::String(id),
        } if path.urn.is_none()
            && path.sub.is_none()
            && path.name.eq_ignore_ascii_case("value") =>
        {
            Ok(vec![id.clone()])
        }
        Filter::Or(a, b) => {
            let mut ids = member_filter_ids(a)?;
            ids.extend(member_filter_ids(b)?);
            Ok(ids)
        }
        _ => Err(ScimError::invalid_filter(
            "only value eq is supported for members",
        )),
    }
}

/// Run `f` on the object that holds the target: the document itself, or the extension object
/// (created on demand; emptied ones are pruned at the end).
fn with_container<R>(
    doc: &mut Map<String, Value>,
    ext: Option<&Schema>,
    f: impl FnOnce(&mut Map<String, Value>) -> R,
) -> R {
    let Some(ext) = ext else {
        return f(doc);
    };
    let slot = doc
        .entry(ext.id)
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    match slot.as_object_mut() {
        Some(obj) => f(obj),
        None => f(&mut Map::new()),
    }
}

/// Drop unassigned values left by the operations, and extension objects that became empty.
fn prune(doc: &mut Map<String, Value>) {
    for value in doc.values_mut() {
        if let Value::Object(inner) = value {
            inner.retain(|_, v| !resource::is_unassigned(v));
        }
    }
    doc.retain(|_, v| !resource::is_unassigned(v));
}

/// Case-insensitive key lookup ("Operations", "Op", "Value"): Microsoft asks servers not to
/// require case-sensitive structural elements.
fn get_ci<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn at_op(i: usize) -> String {
    format!("Operations[{i}]")
}

#[cfg(test)]
mod tests;
