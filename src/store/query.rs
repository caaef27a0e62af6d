//! Filter AST → parameterized SQL over the `resources` table (alias `r`).
//!
//! User input only ever becomes a bound parameter; the SQL text is built from this file's
//! constants and from attribute names taken from the static schema table. Attributes that are
//! filtered often (id, externalId, userName, displayName, emails, phoneNumbers, members) map to
//! indexed columns or side tables; everything else is read from the JSON document with
//! `json_extract`/`json_each`. Case-insensitive attributes compare `fold()`ed values, the same
//! Unicode lower-casing the `*_key` columns are written with. dateTime attributes compare as
//! instants (`compare_instant`), never as their RFC 3339 text.

use rusqlite::types::Value as SqlValue;

use crate::domain::TenantId;
use crate::scim::error::ScimError;
use crate::scim::filter::{CompareOp, Filter, Literal};
use crate::scim::path::AttrPath;
use crate::scim::resource::date_time_nanos;
use crate::scim::schema::{AttrType, Attribute, Resolved, ResourceKind, ResourceType};

/// A WHERE fragment and its parameters, in order.
#[derive(Debug, Default)]
pub struct Sql {
    pub text: String,
    pub params: Vec<SqlValue>,
}

impl Sql {
    fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }
    fn bind(&mut self, v: SqlValue) {
        self.text.push('?');
        self.params.push(v);
    }
}

/// Lower-casing used for every case-insensitive comparison and `*_key` column.
pub fn fold(s: &str) -> String {
    s.to_lowercase()
}

/// Escape `%`, `_` and the escape character itself for a LIKE pattern (ESCAPE '\').
pub fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Whether `filter` narrows the result to at most one row through a unique index (`id`, a
/// user's `userName`, a group's `displayName`, compared with `eq`), possibly combined with
/// `and`: such a query costs one index probe whatever the directory size, so the server may run
/// it without a thread hop (`Store::read_point`). `externalId` is indexed but not unique: any
/// number of resources may share one, so it is not a point.
pub fn is_point_lookup(filter: &Filter, rt: &'static ResourceType) -> bool {
    match filter {
        Filter::And(a, b) => is_point_lookup(a, rt) || is_point_lookup(b, rt),
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value: Literal::String(_),
        } => match path.resolve(rt) {
            Ok(r) if r.extension.is_none() && r.sub.is_none() => match r.attr.name {
                "id" => true,
                "userName" => rt.kind == ResourceKind::User,
                "displayName" => rt.kind == ResourceKind::Group,
                _ => false,
            },
            _ => false,
        },
        _ => false,
    }
}

/// Compile `filter` for resources of type `rt` of tenant `tenant_id`.
pub fn compile(
    filter: &Filter,
    rt: &'static ResourceType,
    tenant_id: &TenantId,
) -> Result<Sql, ScimError> {
    let mut sql = Sql::default();
    Compiler { rt, tenant_id }.filter(filter, &mut sql)?;
    Ok(sql)
}

struct Compiler<'a> {
    rt: &'static ResourceType,
    tenant_id: &'a TenantId,
}

/// An SQL expression yielding an attribute's value, and how to compare it.
struct Operand {
    expr: String,
    /// Compare case-insensitively: `expr` already yields folded text, fold the literal too.
    folded: bool,
    ty: AttrType,
}

