//! `wecom-scrm inbox list|retry`.

use clap::{Args, Subcommand};
use sea_orm::DatabaseConnection;

use super::CliError;
use crate::inbox::{self, RetryTarget, Status};

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

pub async fn run(db: &DatabaseConnection, command: InboxCommand, tz: chrono_tz::Tz) -> Result<(), CliError> {
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
            let target = match args.id {
                Some(id) => RetryTarget::Id(id),
                None => RetryTarget::AllFailed,
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
