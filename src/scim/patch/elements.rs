//! Value-level PATCH rules: what `add`, `replace` and `remove` do to a multi-valued attribute,
//! a single-valued complex attribute, and the elements a value filter or sub-attribute selects.
//!
//! Each function works on the object that holds the attribute (the document or an extension
//! object) and leaves it in stored form: no empty elements, at most one `primary`.
//!
//! Each takes time linear in the attribute's values and the operation's value: the values are
//! moved out of the document and back, never copied per operation, and duplicates are found by
//! hashing, never by comparing every new value with every old one.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::{OpKind, Target};
use crate::scim::error::ScimError;
use crate::scim::filter::{self, CompareOp, Filter, Literal};
use crate::scim::resource::{self, Notes};
use crate::scim::schema::Attribute;

/// A multi-valued attribute addressed without filter or sub-attribute.
pub(super) fn multi_op(
    c: &mut Map<String, Value>,
    kind: OpKind,
    attr: &'static Attribute,
    value: &Value,
    notes: &mut Notes,
) -> Result<(), ScimError> {
    let new = resource::normalise_elements(attr, value, notes)?;
    let mut elements = take_elements(c, attr);
    match kind {
        // RFC 7644 §3.5.2.1: "If the target location specifies a multi-valued attribute, a new
        // value is added to the attribute." Identical values are not added twice.
        OpKind::Add => {
            let mut index: HashMap<String, usize> = HashMap::with_capacity(elements.len());
            for (i, e) in elements.iter().enumerate() {
                index.entry(canonical(e)).or_insert(i);
            }
            let mut touched = Vec::new();
            for element in new {
                let at = *index.entry(canonical(&element)).or_insert(elements.len());
                if at == elements.len() {
                    elements.push(element);
                }
                touched.push(at);
            }
            fix_primary(&mut elements, &touched);
        }
        // §3.5.2.3: "If the target location is a multi-valued attribute and no filter is
        // specified, the attribute and all values are replaced."
        OpKind::Replace => elements = new,
        // §3.5.2.2 removes them all; a `value` list (Entra-style) removes just the listed
        // ones, and an empty list removes none.
        OpKind::Remove if value.is_null() => elements.clear(),
        OpKind::Remove => {
            let listed = Listed::new(&new);
            elements.retain(|e| !listed.candidates(e).any(|n| is_subset(attr, n, e)));
        }
    }
    put_elements(c, attr, elements);
    Ok(())
}

/// A single-valued complex attribute (`name`, `manager`) addressed as a whole.
///
/// RFC 7644 §3.5.2.3: "If the target location specifies a complex attribute, a set of
/// sub-attributes SHALL be specified in the value parameter, which replaces any existing values
/// or adds where an attribute did not previously exist." So `add` and `replace` both merge.
pub(super) fn complex_op(
    c: &mut Map<String, Value>,
    kind: OpKind,
    attr: &'static Attribute,
    value: &Value,
    notes: &mut Notes,
) -> Result<(), ScimError> {
    if kind == OpKind::Remove || (kind == OpKind::Replace && resource::is_unassigned(value)) {
        // Entra clears `manager` with `""`; `{"value":""}` clears it through the merge below,
        // since a manager without a `value` is not kept.
        c.shift_remove(attr.name);
        return Ok(());
    }
    let parts = match value {
        Value::Object(obj) => obj.clone(),
        // `manager` as a plain id, or in a one-element array: normalise to an object first.
        other => match resource::normalise_one(attr, other, notes)? {
            Some(Value::Object(obj)) => obj,
            _ => return Ok(()),
        },
    };
    let mut elements = take_elements(c, attr);
    let mut current = match elements.pop() {
        Some(Value::Object(obj)) => obj,
        _ => Map::new(),
    };
    resource::merge_subs(attr, &mut current, &parts, notes)?;
    put_elements(c, attr, vec![Value::Object(current)]);
    Ok(())
}

/// A complex attribute narrowed by a value filter and/or a sub-attribute:
/// `emails[type eq "work"]`, `phoneNumbers[type eq "mobile"].value`, `name.givenName`,
/// `emails.value`. Single-valued complex attributes are treated as a list of at most one.
pub(super) fn elements_op(
    c: &mut Map<String, Value>,
    kind: OpKind,
    t: &Target,
    value: &Value,
    notes: &mut Notes,
) -> Result<(), ScimError> {
    let mut elements = take_elements(c, t.attr);
    let matched: Vec<usize> = (0..elements.len())
        .filter(|&i| {
            t.filter
                .is_none_or(|f| filter::matches_element(f, t.attr, &elements[i]))
        })
        .collect();
    let touched = match kind {
        OpKind::Remove => {
            remove_matched(&mut elements, &matched, t.sub);
            Vec::new()
        }
        _ if matched.is_empty() => create_element(&mut elements, t, value, notes)?,
        _ => set_matched(&mut elements, &matched, kind, t, value, notes)?,
    };
    fix_primary(&mut elements, &touched);
    put_elements(c, t.attr, elements);
    Ok(())
}

