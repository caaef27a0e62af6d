//! Filter → SQL: every filter `scim::filter::parse` accepts and `store::query::compile` compiles
//! must be SQL that SQLite accepts, on the real schema (migrations + `fold()`), with exactly as
//! many `?` as bound parameters, and must run without error. Uses a scratch database per
//! process (`fuzz_common::with_db`) holding two users and two groups with members.
//!
//! With `GROUPTALK_FUZZ_DIFF=1` it also compares the rows SQLite returns with the in-memory
//! reference semantics (`scim::filter::matches` on each stored document), for filters that only
//! name attributes kept in the document (not `id`, `meta`, `members`, `groups`). A difference is
//! reported as a crash; this mode is opt-in because some differences may be deliberate.
#![no_main]

use std::collections::BTreeSet;
use std::sync::OnceLock;

use fuzz_common::{with_db, RESOURCE_TYPES};
use grouptalk_scim::scim::filter::{self, Filter};
use grouptalk_scim::scim::path::AttrPath;
use grouptalk_scim::store::query;
use libfuzzer_sys::fuzz_target;

fn diff_mode() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("GROUPTALK_FUZZ_DIFF").is_some_and(|v| v == "1"))
}

/// Whether every path in the filter names something kept in the stored document.
fn only_document_attributes(f: &Filter) -> bool {
    let in_doc = |p: &AttrPath| {
        !["id", "meta", "members", "groups"]
            .iter()
            .any(|n| p.name.eq_ignore_ascii_case(n))
    };
    match f {
        Filter::Compare { path, .. } | Filter::Present(path) => in_doc(path),
        Filter::And(a, b) | Filter::Or(a, b) => {
            only_document_attributes(a) && only_document_attributes(b)
        }
        Filter::Not(a) => only_document_attributes(a),
        // Inside `[…]` the paths are sub-attributes of the element; only the outer one counts.
        Filter::ValuePath { path, .. } => in_doc(path),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(f) = filter::parse(text) else {
        return;
    };
    with_db(|db| {
        for rt in RESOURCE_TYPES {
            let Ok(compiled) = query::compile(&f, rt, &db.tenant) else {
                continue;
            };
            let sql = format!(
                "SELECT r.seq FROM resources r WHERE r.tenant = (SELECT key FROM tenants WHERE id = ?) AND r.kind = ? AND ({})",
                compiled.text
            );
            let mut stmt = match db.conn.prepare(&sql) {
                Ok(s) => s,
                Err(e) => panic!(
                    "SQLite rejects the compiled filter\n filter: {text:?}\n type: {}\n sql: {sql}\n error: {e}",
                    rt.name
                ),
            };
            assert_eq!(
                stmt.parameter_count(),
                compiled.params.len() + 2,
                "placeholders and parameters differ\n filter: {text:?}\n sql: {sql}"
            );
            let mut params: Vec<rusqlite::types::Value> =
                vec![db.tenant.to_string().into(), rt.name.to_string().into()];
            params.extend(compiled.params.iter().cloned());
            let rows = stmt
                .query_map(rusqlite::params_from_iter(params.iter()), |r| {
                    r.get::<_, i64>(0)
                })
                .and_then(|rows| rows.collect::<rusqlite::Result<BTreeSet<i64>>>());
            let got = match rows {
                Ok(rows) => rows,
                Err(e) => panic!(
                    "the compiled filter fails at run time\n filter: {text:?}\n type: {}\n sql: {sql}\n error: {e}",
                    rt.name
                ),
            };
            if diff_mode() && only_document_attributes(&f) {
                let want: BTreeSet<i64> = db
                    .resources
                    .iter()
                    .filter(|(_, kind, _)| *kind == rt.kind)
                    .filter(|(_, _, doc)| filter::matches(&f, rt, doc))
                    .map(|(seq, _, _)| *seq)
                    .collect();
                assert_eq!(
                    got, want,
                    "SQL and filter::matches disagree (left: SQL, right: in-memory)\n filter: {text:?}\n type: {}\n sql: {sql}",
                    rt.name
                );
            }
        }
    });
});
