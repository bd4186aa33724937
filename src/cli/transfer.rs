//! `wecom-scrm export` and `wecom-scrm import`: the admin API's CSV export and import from the
//! command line, with progress on stderr.

use std::io::Write as _;
use std::path::PathBuf;

use sea_orm::DatabaseConnection;

use super::CliError;
use crate::config::Config;
use crate::crm::audit::Actor;
use crate::crm::export;
use crate::crm::listing::{self, CustomerFilter, Scope};
use crate::crm::risk::Risk;
use crate::crm::transfer::{self, ImportError};
use crate::db::now_ms;

const PAGE: u64 = 1000;

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Write here instead of to stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Only customers owned by this member (userid).
    #[arg(long, value_name = "USERID")]
    pub owner: Option<String>,
    /// Only customers owned by members of this department (or one under it).
    #[arg(long, value_name = "ID")]
    pub department: Option<i64>,
    /// Only customers in this stage.
    #[arg(long)]
    pub stage: Option<String>,
    /// Only customers who came through this channel (QR code state).
    #[arg(long)]
    pub channel: Option<String>,
    /// Only customers at risk.
    #[arg(long)]
    pub at_risk: bool,
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// A CSV file with a header line: 姓名/name and 负责人/owner, and any of 公司/company,
    /// 职位/position, 电话/phone, 渠道/channel, 客户ID.
    pub file: PathBuf,
}

pub async fn export(config: &Config, db: &DatabaseConnection, args: ExportArgs) -> Result<(), CliError> {
    let failed = |e: std::io::Error| CliError::Failed(format!("writing the export: {e}"));
    let mut out: Box<dyn std::io::Write> = match &args.out {
        Some(path) => {
            Box::new(std::io::BufWriter::new(std::fs::File::create(path).map_err(|e| {
                CliError::Usage(format!("cannot create {}: {e}", path.display()))
            })?))
        }
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let filter = CustomerFilter {
        owner: args.owner,
        department: args.department,
        stage: args.stage,
        channel: args.channel,
        at_risk: args.at_risk.then_some(true),
        ..Default::default()
    };
    let tz = config.org.tz();
    let risk = Risk::current(db, config, now_ms())
        .await
        .map_err(|e| CliError::Failed(format!("database: {e}")))?;
    out.write_all(&export::export_header()).map_err(failed)?;
    let (mut after, mut written) = (None, 0u64);
    loop {
        let rows = listing::customers(db, &Scope::All, &filter, &risk, after, PAGE)
            .await
            .map_err(|e| CliError::Failed(format!("database: {e}")))?;
        let ids: Vec<i64> = rows.iter().map(|c| c.id).collect();
        let totals = export::deal_totals(db, &ids)
            .await
            .map_err(|e| CliError::Failed(format!("database: {e}")))?;
        out.write_all(&export::export_rows(&rows, &risk, &totals, tz))
            .map_err(failed)?;
        written += rows.len() as u64;
        if args.out.is_some() {
            eprint!("\rexported {written} customers");
        }
        match rows.last() {
            Some(last) if rows.len() as u64 == PAGE => after = Some(last.id),
            _ => break,
        }
    }
    out.flush().map_err(failed)?;
    if let Some(path) = &args.out {
        eprintln!("\rexported {written} customers to {}", path.display());
    }
    Ok(())
}

pub async fn import(config: &Config, db: &DatabaseConnection, args: ImportArgs) -> Result<(), CliError> {
    let file =
        std::fs::read(&args.file).map_err(|e| CliError::Usage(format!("cannot read {}: {e}", args.file.display())))?;
    let mut progress = |done: u64, total: u64| {
        const WIDTH: u64 = 30;
        let filled = (done * WIDTH).checked_div(total).unwrap_or(WIDTH).min(WIDTH);
        eprint!(
            "\r[{}{}] {done}/{total} rows",
            "#".repeat(filled as usize),
            " ".repeat((WIDTH - filled) as usize)
        );
    };
    let report = transfer::import_customers(db, &Scope::All, &Actor::Cli, config, &file, now_ms(), &mut progress)
        .await
        .map_err(|e| match e {
            ImportError::Db(e) => CliError::Failed(format!("database: {e}")),
            other => CliError::Usage(format!("{}: {other}", args.file.display())),
        })?;
    eprintln!();
    println!(
        "{} rows: {} created, {} updated, {} unchanged, {} rejected",
        report.rows,
        report.created,
        report.updated,
        report.unchanged,
        report.rejected.len()
    );
    if report.assigned + report.pooled > 0 {
        println!(
            "without an owner: {} assigned by the rules, {} left in the pool (公海)",
            report.assigned, report.pooled
        );
    }
    for r in &report.rejected {
        println!("line {}: {}: {}", r.line, r.field, r.reason);
    }
    Ok(())
}
