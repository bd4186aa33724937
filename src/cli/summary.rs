//! `wecom-scrm summary send`: the managers' daily summary at once, from the command line — sent
//! (once per recipient and date, like the scheduled one) or printed with `--dry-run`.

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use clap::{Args, Subcommand};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};

use super::CliError;
use crate::app::cli_services;
use crate::config::Config;
use crate::db::entity::outbox::{self, MessageState};
use crate::db::now_ms;
use crate::jobs::summary;
use crate::report::{self, SummaryError};
use crate::texts;

#[derive(Debug, Subcommand)]
pub enum SummaryCommand {
    /// Send the daily summary now to every department leader (and summary.extra_recipients).
    Send(SendArgs),
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// The day to summarise, YYYY-MM-DD (default: today in the org's timezone).
    #[arg(long)]
    pub date: Option<String>,
    /// Only this recipient (a WeCom userid).
    #[arg(long, value_name = "USERID")]
    pub to: Option<String>,
    /// Print the summaries instead of sending them.
    #[arg(long)]
    pub dry_run: bool,
}

/// How long to wait for a running service that took one of this run's messages first (its
/// sender polls too) to finish its attempt, so that the answer says what happened.
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(15);

/// The rows of `ids` once none is in the middle of an attempt, or as they are after
/// [`IN_FLIGHT_WAIT`].
async fn settled(db: &DatabaseConnection, ids: &[i64]) -> Result<Vec<outbox::Model>, sea_orm::DbErr> {
    let deadline = Instant::now() + IN_FLIGHT_WAIT;
    loop {
        let rows = outbox::Entity::find()
            .filter(outbox::Column::Id.is_in(ids.iter().copied()))
            .order_by_asc(outbox::Column::Id)
            .all(db)
            .await?;
        let in_flight = rows.iter().any(|r| r.status == MessageState::Sending);
        if !in_flight || Instant::now() >= deadline {
            return Ok(rows);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn run(config: Config, command: SummaryCommand) -> Result<(), CliError> {
    let SummaryCommand::Send(args) = command;
    let tz = config.org.tz();
    let date = match &args.date {
        Some(text) => NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
            .map_err(|_| CliError::Usage(format!("--date must look like 2026-11-25, not {text:?}")))?,
        None => texts::local_date(now_ms(), tz),
    };
    let s = cli_services(config).await?;
    let failed = |e: SummaryError| match e {
        SummaryError::NotRecipient(_) => CliError::Usage(e.to_string()),
        SummaryError::Db(e) => CliError::Failed(format!("database error: {e}")),
    };
    if args.dry_run {
        let rendered = report::render(&s, date, args.to.as_deref(), now_ms())
            .await
            .map_err(failed)?;
        if rendered.is_empty() {
            println!("no recipients: no department has a leader and summary.extra_recipients is empty");
        }
        for r in rendered {
            println!("── to {} ──", r.userid);
            for part in r.parts {
                println!("{part}\n");
            }
        }
        return Ok(());
    }
    let report = summary::send(&s, date, args.to.as_deref(), now_ms())
        .await
        .map_err(failed)?;
    if report.sent.is_empty() && report.already_sent.is_empty() {
        println!("no recipients: no department has a leader and summary.extra_recipients is empty");
        return Ok(());
    }
    // Deliver now what this run queued (and nothing else), rather than leave it to a running
    // service's next poll.
    let ids: Vec<i64> = report.queued.iter().flat_map(|(_, ids)| ids.iter().copied()).collect();
    let database = |e: sea_orm::DbErr| CliError::Failed(format!("database error: {e}"));
    s.notifier.deliver_only(&ids).await.map_err(database)?;
    let mut problems = 0;
    for (userid, ids) in &report.queued {
        let rows = settled(&s.db, ids).await.map_err(database)?;
        let state = |status: MessageState| rows.iter().filter(|r| r.status == status).count();
        let (sent, failed) = (state(MessageState::Sent), state(MessageState::Failed));
        if failed > 0 {
            problems += 1;
            let reason = rows.iter().find_map(|r| r.last_error.clone()).unwrap_or_default();
            println!("{userid}: failed ({reason})");
        } else if sent == rows.len() {
            println!("{userid}: sent ({} message{})", sent, if sent == 1 { "" } else { "s" });
        } else {
            println!("{userid}: queued; the service sends it when WeCom is reachable");
        }
    }
    for userid in &report.already_sent {
        println!("{userid}: already sent for {date}");
    }
    if problems > 0 {
        return Err(CliError::Failed(format!(
            "{problems} summary message(s) could not be delivered"
        )));
    }
    Ok(())
}
