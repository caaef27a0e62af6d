//! Normalising incoming resource bodies (POST/PUT) into the stored document form, and the value
//! coercion that PATCH shares with them.
//!
//! The stored document ("doc") is a JSON object holding core attributes at the top level under
//! their canonical names, extension attributes inside an object keyed by the canonical extension
//! URN, and nothing else: no `id`, `meta`, `schemas`, read-only or write-only attributes, no
//! Group `members` (those live in a join table), no nulls, no empty strings, arrays or objects.
//! Values are otherwise kept exactly as sent (Entra: never reformat phone numbers).
//!
//! Entra and Microsoft's test suites send bodies that are not RFC-clean; each tolerance applied
//! is named in `notes` for the provisioning log. This module owns *what a value may look like*;
//! it does no I/O and knows nothing of storage or HTTP.

use serde_json::{Map, Value};

use super::error::ScimError;
use super::schema::{
    self, AttrType, Attribute, Mutability, ResourceKind, ResourceType, Schema, COMMON_ATTRIBUTES,
};

/// One member of a Group as sent by the client; the store resolves and dedups them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRef {
    /// The member's `id` (a user or a group of the same tenant).
    pub value: String,
    /// The `type` sub-attribute (`"User"` / `"Group"`), if the client sent one.
    pub kind: Option<String>,
}

/// A POST/PUT body in stored form.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalised {
    pub doc: Value,
    /// `Some` when the body carried a `members` attribute (Groups), even an empty one.
    pub members: Option<Vec<MemberRef>>,
    /// Names of the client quirks that were tolerated, for the provisioning log.
    pub notes: Vec<&'static str>,
}

/// The names of tolerated quirks, deduplicated, in the order first seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notes(Vec<&'static str>);

impl Notes {
    pub fn add(&mut self, note: &'static str) {
        if !self.0.contains(&note) {
            self.0.push(note);
        }
    }
    pub fn into_vec(self) -> Vec<&'static str> {
        self.0
    }
}

impl From<Vec<&'static str>> for Notes {
    fn from(notes: Vec<&'static str>) -> Self {
        let mut n = Notes::default();
        notes.into_iter().for_each(|x| n.add(x));
        n
    }
}

/// How much one request may ask of one resource: bounds on the work a write does while it holds
/// the single writer (RFC 7644 leaves such limits to the service provider). The server takes
/// them from `[limits]` in its configuration; `DEFAULT` is what the shipped configuration says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Values one multi-valued attribute (`emails`, `phoneNumbers`, `addresses`, `roles`…) may
    /// hold. Group `members` are not counted here: they are rows, not values of the document.
    pub max_values_per_attribute: usize,
    /// Operations one PATCH request may carry.
    pub max_patch_operations: usize,
    /// Members one request may name (a POST/PUT body's `members`, or the member values of all
    /// operations of a PATCH together). A group itself may have any number of members.
    pub max_members_per_request: usize,
}

impl Limits {
    pub const DEFAULT: Limits = Limits {
        max_values_per_attribute: 100,
        max_patch_operations: 1000,
        max_members_per_request: 10_000,
    };

    /// 400 `invalidValue` when `count` values of `attr` are more than one attribute may hold.
    ///
    /// RFC 7644 §3.12 `invalidValue` ("the value specified was not compatible with the operation
    /// or attribute type … or resource schema"), not `tooMany`: that one is defined for filters
    /// that yield too many results, and applies to GET and search only.
    pub fn check_values(&self, attr: &Attribute, count: usize) -> Result<(), ScimError> {
        if count <= self.max_values_per_attribute {
            return Ok(());
        }
        Err(ScimError::invalid_value(format!(
            "'{}' would hold {count} values; at most {} values are allowed per multi-valued \
             attribute (server limit limits.max_values_per_attribute)",
            attr.name, self.max_values_per_attribute
        )))
    }

    /// 400 `invalidValue` when a PATCH carries more operations than allowed.
    pub fn check_operations(&self, count: usize) -> Result<(), ScimError> {
        if count <= self.max_patch_operations {
            return Ok(());
        }
        Err(ScimError::invalid_value(format!(
            "the request has {count} operations; at most {} are allowed per PATCH \
             (server limit limits.max_patch_operations)",
            self.max_patch_operations
        )))
    }

