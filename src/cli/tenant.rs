//! `tenant create NAME [--azure-tenant-id GUID]` and `tenant list`.

use clap::Subcommand;

use crate::config::Config;
use crate::store::tenants;

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant; prints its id
    Create {
        /// Short name used with --tenant (letters, digits, '-', '_', '.')
        name: String,
        /// The Entra ID (Azure AD) tenant id this tenant belongs to, for reference
        #[arg(long, value_name = "GUID")]
        azure_tenant_id: Option<String>,
    },
    /// List tenants
    List,
}

pub fn run(config: &Config, cmd: TenantCommand) -> anyhow::Result<()> {
    let conn = super::open_db(config)?;
    match cmd {
        TenantCommand::Create {
            name,
            azure_tenant_id,
        } => {
            if let Some(g) = &azure_tenant_id {
                uuid::Uuid::parse_str(g)
                    .map_err(|_| anyhow::anyhow!("--azure-tenant-id {g:?} is not a GUID"))?;
            }
            let t = tenants::create(&conn, &name, azure_tenant_id.as_deref())?;
            eprintln!("created tenant {}", t.name);
            println!("{}", t.id);
        }
        TenantCommand::List => {
            println!(
                "{:<36}  {:<20}  {:<36}  CREATED",
                "ID", "NAME", "AZURE TENANT"
            );
            for t in tenants::list(&conn)? {
                println!(
                    "{:<36}  {:<20}  {:<36}  {}",
                    t.id,
                    t.name,
                    t.azure_tenant_id.as_deref().unwrap_or("-"),
                    t.created
                );
            }
        }
    }
    Ok(())
}