impl Compiler<'_> {
    fn filter(&self, f: &Filter, sql: &mut Sql) -> Result<(), ScimError> {
        match f {
            Filter::And(a, b) | Filter::Or(a, b) => {
                sql.push("(");
                self.filter(a, sql)?;
                sql.push(if matches!(f, Filter::And(..)) {
                    " AND "
                } else {
                    " OR "
                });
                self.filter(b, sql)?;
                sql.push(")");
            }
            // A comparison on an absent attribute is NULL in SQL but "no match" in SCIM, so
            // `not` must see false, not NULL: `not (title eq "x")` includes users with no title.
            Filter::Not(inner) => {
                sql.push("NOT COALESCE((");
                self.filter(inner, sql)?;
                sql.push("), 0)");
            }
            Filter::Present(path) => self.attribute(path, None, sql)?,
            Filter::Compare { path, op, value } => self.attribute(path, Some((*op, value)), sql)?,
            Filter::ValuePath { path, filter } => self.value_path(path, filter, sql)?,
        }
        Ok(())
    }

    fn resolve(&self, path: &AttrPath) -> Result<Resolved, ScimError> {
        path.resolve(self.rt).map_err(|_| {
            ScimError::invalid_filter(format!("'{path}' is not an attribute of {}", self.rt.name))
        })
    }

    /// `path op value` or `path pr` (when `cmp` is None) on a single attribute path.
    fn attribute(
        &self,
        path: &AttrPath,
        cmp: Option<(CompareOp, &Literal)>,
        sql: &mut Sql,
    ) -> Result<(), ScimError> {
        let r = self.resolve(path)?;
        if r.attr.multi_valued {
            // `emails.value eq "x"` ≡ `emails[value eq "x"]`; `emails eq "x"` compares `value`.
            let sub = r.sub.map(|s| s.name).unwrap_or("value");
            let base = AttrPath {
                sub: None,
                ..path.clone()
            };
            // `eq null` on a multi-valued attribute: no element has a value.
            let present = Filter::Present(AttrPath::new(None, sub, None));
            match cmp {
                Some((CompareOp::Eq, Literal::Null)) => {
                    sql.push("NOT COALESCE((");
                    self.value_path(&base, &present, sql)?;
                    sql.push("), 0)");
                    return Ok(());
                }
                Some((CompareOp::Ne, Literal::Null)) => {
                    return self.value_path(&base, &present, sql)
                }
                _ => {}
            }
            // `ne` on a multi-valued attribute is the negation of `eq` over all its values
            // ("no email is x"), not "some email is not x".
            if let Some((CompareOp::Ne, value)) = cmp {
                let eq = Filter::Compare {
                    path: AttrPath::new(None, sub, None),
                    op: CompareOp::Eq,
                    value: value.clone(),
                };
                sql.push("NOT COALESCE((");
                self.value_path(&base, &eq, sql)?;
                sql.push("), 0)");
                return Ok(());
            }
            let inner = match cmp {
                Some((op, value)) => Filter::Compare {
                    path: AttrPath::new(None, sub, None),
                    op,
                    value: value.clone(),
                },
                None => Filter::Present(AttrPath::new(None, sub, None)),
            };
            return self.value_path(&base, &inner, sql);
        }
        let operand = self.scalar_operand(&r)?;
        compare(&operand, cmp, sql)
    }

    /// The SQL expression of a single-valued attribute (or sub-attribute of one).
    fn scalar_operand(&self, r: &Resolved) -> Result<Operand, ScimError> {
        let target = r.target();
        let name = r.attr.name;
        let col = |expr: &str, folded: bool| Operand {
            expr: expr.to_string(),
            folded,
            ty: target.ty,
        };
        if r.extension.is_none() {
            match (name, r.sub.map(|s| s.name)) {
                ("id", None) => return Ok(col("r.id", false)),
                ("externalId", None) => return Ok(col("r.external_id", false)),
                ("userName", None) if self.rt.kind == ResourceKind::User => {
                    return Ok(col("r.user_name_key", true))
                }
                ("displayName", None) => return Ok(col("r.display_name_key", true)),
                ("active", None) if self.rt.kind == ResourceKind::User => {
                    return Ok(col("r.active", false))
                }
                ("meta", Some("created")) => return Ok(col("r.created", false)),
                ("meta", Some("lastModified")) => return Ok(col("r.last_modified", false)),
                ("meta", Some("resourceType")) => return Ok(col("r.kind", false)),
                ("meta", _) => {
                    return Err(ScimError::invalid_filter(format!(
                        "meta.{} cannot be filtered",
                        target.name
                    )))
                }
                _ => {}
            }
        }
        if target.ty == AttrType::Complex {
            return Err(ScimError::invalid_filter(format!(
                "'{name}' is a complex attribute; filter on one of its sub-attributes"
            )));
        }
        let expr = format!("json_extract(r.doc, '{}')", json_path(r));
        Ok(json_operand(expr, target))
    }

    /// `attr[filter]` on a multi-valued attribute: some element matches.
    fn value_path(&self, path: &AttrPath, inner: &Filter, sql: &mut Sql) -> Result<(), ScimError> {
        let r = self.resolve(path)?;
        if !r.attr.multi_valued || r.sub.is_some() {
            return Err(ScimError::invalid_filter(format!(
                "'{path}' is not a multi-valued attribute"
            )));
        }
        match (self.rt.kind, r.extension.is_none(), r.attr.name) {
            (ResourceKind::User, true, "emails" | "phoneNumbers") if side_table_covers(inner) => {
                // The side table has no tenant column: the outer query keeps the tenant.
                sql.push("r.seq IN (SELECT mv.owner_seq FROM multi_values mv WHERE mv.attr = ");
                sql.bind(SqlValue::Text(r.attr.name.to_string()));
                sql.push(" AND ");
                self.element(inner, r.attr, ElementSource::SideTable, sql)?;
                sql.push(")");
            }
            (ResourceKind::Group, true, "members") => {
                sql.push("r.seq IN (SELECT m.group_seq FROM resources mr JOIN members m ON m.member_seq = mr.seq WHERE mr.tenant = (SELECT key FROM tenants WHERE id = ");
                sql.bind(SqlValue::Text(self.tenant_id.to_string()));
                sql.push(") AND ");
                self.element(inner, r.attr, ElementSource::Members, sql)?;
                sql.push(")");
            }
            (ResourceKind::User, true, "groups") => {
                sql.push("r.seq IN (SELECT m.member_seq FROM resources mr JOIN members m ON m.group_seq = mr.seq WHERE mr.tenant = (SELECT key FROM tenants WHERE id = ");
                sql.bind(SqlValue::Text(self.tenant_id.to_string()));
                sql.push(") AND ");
                self.element(inner, r.attr, ElementSource::Members, sql)?;
                sql.push(")");
            }
            _ => {
                sql.push(&format!(
                    "EXISTS (SELECT 1 FROM json_each(r.doc, '{}') je WHERE ",
                    json_path(&r)
                ));
                self.element(inner, r.attr, ElementSource::Json, sql)?;
                sql.push(")");
            }
        }
        Ok(())
    }

    /// The inside of a value path, over one element of `attr` from `source`.
    fn element(
        &self,
        f: &Filter,
        attr: &'static Attribute,
        source: ElementSource,
        sql: &mut Sql,
    ) -> Result<(), ScimError> {
        match f {
            Filter::And(a, b) | Filter::Or(a, b) => {
                sql.push("(");
                self.element(a, attr, source, sql)?;
                sql.push(if matches!(f, Filter::And(..)) {
                    " AND "
                } else {
                    " OR "
                });
                self.element(b, attr, source, sql)?;
                sql.push(")");
                Ok(())
            }
            Filter::Not(inner) => {
                sql.push("NOT COALESCE((");
                self.element(inner, attr, source, sql)?;
                sql.push("), 0)");
                Ok(())
            }
            Filter::ValuePath { .. } => {
                Err(ScimError::invalid_filter("value paths cannot be nested"))
            }
            Filter::Present(p) => {
                let operand = element_operand(p, attr, source)?;
                compare(&operand, None, sql)
            }
            Filter::Compare { path, op, value } => {
                let operand = element_operand(path, attr, source)?;
                compare(&operand, Some((*op, value)), sql)
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum ElementSource {
    /// `multi_values mv` rows (emails, phoneNumbers: value and type only).
    SideTable,
    /// `members m` joined to the member resource `mr`.
    Members,
    /// `json_each(...) je` over the document array.
    Json,
}

/// True when every path in the value filter is `value` or `type` (what the side table holds).
fn side_table_covers(f: &Filter) -> bool {
    match f {
        Filter::And(a, b) | Filter::Or(a, b) => side_table_covers(a) && side_table_covers(b),
        Filter::Not(a) => side_table_covers(a),
        Filter::Present(p) | Filter::Compare { path: p, .. } => {
            p.urn.is_none()
                && p.sub.is_none()
                && (p.name.eq_ignore_ascii_case("value") || p.name.eq_ignore_ascii_case("type"))
        }
        Filter::ValuePath { .. } => false,
    }
}

fn element_operand(
    path: &AttrPath,
    attr: &'static Attribute,
    source: ElementSource,
) -> Result<Operand, ScimError> {
    if path.urn.is_some() || path.sub.is_some() {
        return Err(ScimError::invalid_filter(format!(
            "'{path}' inside [] must name a sub-attribute of {}",
            attr.name
        )));
    }
    let sub = attr.sub(&path.name).ok_or_else(|| {
        ScimError::invalid_filter(format!(
            "'{}' is not a sub-attribute of {}",
            path.name, attr.name
        ))
    })?;
    let op = |expr: &str, folded: bool| Operand {
        expr: expr.to_string(),
        folded,
        ty: sub.ty,
    };
    Ok(match (source, sub.name) {
        (ElementSource::SideTable, "value") => op("mv.value_key", true),
        (ElementSource::SideTable, _) => op("mv.type_key", true),
        (ElementSource::Members, "value") => op("mr.id", false),
        (ElementSource::Members, "type") => op("mr.kind", false),
        (ElementSource::Members, "display") => op("mr.display_name_key", true),
        (ElementSource::Members, other) => {
            return Err(ScimError::invalid_filter(format!(
                "{}.{other} cannot be filtered",
                attr.name
            )))
        }
        (ElementSource::Json, _) if attr.sub_attributes.is_empty() => {
            json_operand("je.value".into(), attr)
        }
        (ElementSource::Json, name) => {
            json_operand(format!("json_extract(je.value, '$.\"{name}\"')"), sub)
        }
    })
}

fn json_operand(expr: String, attr: &Attribute) -> Operand {
    let folded = !attr.case_exact && is_textual(attr.ty);
    let expr = if folded {
        format!("fold({expr})")
    } else {
        expr
    };
    Operand {
        expr,
        folded,
        ty: attr.ty,
    }
}

fn is_textual(ty: AttrType) -> bool {
    matches!(
        ty,
        AttrType::String | AttrType::Reference | AttrType::Binary
    )
}

/// The JSON path of an attribute in the stored document: `$."name"."givenName"` or
/// `$."urn:…:User"."costCenter"`. Names come from the schema table, never from the request.
fn json_path(r: &Resolved) -> String {
    let mut p = String::from("$");
    if let Some(ext) = r.extension {
        p.push_str(&format!(".\"{}\"", ext.id));
    }
    p.push_str(&format!(".\"{}\"", r.attr.name));
    if let Some(sub) = r.sub {
        p.push_str(&format!(".\"{}\"", sub.name));
    }
    p
}

/// Emit the comparison of `operand` with a literal (or the `pr` test when `cmp` is None).
fn compare(
    operand: &Operand,
    cmp: Option<(CompareOp, &Literal)>,
    sql: &mut Sql,
) -> Result<(), ScimError> {
    let e = &operand.expr;
    let Some((op, lit)) = cmp else {
        sql.push(&format!("({e} IS NOT NULL AND {e} <> '')"));
        return Ok(());
    };
    if *lit == Literal::Null {
        let test = match op {
            CompareOp::Eq => "IS NULL",
            CompareOp::Ne => "IS NOT NULL",
            _ => {
                return Err(ScimError::invalid_filter(
                    "null can only be compared with eq or ne",
                ))
            }
        };
        sql.push(&format!("{e} {test}"));
        return Ok(());
    }
    if let (AttrType::DateTime, Literal::String(text)) = (operand.ty, lit) {
        if let (false, Some(nanos)) = (
            matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew),
            date_time_nanos(text),
        ) {
            return compare_instant(e, op, nanos, sql);
        }
    }
    let value = literal_value(operand, lit)?;
    match op {
        CompareOp::Eq => {
            sql.push(&format!("{e} = "));
            sql.bind(value);
        }
        CompareOp::Ne => {
            sql.push(&format!("({e} IS NULL OR {e} <> "));
            sql.bind(value);
            sql.push(")");
        }
        CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le => {
            if operand.ty == AttrType::Boolean {
                return Err(ScimError::invalid_filter(
                    "booleans can only be compared with eq or ne",
                ));
            }
            let sym = match op {
                CompareOp::Gt => ">",
                CompareOp::Ge => ">=",
                CompareOp::Lt => "<",
                _ => "<=",
            };
            sql.push(&format!("{e} {sym} "));
            sql.bind(value);
        }
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => {
            let SqlValue::Text(text) = value else {
                return Err(ScimError::invalid_filter(
                    "co, sw and ew need a string value",
                ));
            };
            if operand.folded {
                let esc = like_escape(&text);
                let pattern = match op {
                    CompareOp::Co => format!("%{esc}%"),
                    CompareOp::Sw => format!("{esc}%"),
                    _ => format!("%{esc}"),
                };
                sql.push(&format!("{e} LIKE "));
                sql.bind(SqlValue::Text(pattern));
                sql.push(" ESCAPE '\\'");
            } else {
                // Case-exact: LIKE would ignore ASCII case, so compare substrings instead.
                let len = text.chars().count() as i64;
                match op {
                    CompareOp::Co => {
                        sql.push(&format!("instr({e}, "));
                        sql.bind(SqlValue::Text(text));
                        sql.push(") > 0");
                    }
                    CompareOp::Sw => {
                        sql.push(&format!("substr({e}, 1, {len}) = "));
                        sql.bind(SqlValue::Text(text));
                    }
                    _ if len == 0 => sql.push(&format!("{e} IS NOT NULL")),
                    _ => {
                        sql.push(&format!("substr({e}, -{len}) = "));
                        sql.bind(SqlValue::Text(text));
                    }
                }
            }
        }
    }
    Ok(())
}

/// `eq`, `ne`, `gt`, `ge`, `lt`, `le` of a dateTime with an RFC 3339 date-time (`nanos`, read
/// by `resource::date_time_nanos`, as the in-memory evaluation reads it): as instants, in whole
/// milliseconds — what the server stores, as RFC 3339 text whose fraction has 0 to 3 digits, so
/// that its text order is not its time order (`…00.5Z` sorts before `…00Z`). The stored text
/// becomes milliseconds with SQLite's `unixepoch(…, 'subsec')`; a literal with finer digits is
/// compared exactly. No index covers these columns, so none is lost. Any other literal (a date
/// alone, `"2026-01-06"`) is still compared as text, a prefix of the stored form.
fn compare_instant(e: &str, op: CompareOp, nanos: i128, sql: &mut Sql) -> Result<(), ScimError> {
    let floor = i64::try_from(nanos.div_euclid(1_000_000))
        .map_err(|_| ScimError::invalid_filter("dateTime out of range"))?;
    let exact = nanos.rem_euclid(1_000_000) == 0;
    let ceil = if exact {
        floor
    } else {
        floor.saturating_add(1)
    };
    let ms = format!("CAST(round(unixepoch({e}, 'subsec') * 1000) AS INTEGER)");
    let (sym, bound) = match op {
        // A literal between two milliseconds equals no stored time, and differs from all.
        CompareOp::Eq if !exact => {
            sql.push("0");
            return Ok(());
        }
        CompareOp::Ne if !exact => {
            sql.push("1");
            return Ok(());
        }
        CompareOp::Eq => ("=", floor),
        CompareOp::Ne => {
            sql.push(&format!("({e} IS NULL OR {ms} <> "));
            sql.bind(SqlValue::Integer(floor));
            sql.push(")");
            return Ok(());
        }
        CompareOp::Gt => (">", floor),
        CompareOp::Ge => (">=", ceil),
        CompareOp::Lt => ("<", ceil),
        _ => ("<=", floor),
    };
    sql.push(&format!("{ms} {sym} "));
    sql.bind(SqlValue::Integer(bound));
    Ok(())
}

/// The bound value for a literal compared with `operand`, coerced to the attribute's type.
fn literal_value(operand: &Operand, lit: &Literal) -> Result<SqlValue, ScimError> {
    Ok(match (operand.ty, lit) {
        (AttrType::Boolean, Literal::Bool(b)) => SqlValue::Integer(*b as i64),
        // Entra sends booleans as strings elsewhere; accept "true"/"false" here as well.
        (AttrType::Boolean, Literal::String(s)) if s.eq_ignore_ascii_case("true") => {
            SqlValue::Integer(1)
        }
        (AttrType::Boolean, Literal::String(s)) if s.eq_ignore_ascii_case("false") => {
            SqlValue::Integer(0)
        }
        (AttrType::Boolean, _) => {
            return Err(ScimError::invalid_filter(
                "a boolean attribute needs true or false",
            ))
        }
        (_, Literal::String(s)) if s.contains('\0') => {
            return Err(ScimError::invalid_filter(
                "filter values cannot contain NUL characters",
            ))
        }
        (ty, Literal::String(s)) if is_textual(ty) || ty == AttrType::DateTime => {
            SqlValue::Text(if operand.folded { fold(s) } else { s.clone() })
        }
        // An unquoted number against a string attribute (Entra's `externalId eq 12345`)
        // compares as its text, as `filter::matches` does.
        (ty, Literal::Number(n)) if is_textual(ty) => SqlValue::Text(n.to_string()),
        (AttrType::Integer | AttrType::Decimal, Literal::Number(n)) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().unwrap_or(0.0)),
        },
        (_, Literal::Null) => SqlValue::Null,
        (ty, lit) => {
            return Err(ScimError::invalid_filter(format!(
                "{lit} cannot be compared with a {} attribute",
                ty.as_str()
            )))
        }
    })
}

/// An ORDER BY expression for `sortBy` (RFC 7644 §3.4.2.3). Multi-valued attributes sort by
/// their first element's value.
pub fn sort_expression(path: &AttrPath, rt: &'static ResourceType) -> Result<String, ScimError> {
    let r = path.resolve(rt).map_err(|_| {
        ScimError::invalid_value(format!(
            "sortBy: '{path}' is not an attribute of {}",
            rt.name
        ))
    })?;
    if r.attr.multi_valued {
        let sub = r.sub.map(|s| s.name).unwrap_or("value");
        let mut base = json_path(&Resolved { sub: None, ..r });
        base.push_str(&format!("[0].\"{sub}\""));
        return Ok(format!("fold(json_extract(r.doc, '{base}'))"));
    }
    // A sort key never reaches the member sub-selects, the only place the tenant is bound.
    let no_tenant = TenantId::new("");
    let c = Compiler {
        rt,
        tenant_id: &no_tenant,
    };
    let op = c
        .scalar_operand(&r)
        .map_err(|e| ScimError::invalid_value(format!("sortBy: {}", e.detail)))?;
    Ok(op.expr)
}