    /// 400 `invalidValue` when a request names more members than allowed.
    pub fn check_members(&self, count: usize) -> Result<(), ScimError> {
        if count <= self.max_members_per_request {
            return Ok(());
        }
        Err(ScimError::invalid_value(format!(
            "the request names {count} members; at most {} are allowed per request, in as many \
             requests as needed (server limit limits.max_members_per_request)",
            self.max_members_per_request
        )))
    }

    /// Every multi-valued attribute of a stored document (core and extensions) within
    /// `max_values_per_attribute`, and the members a POST/PUT body names within
    /// `max_members_per_request`.
    pub fn check_resource(
        &self,
        rt: &'static ResourceType,
        doc: &Value,
        members: Option<usize>,
    ) -> Result<(), ScimError> {
        self.check_members(members.unwrap_or(0))?;
        for schema in rt.schemas() {
            let container = if std::ptr::eq(schema, rt.schema) {
                Some(doc)
            } else {
                doc.get(schema.id)
            };
            let Some(container) = container else { continue };
            for attr in schema.attributes.iter().filter(|a| a.multi_valued) {
                if let Some(Value::Array(values)) = container.get(attr.name) {
                    self.check_values(attr, values.len())?;
                }
            }
        }
        Ok(())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Normalise a POST or PUT body for resource type `rt`.
pub fn normalise(rt: &'static ResourceType, body: &Value) -> Result<Normalised, ScimError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("the request body must be a JSON object"))?;
    let mut notes = Notes::default();
    let mut doc = Map::new();
    let mut members = None;
    for (key, value) in obj {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if let Some(ext) = rt.extension(key) {
            set(
                &mut doc,
                ext.id,
                normalise_extension(ext, value, &mut notes)?,
            );
            continue;
        }
        let Some(attr) = core_attribute(rt, key) else {
            // Microsoft's "misspelled attribute" test expects 200 with the attribute dropped.
            notes.add("unknown attribute dropped");
            continue;
        };
        if is_members(rt, None, attr) {
            if !value.is_null() {
                members = Some(member_refs(attr, value, &mut notes)?);
            }
        } else if is_stored(attr) {
            set(
                &mut doc,
                attr.name,
                normalise_attr(attr, value, &mut notes)?,
            );
        }
    }
    schema_notes(rt, obj, &mut notes);
    let doc = Value::Object(doc);
    validate(rt, &doc)?;
    Ok(Normalised {
        doc,
        members,
        notes: notes.into_vec(),
    })
}

/// Check the required attributes of a stored document (after POST/PUT normalisation).
///
/// RFC 7643 §2.2 "required": a POST without `userName` is a 400 `invalidValue`. PATCH reports the
/// same condition as `mutability` (RFC 7644 §3.5.2), using [`missing_required`].
pub fn validate(rt: &'static ResourceType, doc: &Value) -> Result<(), ScimError> {
    match missing_required(rt, doc) {
        Some(name) => Err(ScimError::invalid_value(format!(
            "'{name}' is required and must not be empty"
        ))),
        None => Ok(()),
    }
}

/// The first required attribute (core or extension) that `doc` lacks, if any.
pub fn missing_required(rt: &'static ResourceType, doc: &Value) -> Option<&'static str> {
    let core = rt.schema.attributes.iter().map(|a| (doc.get(a.name), a));
    let ext = rt.extensions.iter().flat_map(|ext| {
        let obj = doc.get(ext.id);
        ext.attributes
            .iter()
            .map(move |a| (obj.and_then(|o| o.get(a.name)), a))
    });
    core.chain(ext)
        .find(|(v, a)| a.required && v.is_none_or(is_unassigned))
        .map(|(_, a)| a.name)
}

/// RFC 7643 §2.5: null and `[]` are "unassigned"; we add `""` and `{}` (Entra clears with `""`).
pub fn is_unassigned(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Whether an attribute's value belongs in the stored document: read-only ones are the server's
/// (`id`, `meta`, `groups`), write-only ones (`password`) are accepted and dropped.
pub fn is_stored(attr: &Attribute) -> bool {
    !matches!(
        attr.mutability,
        Mutability::ReadOnly | Mutability::WriteOnly
    )
}

/// Group `members`: never stored in the document; changes become member operations.
pub fn is_members(rt: &ResourceType, ext: Option<&Schema>, attr: &Attribute) -> bool {
    rt.kind == ResourceKind::Group && ext.is_none() && attr.name == "members"
}

/// Insert `value` under `name`, or remove the key when the value is unassigned.
pub fn set(obj: &mut Map<String, Value>, name: &str, value: Option<Value>) {
    match value {
        Some(v) => {
            obj.insert(name.to_string(), v);
        }
        None => {
            obj.shift_remove(name);
        }
    }
}

/// Normalise the whole value of an attribute: an array for multi-valued attributes, a single
/// value otherwise. `Ok(None)` means "unassigned".
pub fn normalise_attr(
    attr: &'static Attribute,
    value: &Value,
    notes: &mut Notes,
) -> Result<Option<Value>, ScimError> {
    if !attr.multi_valued {
        return normalise_one(attr, value, notes);
    }
    let elements = normalise_elements(attr, value, notes)?;
    Ok((!elements.is_empty()).then_some(Value::Array(elements)))
}

/// Normalise the values of a multi-valued attribute. A single value is wrapped (lenient reading
/// of `"emails": {…}`); elements that end up empty are dropped.
pub fn normalise_elements(
    attr: &'static Attribute,
    value: &Value,
    notes: &mut Notes,
) -> Result<Vec<Value>, ScimError> {
    let mut out = Vec::new();
    for item in items(value) {
        out.extend(normalise_one(attr, item, notes)?);
    }
    // RFC 7643 §2.4: "The primary attribute value "true" MUST appear no more than once."
    if out.iter().filter(|e| is_primary(e)).count() > 1 {
        return Err(ScimError::invalid_value(format!(
            "at most one value of '{}' may be primary",
            attr.name
        )));
    }
    Ok(out)
}

/// Normalise one value of `attr` (one element if multi-valued), by the attribute's type.
pub fn normalise_one(
    attr: &'static Attribute,
    value: &Value,
    notes: &mut Notes,
) -> Result<Option<Value>, ScimError> {
    if is_unassigned(value) {
        return Ok(None);
    }
    match attr.ty {
        AttrType::Complex => normalise_complex(attr, value, notes),
        AttrType::Boolean => normalise_bool(attr, value, notes).map(Some),
        AttrType::String | AttrType::Reference | AttrType::DateTime | AttrType::Binary => {
            match value {
                // NUL cannot round-trip through SQLite's text functions (LIKE, substr stop at
                // it) and no directory value needs it.
                Value::String(s) if s.contains('\0') => Err(ScimError::invalid_value(format!(
                    "{}: values cannot contain NUL characters",
                    attr.name
                ))),
                Value::String(_) => Ok(Some(value.clone())),
                _ => Err(wrong_type(attr, "a string", value)),
            }
        }
        AttrType::Integer if value.is_i64() || value.is_u64() => Ok(Some(value.clone())),
        AttrType::Decimal if value.is_number() => Ok(Some(value.clone())),
        AttrType::Integer | AttrType::Decimal => Err(wrong_type(attr, "a number", value)),
    }
}

/// Booleans: JSON booleans, or Entra's `"True"`/`"False"` strings in any case (its default
/// `active` mapping is a `Switch` expression that yields strings).
fn normalise_bool(attr: &Attribute, value: &Value, notes: &mut Notes) -> Result<Value, ScimError> {
    match value {
        Value::Bool(_) => Ok(value.clone()),
        Value::String(s) if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") => {
            notes.add("string boolean");
            Ok(Value::Bool(s.eq_ignore_ascii_case("true")))
        }
        _ => Err(wrong_type(attr, "a boolean", value)),
    }
}

/// Complex values: an object whose sub-attributes are normalised one by one. Also accepted:
/// a bare value for an attribute with a `value` sub-attribute (Entra's `manager` as a plain id,
/// Microsoft's Postman members `"value":"string id 1"`) and, for single-valued attributes, a
/// one-element array (the old docs' `manager: [{"$ref":…,"value":…}]`).
fn normalise_complex(
    attr: &'static Attribute,
    value: &Value,
    notes: &mut Notes,
) -> Result<Option<Value>, ScimError> {
    match value {
        Value::Object(obj) => {
            let mut out = Map::new();
            merge_subs(attr, &mut out, obj, notes)?;
            Ok(keep_complex(attr, &out).then_some(Value::Object(out)))
        }
        Value::Array(a) if !attr.multi_valued && a.len() == 1 => {
            notes.add("single value in array");
            normalise_complex(attr, &a[0], notes)
        }
        Value::String(_) | Value::Number(_) | Value::Bool(_) if attr.sub("value").is_some() => {
            notes.add(match attr.name {
                "manager" => "manager as string",
                "members" => "member as string",
                _ => "bare value for complex attribute",
            });
            let mut obj = Map::new();
            obj.insert("value".into(), value.clone());
            normalise_complex(attr, &Value::Object(obj), notes)
        }
        _ => Err(wrong_type(attr, "an object", value)),
    }
}

/// Write the sub-attributes in `parts` into `target`, normalised; an unassigned part removes
/// the sub-attribute. Unknown sub-attributes are dropped and read-only ones (`manager.displayName`,
/// members' `display`) ignored, as for top-level attributes.
pub fn merge_subs(
    attr: &'static Attribute,
    target: &mut Map<String, Value>,
    parts: &Map<String, Value>,
    notes: &mut Notes,
) -> Result<(), ScimError> {
    for (key, value) in parts {
        let Some(sub) = attr.sub(key) else {
            notes.add("unknown attribute dropped");
            continue;
        };
        if is_stored(sub) {
            let v = normalise_one(sub, value, notes).map_err(|e| e.at(attr.name))?;
            set(target, sub.name, v);
        }
    }
    Ok(())
}

/// Whether a complex value is worth keeping: not empty, and when the attribute has a `value`
/// sub-attribute, carrying one (an email without an address is noise; a manager without an id
/// is no manager).
pub fn keep_complex(attr: &Attribute, obj: &Map<String, Value>) -> bool {
    !obj.is_empty() && (attr.sub("value").is_none() || obj.contains_key("value"))
}

/// Normalise an extension object (`"urn:…:enterprise:2.0:User": {…}`).
pub fn normalise_extension(
    ext: &'static Schema,
    value: &Value,
    notes: &mut Notes,
) -> Result<Option<Value>, ScimError> {
    if is_unassigned(value) {
        return Ok(None);
    }
    let obj = value
        .as_object()
        .ok_or_else(|| ScimError::invalid_value(format!("'{}' must be an object", ext.id)))?;
    let mut out = Map::new();
    for (key, value) in obj {
        let Some(attr) = extension_attribute(ext, key, notes) else {
            continue;
        };
        if is_stored(attr) {
            set(&mut out, attr.name, normalise_attr(attr, value, notes)?);
        }
    }
    Ok((!out.is_empty()).then_some(Value::Object(out)))
}

/// Look up an attribute inside an extension object. `schemas` there is not RFC 7643, but
/// scim2-tester sends it (its quirk T3), so it is skipped rather than rejected.
pub fn extension_attribute(
    ext: &'static Schema,
    key: &str,
    notes: &mut Notes,
) -> Option<&'static Attribute> {
    if key.eq_ignore_ascii_case("schemas") {
        notes.add("schemas inside extension");
        return None;
    }
    let found = schema::find(ext.attributes, key);
    if found.is_none() {
        notes.add("unknown attribute dropped");
    }
    found
}

/// Read Group members: each needs a non-empty string `value`; `$ref` may be null or absent
/// (Entra sends `"$ref": null`); duplicates are kept for the store to dedup.
pub fn member_refs(
    attr: &'static Attribute,
    value: &Value,
    notes: &mut Notes,
) -> Result<Vec<MemberRef>, ScimError> {
    let mut out = Vec::new();
    for (i, item) in items(value).into_iter().enumerate() {
        let element =
            normalise_one(attr, item, notes).map_err(|e| e.at(format!("members[{i}]")))?;
        let text = |key: &str| -> Option<String> {
            element.as_ref()?.get(key)?.as_str().map(str::to_string)
        };
        let Some(value) = text("value") else {
            return Err(ScimError::invalid_value(format!(
                "members[{i}] needs a non-empty string 'value'"
            )));
        };
        out.push(MemberRef {
            value,
            kind: text("type"),
        });
    }
    Ok(out)
}

/// An RFC 3339 `date-time` (RFC 7643 §2.3.5 dateTime) as nanoseconds since the Unix epoch:
/// `YYYY-MM-DDTHH:MM:SS`, optionally `.` and 1 to 9 digits, then `Z` or `±HH:MM` (`T` and `Z`
/// in either case). `None` for anything else, including leap seconds and dates that do not
/// exist. Filters compare dateTime attributes by this instant, never as text: `…00.5Z` is later
/// than `…00Z` although it sorts before it. The store compiles filters with the same function,
/// so both mean the same.
pub fn date_time_nanos(text: &str) -> Option<i128> {
    let b = text.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let digits = b.get(from..from + len)?;
        digits.iter().try_fold(0i64, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0'))
        })
    };
    let at = |i: usize, c: u8| b.get(i).is_some_and(|x| x.eq_ignore_ascii_case(&c));
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(at(4, b'-') && at(7, b'-') && at(10, b'T') && at(13, b':') && at(16, b':')) {
        return None;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=month_days).contains(&day) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut i = 19;
    let mut nanos: i64 = 0;
    if at(i, b'.') {
        i += 1;
        let digits = b.get(i..).map_or(0, |rest| {
            rest.iter().take_while(|d| d.is_ascii_digit()).count()
        });
        if !(1..=9).contains(&digits) {
            return None;
        }
        nanos = num(i, digits)? * 10i64.pow(9 - digits as u32);
        i += digits;
    }
    let offset = if at(i, b'Z') && b.len() == i + 1 {
        0
    } else {
        let sign = match b.get(i) {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return None,
        };
        let (oh, om) = (num(i + 1, 2)?, num(i + 4, 2)?);
        if !at(i + 3, b':') || b.len() != i + 6 || oh > 23 || om > 59 {
            return None;
        }
        sign * (oh * 3600 + om * 60)
    };
    // Days since 1970-01-01 of the civil date (H. Hinnant's algorithm, years from March).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some(i128::from(seconds) * 1_000_000_000 + i128::from(nanos))
}

