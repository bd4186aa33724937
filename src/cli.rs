//! The command line: `serve` (the default), `migrate`, and `inbox list|retry`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::app::{App, StartError, shutdown_signal};
use crate::config::{Config, Needs};
use crate::db;
use crate::inbox::{self, RetryTarget, Status};

#[derive(Debug, Parser)]
#[command(
    name = "wecom-scrm",
    version,
    about = "A chat-first sales CRM on top of WeCom (企业微信)"
)]
pub struct Cli {
    /// A TOML file layered over config/default.toml (environment variables SCRM_<SECTION>__<KEY>
    /// override both).
    #[arg(long, short = 'c', global = true, env = "SCRM_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (the default): the WeCom callback endpoint and the background workers.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Inspect and replay stored callbacks.
    #[command(subcommand)]
    Inbox(InboxCommand),
}

#[derive(Debug, Subcommand)]
pub enum InboxCommand {
    /// Show stored callbacks, newest first.
    List {
        /// Only rows with this status: pending, processing, processed, ignored, failed.
        #[arg(long, value_parser = parse_status)]
        status: Option<Status>,
        /// How many rows to show.
        #[arg(long, default_value_t = 50)]
        limit: u64,
    },
    /// Put rows back in the queue (e.g. after fixing the bug that made them fail).
    Retry(RetryArgs),
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct RetryArgs {
    /// The row to re-queue.
    pub id: Option<i64>,
    /// Re-queue every failed row.
    #[arg(long)]
    pub failed: bool,
}

fn parse_status(s: &str) -> Result<Status, String> {
    Status::parse(s).ok_or_else(|| {
        let all: Vec<_> = Status::ALL.iter().map(|s| s.as_str()).collect();
        format!("unknown status {s:?}; one of {}", all.join(", "))
    })
}

/// A failed command: what to print, and the exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Start(StartError::Config(_)) => 2,
            _ => 1,
        }
    }
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    crate::install_crypto_provider();
    let config = Config::load(cli.config.as_deref()).map_err(StartError::from)?;
    crate::telemetry::init(&config.log);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = App::build(config).await?;
            app.run(shutdown_signal()).await?;
        }
        Command::Migrate => {
            config.validate(Needs::Storage).map_err(StartError::from)?;
            let db = db::connect(&config.database).await.map_err(StartError::from)?;
            let applied = db::migrate(&db).await.map_err(StartError::from)?;
            println!("migrations applied: {applied} (database is up to date)");
        }
        Command::Inbox(command) => {
            config.validate(Needs::Storage).map_err(StartError::from)?;
            let db = db::connect(&config.database).await.map_err(StartError::from)?;
            inbox_command(&db, command, config.org.tz()).await?;
        }
    }
    Ok(())
}

async fn inbox_command(
    db: &sea_orm::DatabaseConnection,
    command: InboxCommand,
    tz: chrono_tz::Tz,
) -> Result<(), CliError> {
    let failed = |e: sea_orm::DbErr| CliError::Failed(format!("database error: {e}"));
    match command {
        InboxCommand::List { status, limit } => {
            let rows = inbox::list(db, status, limit).await.map_err(failed)?;
            if rows.is_empty() {
                println!("no rows");
                return Ok(());
            }
            println!(
                "{:>8}  {:<19}  {:<44}  {:<16}  {:<10}  {:>3}  note",
                "id", "received", "kind", "from", "status", "try"
            );
            for row in rows {
                let received = chrono::DateTime::from_timestamp_millis(row.received_at)
                    .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_default();
                let note = row.last_error.as_deref().or(row.outcome.as_deref()).unwrap_or("");
                println!(
                    "{:>8}  {:<19}  {:<44}  {:<16}  {:<10}  {:>3}  {}",
                    row.id,
                    received,
                    row.kind,
                    row.from_user.as_deref().unwrap_or("-"),
                    row.status,
                    row.attempts,
                    note.replace('\n', " ")
                );
            }
        }
        InboxCommand::Retry(args) => {
            let target = match (args.id, args.failed) {
                (Some(id), _) => RetryTarget::Id(id),
                (None, _) => RetryTarget::AllFailed,
            };
            let count = inbox::retry(db, target).await.map_err(failed)?;
            match target {
                RetryTarget::Id(id) if count == 0 => {
                    return Err(CliError::Failed(format!(
                        "no row {id} to retry (missing, or being processed right now)"
                    )));
                }
                RetryTarget::Id(id) => println!("row {id} re-queued"),
                RetryTarget::AllFailed => println!("{count} failed row(s) re-queued"),
            }
        }
    }
    Ok(())
}
