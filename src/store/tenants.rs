//! Tenants: one per Entra ID tenant (or per directory) the appliance serves.

use rusqlite::{params, Connection, OptionalExtension};

use super::{Invalid, Result};
use crate::domain::{TenantId, Timestamp};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub azure_tenant_id: Option<String>,
    pub created: Timestamp,
}

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Tenant> {
    Ok(Tenant {
        id: row.get(0)?,
        name: row.get(1)?,
        azure_tenant_id: row.get(2)?,
        created: row.get(3)?,
    })
}

/// A tenant name is what administrators type: keep it simple and shell-safe.
pub fn validate_name(name: &str) -> std::result::Result<(), Invalid> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Invalid::TenantName(name.to_string()))
    }
}

pub fn create(conn: &Connection, name: &str, azure_tenant_id: Option<&str>) -> Result<Tenant> {
    validate_name(name)?;
    if get_by_name(conn, name)?.is_some() {
        return Err(Invalid::TenantExists(name.to_string()).into());
    }
    let tenant = Tenant {
        id: TenantId::new(uuid::Uuid::new_v4().to_string()),
        name: name.to_string(),
        azure_tenant_id: azure_tenant_id.map(str::to_string),
        created: Timestamp::now(),
    };
    conn.execute(
        "INSERT INTO tenants (id, name, azure_tenant_id, created) VALUES (?1, ?2, ?3, ?4)",
        params![
            tenant.id,
            tenant.name,
            tenant.azure_tenant_id,
            tenant.created
        ],
    )?;
    Ok(tenant)
}

pub fn get_by_name(conn: &Connection, name: &str) -> Result<Option<Tenant>> {
    Ok(conn
        .prepare_cached("SELECT id, name, azure_tenant_id, created FROM tenants WHERE name = ?1")?
        .query_row([name], from_row)
        .optional()?)
}

pub fn get(conn: &Connection, id: &TenantId) -> Result<Option<Tenant>> {
    Ok(conn
        .prepare_cached("SELECT id, name, azure_tenant_id, created FROM tenants WHERE id = ?1")?
        .query_row([id], from_row)
        .optional()?)
}

pub fn list(conn: &Connection) -> Result<Vec<Tenant>> {
    let mut stmt =
        conn.prepare("SELECT id, name, azure_tenant_id, created FROM tenants ORDER BY name")?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}