/// RFC 7644 §3.5.2.2: a filter removes the matching values; with a sub-attribute only that
/// sub-attribute goes (elements left without `value` are dropped in `put_elements`). A filter
/// that matches nothing changes nothing and still succeeds (Entra retries removals).
fn remove_matched(elements: &mut Vec<Value>, matched: &[usize], sub: Option<&Attribute>) {
    match sub {
        None => {
            let gone: HashSet<usize> = matched.iter().copied().collect();
            let mut i = 0;
            elements.retain(|_| {
                i += 1;
                !gone.contains(&(i - 1))
            });
        }
        Some(sub) => {
            for &i in matched {
                if let Some(obj) = elements.get_mut(i).and_then(Value::as_object_mut) {
                    obj.shift_remove(sub.name);
                }
            }
        }
    }
}

/// `add`/`replace` on matching elements. With a sub-attribute it is set on every match; with
/// only a filter, §3.5.2.3 says "all matching record values SHALL be replaced" (the filter's
/// `eq` terms are kept so the element still matches), while `add` merges into them.
fn set_matched(
    elements: &mut [Value],
    matched: &[usize],
    kind: OpKind,
    t: &Target,
    value: &Value,
    notes: &mut Notes,
) -> Result<Vec<usize>, ScimError> {
    let parts = element_parts(t, value, notes)?;
    for &i in matched {
        let Some(slot) = elements.get_mut(i) else {
            continue;
        };
        let mut obj = match (slot.take(), kind, t.sub) {
            (Value::Object(o), OpKind::Add, _) | (Value::Object(o), _, Some(_)) => o,
            _ => seed_from_filter(t.filter).unwrap_or_default(),
        };
        resource::merge_subs(t.attr, &mut obj, &parts, notes)?;
        *slot = Value::Object(obj);
    }
    Ok(matched.to_vec())
}

/// No element matched: Entra (`docs/entra-id-behaviour.md` "Update (PATCH)") expects
/// `Add`/`Replace` on `phoneNumbers[type eq "mobile"].value` to create
/// `{"type":"mobile","value":…}`. The element is built from the filter's `eq` terms; a filter
/// that is not made of `eq` terms cannot say what to create, so that is RFC 7644's `noTarget`.
fn create_element(
    elements: &mut Vec<Value>,
    t: &Target,
    value: &Value,
    notes: &mut Notes,
) -> Result<Vec<usize>, ScimError> {
    if resource::is_unassigned(value) {
        return Ok(Vec::new()); // Clearing what is not there.
    }
    let seed = match t.filter {
        None => Map::new(),
        Some(f) => {
            notes.add("filtered add created element");
            seed_from_filter(Some(f)).ok_or_else(|| {
                ScimError::no_target(format!("no value of '{}' matches the filter", t.attr.name))
            })?
        }
    };
    let mut obj = Map::new();
    resource::merge_subs(t.attr, &mut obj, &seed, notes)?;
    resource::merge_subs(t.attr, &mut obj, &element_parts(t, value, notes)?, notes)?;
    elements.push(Value::Object(obj));
    Ok(vec![elements.len() - 1])
}

/// The sub-attributes an `add`/`replace` writes into an element: `{sub: value}` for a
/// sub-attribute path, else the value object itself (a bare value means `{"value": …}`).
fn element_parts(
    t: &Target,
    value: &Value,
    notes: &mut Notes,
) -> Result<Map<String, Value>, ScimError> {
    if let Some(sub) = t.sub {
        let mut parts = Map::new();
        parts.insert(sub.name.to_string(), value.clone());
        return Ok(parts);
    }
    match value {
        Value::Object(obj) => Ok(obj.clone()),
        // The element wrapped in a list, as some clients send for `emails[…]`.
        Value::Array(items) if items.len() == 1 => element_parts(t, &items[0], notes),
        other => match resource::normalise_one(t.attr, other, notes)? {
            Some(Value::Object(obj)) => Ok(obj),
            _ => Ok(Map::new()),
        },
    }
}

/// The element a filter of `eq` terms joined by `and` describes: `type eq "mobile"` →
/// `{"type":"mobile"}`. `None` when the filter has any other shape.
fn seed_from_filter(f: Option<&Filter>) -> Option<Map<String, Value>> {
    let mut seed = Map::new();
    fn walk(f: &Filter, seed: &mut Map<String, Value>) -> Option<()> {
        match f {
            Filter::And(a, b) => walk(a, seed).and_then(|_| walk(b, seed)),
            Filter::Compare {
                path,
                op: CompareOp::Eq,
                value,
            } if path.urn.is_none() && path.sub.is_none() => {
                let v = match value {
                    Literal::String(s) => Value::String(s.clone()),
                    Literal::Number(n) => Value::Number(n.clone()),
                    Literal::Bool(b) => Value::Bool(*b),
                    Literal::Null => return None,
                };
                seed.insert(path.name.clone(), v);
                Some(())
            }
            _ => None,
        }
    }
    walk(f?, &mut seed)?;
    Some(seed)
}

