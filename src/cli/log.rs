//! `log`: the provisioning log — what Entra sent, what we answered, and why.

use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use serde_json::json;

use crate::config::Config;
use crate::store::request_log::{self, Query, Row};
use crate::store::tenants;

#[derive(Debug, Args)]
pub struct LogArgs {
    #[arg(long, value_name = "NAME")]
    pub tenant: Option<String>,
    /// Only entries newer than this: 30s, 15m, 1h, 7d, or an RFC 3339 time
    #[arg(long, value_name = "AGE")]
    pub since: Option<String>,
    /// Only these statuses: 2xx, 4xx, 5xx or a code such as 409
    #[arg(long, value_name = "STATUS")]
    pub status: Option<String>,
    /// Only entries about this user or group id
    #[arg(long, value_name = "ID")]
    pub resource: Option<String>,
    /// Keep printing new entries as they arrive (Ctrl-C to stop)
    #[arg(long)]
    pub follow: bool,
    /// One JSON object per line
    #[arg(long)]
    pub json: bool,
    /// How many of the newest matching entries to show first
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub limit: u32,
}

/// "1h" → the RFC 3339 time one hour ago; an RFC 3339 time is taken as is.
pub fn parse_since(text: &str) -> anyhow::Result<String> {
    let rfc = &time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(text, rfc) {
        return Ok(t.to_offset(time::UtcOffset::UTC).format(rfc)?);
    }
    let (num, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: i64 = num.parse().with_context(|| {
        format!("--since {text:?}: use e.g. 30s, 15m, 1h, 7d or an RFC 3339 time")
    })?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => bail!("--since {text:?}: use e.g. 30s, 15m, 1h, 7d or an RFC 3339 time"),
    };
    Ok((time::OffsetDateTime::now_utc() - time::Duration::seconds(secs)).format(rfc)?)
}

pub fn parse_status(text: &str) -> anyhow::Result<(u16, u16)> {
    let t = text.to_ascii_lowercase();
    if let Some(d) = t.strip_suffix("xx") {
        let d: u16 = d
            .parse()
            .ok()
            .filter(|d| (1..=5).contains(d))
            .with_context(|| format!("--status {text:?}: use 2xx, 4xx, 5xx or a code"))?;
        return Ok((d * 100, d * 100 + 99));
    }
    let code: u16 = t
        .parse()
        .ok()
        .filter(|c| (100..600).contains(c))
        .with_context(|| format!("--status {text:?}: use 2xx, 4xx, 5xx or a code"))?;
    Ok((code, code))
}

pub fn run(config: &Config, args: LogArgs) -> anyhow::Result<()> {
    let conn = super::open_db(config)?;
    let tenant_id = match &args.tenant {
        Some(name) => Some(
            tenants::get_by_name(&conn, name)?
                .with_context(|| format!("no tenant named {name:?}"))?
                .id,
        ),
        None => None,
    };
    let mut query = Query {
        tenant_id,
        since: args.since.as_deref().map(parse_since).transpose()?,
        status: args.status.as_deref().map(parse_status).transpose()?,
        resource_id: args.resource.clone(),
        after_seq: None,
        limit: i64::from(args.limit),
    };
    let mut out = std::io::stdout().lock();
    if !args.json {
        writeln!(
            out,
            "{:<24} {:<10} {:<6} {:<40} {:<4} {:<14} {:>6}  DETAIL",
            "TIME", "TENANT", "METHOD", "PATH", "CODE", "SCIMTYPE", "MS"
        )?;
    }
    loop {
        let rows = request_log::query(&conn, &query)?;
        for row in &rows {
            print_row(&mut out, row, args.json)?;
        }
        out.flush()?;
        if !args.follow {
            return Ok(());
        }
        if let Some(last) = rows.last() {
            query.after_seq = Some(last.seq);
        } else if query.after_seq.is_none() {
            query.after_seq = Some(request_log::last_seq(&conn)?);
        }
        query.limit = 1000;
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Characters a terminal may act on instead of printing: C0 (ESC, BEL, CR, LF, …), DEL, C1
/// (U+0080–U+009F; UTF-8 terminals may take U+009B as CSI), and the bidirectional controls
/// that reorder what is shown (U+061C, U+200E/F, U+202A–E, U+2066–9).
fn is_terminal_control(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Text from the network made safe for a terminal: each control character written out
/// (`\x1b`, `\x7f`, `\u{9b}`, `\u{202e}`), so a client can neither drive the administrator's
/// terminal nor forge a line of the table.
pub(super) fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(is_terminal_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !is_terminal_control(c) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A JSON line made safe for a terminal: serde_json escapes C0 but writes DEL, C1 and the
/// bidirectional controls as they are. These can only occur inside strings, where `\uXXXX`
/// means the same character, so the line stays the same JSON value.
pub(super) fn json_line(v: &serde_json::Value) -> String {
    let text = v.to_string();
    if !text.chars().any(is_terminal_control) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_terminal_control(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

fn print_row(out: &mut impl Write, row: &Row, as_json: bool) -> anyhow::Result<()> {
    let e = &row.entry;
    if as_json {
        let v = json!({
            "seq": row.seq, "at": e.at, "request_id": e.request_id, "tenant": row.tenant, "tenant_id": e.tenant_id,
            "token_id": e.token_id, "method": e.method, "path": e.path, "resource_type": e.resource_type,
            "resource_id": e.resource_id, "status": e.status, "scim_type": e.scim_type, "duration_ms": e.duration_ms,
            "notes": e.notes, "detail": e.detail,
        });
        writeln!(out, "{}", json_line(&v))?;
    } else {
        let mut detail = e.detail.clone().unwrap_or_default();
        if !e.notes.is_empty() {
            if !detail.is_empty() {
                detail.push_str("; ");
            }
            detail.push_str(&format!("normalised: {}", e.notes.join(", ")));
        }
        writeln!(
            out,
            "{:<24} {:<10} {:<6} {:<40} {:<4} {:<14} {:>6}  {}",
            printable(&e.at),
            printable(row.tenant.as_deref().unwrap_or("-")),
            printable(&e.method),
            printable(&e.path),
            e.status,
            printable(e.scim_type.as_deref().unwrap_or("-")),
            e.duration_ms,
            printable(&detail)
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_written_out_in_the_table_and_escaped_in_json() {
        let hostile = "a\u{1b}]0;pwned\u{7}\n\r\u{7f}\u{9b}31m\u{202e}z";
        assert_eq!(
            printable(hostile),
            "a\\x1b]0;pwned\\x07\\x0a\\x0d\\x7f\\u{9b}31m\\u{202e}z"
        );
        assert_eq!(printable("plain / ünïcode"), "plain / ünïcode");
        let v = json!({ "detail": hostile });
        let line = json_line(&v);
        assert!(!line.chars().any(is_terminal_control), "{line}");
        let back: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back, v, "the JSON still says exactly what was sent");
    }

    #[test]
    fn since_and_status_parse() {
        assert!(parse_since("1h").is_ok());
        assert!(parse_since("2026-01-01T00:00:00Z").is_ok());
        assert!(parse_since("yesterday").is_err());
        assert_eq!(parse_status("4xx").unwrap(), (400, 499));
        assert_eq!(parse_status("409").unwrap(), (409, 409));
        assert!(parse_status("9xx").is_err());
    }
}
