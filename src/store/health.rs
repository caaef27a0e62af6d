//! Whether the database answers: what `/healthz` asks on every probe.

use rusqlite::Connection;

use super::Result;

/// One cheap query that touches the schema: fails when the file is unreadable or corrupt.
pub fn ping(conn: &Connection) -> Result<()> {
    conn.query_row("SELECT count(*) FROM tenants", [], |r| r.get::<_, i64>(0))?;
    Ok(())
}
