//! `wecom-scrm token create|revoke|list`: bearer tokens for the admin API.

use sea_orm::DatabaseConnection;

use super::CliError;
use crate::db::now_ms;
use crate::texts::minute_stamp;
use crate::tokens::{self, TokenError};

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it (once: only its hash is stored).
    Create {
        /// A name for the token; the audit log names its writes `token:NAME`.
        #[arg(long)]
        name: String,
        /// admin (everything) or manager (the departments the member leads).
        #[arg(long, value_parser = ["admin", "manager"])]
        role: String,
        /// The member a manager token acts for.
        #[arg(long, value_name = "USERID")]
        member: Option<String>,
    },
    /// Revoke a token by name: it stops working at once.
    Revoke {
        #[arg(value_name = "NAME", required_unless_present = "name_flag")]
        name: Option<String>,
        #[arg(long = "name", value_name = "NAME", conflicts_with = "name")]
        name_flag: Option<String>,
    },
    /// List tokens (never their secrets).
    List,
}

pub async fn run(db: &DatabaseConnection, command: TokenCommand, tz: chrono_tz::Tz) -> Result<(), CliError> {
    let now = now_ms();
    match command {
        TokenCommand::Create { name, role, member } => {
            let created = tokens::create(db, &name, &role, member.as_deref(), now)
                .await
                .map_err(token_error)?;
            let scope = match &created.row.member_userid {
                Some(member) => format!("manager for {member}"),
                None => "admin".to_owned(),
            };
            eprintln!("created token {name:?} ({scope}); store it now, it is not shown again:");
            println!("{}", created.token);
        }
        TokenCommand::Revoke { name, name_flag } => {
            let name = name.or(name_flag).unwrap_or_default();
            tokens::revoke(db, &name, now).await.map_err(token_error)?;
            println!("revoked token {name:?}");
        }
        TokenCommand::List => {
            let rows = tokens::list(db)
                .await
                .map_err(|e| CliError::Failed(format!("database: {e}")))?;
            if rows.is_empty() {
                println!("no tokens; create one with `wecom-scrm token create --name NAME --role admin`");
            }
            let time = |ms: i64| minute_stamp(ms, tz);
            for t in rows {
                let role = match &t.member_userid {
                    Some(member) => format!("{} ({member})", t.role),
                    None => t.role.clone(),
                };
                let state = match t.revoked_at {
                    Some(at) => format!("revoked {}", time(at)),
                    None => match t.last_used_at {
                        Some(at) => format!("last used {}", time(at)),
                        None => "never used".to_owned(),
                    },
                };
                println!("{}\t{role}\tcreated {}\t{state}", t.name, time(t.created_at));
            }
        }
    }
    Ok(())
}

fn token_error(e: TokenError) -> CliError {
    match e {
        TokenError::Db(e) => CliError::Failed(format!("database: {e}")),
        other => CliError::Usage(other.to_string()),
    }
}
