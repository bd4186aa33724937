//! `wecom-scrm sync`: import the org and every customer relation from WeCom, with progress on the
//! terminal; `--reconcile` compares and repairs instead.

use std::io::{IsTerminal, Write};

use clap::Args;
use tokio_util::sync::CancellationToken;

use super::CliError;
use crate::app::cli_services;
use crate::config::Config;
use crate::crm::audit::Actor;
use crate::sync::{self, Progress};

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Only departments and members.
    #[arg(long, conflicts_with = "reconcile")]
    pub org_only: bool,
    /// Compare every customer relation with WeCom and repair the differences.
    #[arg(long)]
    pub reconcile: bool,
}

fn print_progress(progress: Progress) {
    let terminal = std::io::stdout().is_terminal();
    let line = match progress {
        Progress::Departments(n) => format!("departments: {n}"),
        Progress::Members {
            total,
            created,
            updated,
            departed,
        } => {
            format!("members: {total} ({created} new, {updated} changed, {departed} left)")
        }
        Progress::FollowUsers(n) => format!("members with customer contact: {n}"),
        Progress::Resumed { members_done } => format!("resuming an interrupted import after {members_done} members"),
        Progress::Customers {
            relations,
            members_done,
            members_total,
        } => {
            let line = format!("customers: {relations} relations · members {members_done}/{members_total}");
            if terminal {
                print!("\r{line}   ");
                let _ = std::io::stdout().flush();
                return;
            }
            line
        }
    };
    if terminal {
        println!("\r{line}");
    } else {
        println!("{line}");
    }
}

pub async fn run(config: Config, args: SyncArgs) -> Result<(), CliError> {
    let api = config.wecom.api_base.clone();
    let s = cli_services(config).await?;
    println!("syncing from WeCom at {api}");
    let failed = |e: sync::SyncError| CliError::Failed(format!("sync stopped: {}", crate::telemetry::Chain(&e)));
    if args.reconcile {
        let report = sync::reconcile(&s).await.map_err(failed)?;
        println!(
            "reconciled {} members: {} relations added, {} restored, {} ended (missed deletions)",
            report.members, report.added, report.reactivated, report.closed
        );
    } else {
        sync::sync_org(&s, &Actor::Sync, &mut print_progress)
            .await
            .map_err(failed)?;
        if !args.org_only {
            let report = sync::sync_customers(&s, &mut print_progress).await.map_err(|e| {
                CliError::Failed(format!(
                    "sync stopped: {e}\nrun `wecom-scrm sync` again to resume where it stopped"
                ))
            })?;
            if std::io::stdout().is_terminal() {
                println!();
            }
            println!(
                "done in {:.1}s: {} relations ({} new customers, {} new relations, {} restored)",
                report.seconds,
                report.relations,
                report.customers_created,
                report.relations_created,
                report.relations_reactivated
            );
        }
    }
    // Tell successors about handovers the sync found, now rather than at the next start.
    let sent = s.notifier.deliver_due(&CancellationToken::new()).await.unwrap_or(0);
    if sent > 0 {
        println!("notifications sent: {sent}");
    }
    Ok(())
}