/// RFC 7643 §2.4: "The primary attribute value "true" MUST appear no more than once." When an
/// operation marks an element primary, the others that were primary are set to false.
fn fix_primary(elements: &mut [Value], touched: &[usize]) {
    let Some(&winner) = touched
        .iter()
        .rev()
        .find(|&&i| elements.get(i).is_some_and(resource::is_primary))
    else {
        return;
    };
    for (i, e) in elements.iter_mut().enumerate() {
        if i != winner && resource::is_primary(e) {
            if let Some(obj) = e.as_object_mut() {
                obj.insert("primary".into(), Value::Bool(false));
            }
        }
    }
}

/// The values of a complex attribute as a list: the array of a multi-valued attribute, or the
/// single object (if any) of a single-valued one. Moved out, not copied: the key keeps its place
/// (holding null) until `put_elements` writes the list back or removes it. The whole document
/// is a working copy (`apply`), so an operation that fails after this changes nothing.
fn take_elements(c: &mut Map<String, Value>, attr: &Attribute) -> Vec<Value> {
    match c.get_mut(attr.name).map(Value::take) {
        Some(Value::Array(a)) => a,
        Some(v @ Value::Object(_)) => vec![v],
        _ => Vec::new(),
    }
}

/// Store a list back, dropping elements that are empty or lost their `value`; an empty list
/// leaves the attribute unassigned.
fn put_elements(c: &mut Map<String, Value>, attr: &Attribute, mut elements: Vec<Value>) {
    elements.retain(|e| {
        e.as_object()
            .is_some_and(|o| resource::keep_complex(attr, o))
    });
    let value = match (attr.multi_valued, elements.pop()) {
        (_, None) => None,
        (false, Some(one)) => Some(one),
        (true, Some(last)) => {
            elements.push(last);
            Some(Value::Array(elements))
        }
    };
    resource::set(c, attr.name, value);
}

/// Whether every sub-attribute given in `listed` equals the one in `element` (string compares
/// follow the sub-attribute's `caseExact`). Used for removal by a `value` list.
fn is_subset(attr: &Attribute, listed: &Value, element: &Value) -> bool {
    let (Some(listed), Some(element)) = (listed.as_object(), element.as_object()) else {
        return listed == element;
    };
    listed.iter().all(|(k, v)| {
        let case_exact = attr.sub(k).is_none_or(|s| s.case_exact);
        match (v, element.get(k)) {
            (Value::String(a), Some(Value::String(b))) if !case_exact => a.eq_ignore_ascii_case(b),
            (a, b) => Some(a) == b,
        }
    })
}

/// A value's identity for finding duplicates: its JSON with object keys sorted, so it is equal
/// for two values exactly when they are `==` (object key order does not matter to `==`).
fn canonical(v: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Object(obj) => {
                let mut keys: Vec<&String> = obj.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(&Value::String(k.clone()), out);
                    out.push(':');
                    if let Some(inner) = obj.get(k) {
                        write(inner, out);
                    }
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            // 0.0 and -0.0 are `==` but print differently.
            Value::Number(n) if n.as_f64() == Some(0.0) && n.is_f64() => out.push_str("0.0"),
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(v, &mut out);
    out
}

/// The values listed for removal, found by their `value` sub-attribute: an element is compared
/// only with the listed values whose `value` could match it (ASCII case folded, as
/// `is_subset` compares at most), and with those that list no `value` at all.
struct Listed<'a> {
    by_value: HashMap<String, Vec<&'a Value>>,
    without_value: Vec<&'a Value>,
}

impl<'a> Listed<'a> {
    fn new(listed: &'a [Value]) -> Listed<'a> {
        let mut by_value: HashMap<String, Vec<&Value>> = HashMap::new();
        let mut without_value = Vec::new();
        for n in listed {
            match n.get("value").and_then(Value::as_str) {
                Some(v) => by_value.entry(v.to_ascii_lowercase()).or_default().push(n),
                None => without_value.push(n),
            }
        }
        Listed {
            by_value,
            without_value,
        }
    }

    fn candidates<'s>(&'s self, element: &Value) -> impl Iterator<Item = &'a Value> + 's {
        let same_value = element
            .get("value")
            .and_then(Value::as_str)
            .and_then(|v| self.by_value.get(&v.to_ascii_lowercase()))
            .into_iter()
            .flatten();
        same_value.chain(self.without_value.iter()).copied()
    }
}