/// Whether an element of a multi-valued attribute is marked primary.
pub fn is_primary(element: &Value) -> bool {
    element.get("primary") == Some(&Value::Bool(true))
}

/// The values given for a multi-valued attribute: the array's items, or one bare value.
fn items(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(a) => a.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// A top-level (non-URN) body key: core attributes and the common `externalId`, `id`, `meta`.
fn core_attribute(rt: &'static ResourceType, key: &str) -> Option<&'static Attribute> {
    schema::find(rt.schema.attributes, key).or_else(|| schema::find(COMMON_ATTRIBUTES, key))
}

/// Record what the `schemas` list did not say: Entra lists unknown URIs (Microsoft's ADSCIM
/// Group URI) and omits custom extensions whose objects it sends. Both are accepted.
fn schema_notes(rt: &'static ResourceType, body: &Map<String, Value>, notes: &mut Notes) {
    let listed: Vec<&str> = body
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("schemas"))
        .and_then(|(_, v)| v.as_array())
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let known = |uri: &str| rt.schemas().any(|s| s.id.eq_ignore_ascii_case(uri));
    if listed.iter().any(|uri| !known(uri)) {
        notes.add("unknown schema URI");
    }
    let declared = |urn: &str| listed.iter().any(|uri| uri.eq_ignore_ascii_case(urn));
    if body
        .keys()
        .any(|k| rt.extension(k).is_some() && !declared(k))
    {
        notes.add("extension not in schemas");
    }
}

fn wrong_type(attr: &Attribute, expected: &str, got: &Value) -> ScimError {
    let got = match got {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    ScimError::invalid_value(format!("'{}' must be {expected}, not {got}", attr.name))
}

#[cfg(test)]
mod tests;
