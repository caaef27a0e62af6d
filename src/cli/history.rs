//! `history`: every request that touched a user or group — when, what, by which credential,
//! what Entra's quirks we normalised — and what each write changed (docs/trash-and-history.md).

use std::io::Write;

use anyhow::bail;
use clap::Args;
use serde_json::json;

use super::log::{json_line, printable};
use crate::config::Config;
use crate::store::history;

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// A user or group id, a userName or a group displayName (live or in the trash)
    pub id_or_name: String,
    #[arg(long, value_name = "NAME")]
    pub tenant: Option<String>,
    /// One JSON object: {"object": {...}, "events": [...]}
    #[arg(long)]
    pub json: bool,
}

pub fn run(config: &Config, args: HistoryArgs) -> anyhow::Result<()> {
    let conn = super::open_db(config)?;
    let tenant = super::tenant_option(&conn, args.tenant.as_deref())?;
    let found = history::resolve(&conn, tenant.as_ref(), &args.id_or_name)?;
    let object = match found.as_slice() {
        [] => bail!(
            "no user or group {:?} (id, userName or displayName) is known{}",
            printable(&args.id_or_name),
            args.tenant
                .as_deref()
                .map(|t| format!(" in tenant {t:?}"))
                .unwrap_or_default()
        ),
        [one] => one.clone(),
        many => {
            let list: Vec<String> = many
                .iter()
                .map(|f| format!("{} {} in tenant {} ({})", f.kind, f.id, f.tenant, f.place))
                .collect();
            bail!(
                "{:?} names more than one object: {}; give the id (and --tenant)",
                printable(&args.id_or_name),
                printable(&list.join("; "))
            )
        }
    };
    let tenant_id = crate::domain::TenantId::new(object.tenant_id.clone());
    let events = history::of_object(&conn, Some(&tenant_id), &object.id)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let v = json!({ "object": object, "events": events });
        writeln!(out, "{}", json_line(&v))?;
        return Ok(());
    }
    writeln!(
        out,
        "{} {} in tenant {} ({})",
        object.kind,
        printable(&object.id),
        printable(&object.tenant),
        match object.place {
            "live" => "live",
            "trash" => "in the trash",
            _ => "gone: only the provisioning log names it",
        }
    )?;
    if events.is_empty() {
        writeln!(out, "(no request about it is in the provisioning log)")?;
    }
    for e in &events {
        writeln!(
            out,
            "{}  {:<6} {} {}  by {}{}",
            printable(&e.at),
            printable(&e.method),
            e.status,
            printable(&e.path),
            printable(e.credential.as_deref().unwrap_or("the command line")),
            e.scim_type
                .as_deref()
                .map(|t| format!("  scimType {}", printable(t)))
                .unwrap_or_default()
        )?;
        if let Some(d) = &e.detail {
            writeln!(out, "    detail: {}", printable(d))?;
        }
        if !e.notes.is_empty() {
            writeln!(out, "    normalised: {}", printable(&e.notes.join(", ")))?;
        }
        if let Some(d) = &e.diff {
            for c in &d.changes {
                let show = |v: &Option<serde_json::Value>| {
                    v.as_ref().map_or("(none)".to_string(), |v| v.to_string())
                };
                writeln!(
                    out,
                    "    {}: {} -> {}",
                    printable(&c.attr),
                    printable(&show(&c.from)),
                    printable(&show(&c.to))
                )?;
            }
            if d.more > 0 {
                writeln!(out, "    … and {} more attribute(s)", d.more)?;
            }
            if let Some(m) = &d.members {
                if m.added_count > 0 {
                    writeln!(
                        out,
                        "    members added ({}): {}",
                        m.added_count,
                        printable(&m.added.join(", "))
                    )?;
                }
                if m.removed_count > 0 {
                    writeln!(
                        out,
                        "    members removed ({}): {}",
                        m.removed_count,
                        printable(&m.removed.join(", "))
                    )?;
                }
            }
        }
        if let Some(b) = &e.body {
            writeln!(out, "    body: {}", printable(b))?;
        }
    }
    Ok(())
}
