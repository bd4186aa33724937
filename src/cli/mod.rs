//! The command line: `serve` (the default), `migrate`, `inbox`, and the tools that let anyone try
//! the service without a WeCom account: `fake-wecom`, `demo` and `simulate`.

mod demo;
mod inbox;
mod simulate;
mod status;
mod summary;
mod sync;
mod token;
mod transfer;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::app::{App, StartError, shutdown_signal};
use crate::config::{Config, Needs};
use crate::db;

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
    /// Import departments, members and every customer from WeCom (resumable), or --reconcile.
    Sync(sync::SyncArgs),
    /// Is the deployment healthy: reminder dispatchers, and what waits in the queues.
    Status,
    /// The managers' daily summary: `summary send [--date YYYY-MM-DD] [--to USERID] [--dry-run]`.
    #[command(subcommand)]
    Summary(summary::SummaryCommand),
    /// Bearer tokens for the admin API: `token create --name NAME --role admin|manager [--member
    /// USERID]`, `token revoke NAME`, `token list`.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Export customers as CSV (UTF-8 with a BOM, for Excel), to stdout or --out FILE.
    Export(transfer::ExportArgs),
    /// Import leads from a CSV file (e.g. business cards from a trade fair), row by row with a
    /// report; importing the same file again changes nothing.
    Import(transfer::ImportArgs),
    /// Print the admin API's OpenAPI document (the one served at /api/v1/openapi.json).
    Openapi,
    /// Inspect and replay stored callbacks.
    #[command(subcommand)]
    Inbox(inbox::InboxCommand),
    /// Run the service together with a fake WeCom, printing every message it pushes (no WeCom
    /// account needed).
    Demo(demo::DemoArgs),
    /// Run a fake WeCom server on its own.
    FakeWecom(demo::FakeWecomArgs),
    /// Send encrypted callbacks to a running service, as WeCom would.
    Simulate(simulate::SimulateArgs),
    /// Show how a natural time expression is understood: the instant, then the rest of the text.
    ParseTime(ParseTimeArgs),
}

#[derive(Debug, clap::Args)]
pub struct ParseTimeArgs {
    /// The reference time (default: now), e.g. 2026-11-25T10:00:00+08:00.
    #[arg(long)]
    pub now: Option<String>,
    /// The time zone (default: org.timezone).
    #[arg(long)]
    pub tz: Option<String>,
    /// The text, e.g. "明天下午3点 回电话".
    pub text: String,
}

/// A failed command: what to print, and the exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("{0}")]
    Failed(String),
    /// Bad input from the user (exit code 2).
    #[error("{0}")]
    Usage(String),
}

impl From<crate::config::ConfigError> for CliError {
    fn from(e: crate::config::ConfigError) -> Self {
        Self::Start(StartError::Config(e))
    }
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Start(StartError::Config(_)) | Self::Usage(_) => 2,
            _ => 1,
        }
    }
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    crate::install_crypto_provider();
    let mut config = Config::load(cli.config.as_deref()).map_err(StartError::from)?;
    let command = cli.command.unwrap_or(Command::Serve);
    match &command {
        // The demo's console is for pushed messages; per-request lines would drown them.
        Command::Demo(_) if config.log.level == "info" => config.log.level = "info,tower_http=warn".into(),
        Command::Simulate(_) | Command::ParseTime(_) | Command::Export(_) | Command::Import(_) | Command::Openapi => {
            config.log.level = "warn".into()
        }
        _ => {}
    }
    crate::telemetry::init(&config.log);
    match command {
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
        Command::Status => {
            config.validate(Needs::Storage).map_err(StartError::from)?;
            let db = db::connect(&config.database).await.map_err(StartError::from)?;
            status::run(&config, &db).await?;
        }
        Command::Inbox(command) => {
            config.validate(Needs::Storage).map_err(StartError::from)?;
            let db = db::connect(&config.database).await.map_err(StartError::from)?;
            inbox::run(&db, command, config.org.tz()).await?;
        }
        Command::Token(command) => {
            let db = migrated_storage(&config).await?;
            token::run(&db, command, config.org.tz()).await?;
        }
        Command::Export(args) => {
            let db = migrated_storage(&config).await?;
            transfer::export(&config, &db, args).await?;
        }
        Command::Import(args) => {
            let db = migrated_storage(&config).await?;
            transfer::import(&config, &db, args).await?;
        }
        Command::Openapi => {
            let document = crate::http::api::openapi()
                .to_pretty_json()
                .map_err(|e| CliError::Failed(e.to_string()))?;
            println!("{document}");
        }
        Command::Sync(args) => sync::run(config, args).await?,
        Command::Summary(command) => summary::run(config, command).await?,
        Command::Demo(args) => demo::run_demo(config, args).await?,
        Command::FakeWecom(args) => demo::run_fake_wecom(args).await?,
        Command::Simulate(args) => simulate::run(&config, args).await?,
        Command::ParseTime(args) => parse_time(&config, args)?,
    }
    Ok(())
}

/// The database, migrated, for a command that reads and writes it.
async fn migrated_storage(config: &Config) -> Result<sea_orm::DatabaseConnection, CliError> {
    config.validate(Needs::Storage).map_err(StartError::from)?;
    let (db, _) = db::connect_migrated(&config.database, config.database.auto_migrate)
        .await
        .map_err(StartError::from)?;
    Ok(db)
}

fn parse_time(config: &Config, args: ParseTimeArgs) -> Result<(), CliError> {
    let tz: chrono_tz::Tz = match &args.tz {
        Some(zone) => zone
            .parse()
            .map_err(|_| CliError::Usage(format!("unknown time zone {zone:?}")))?,
        None => config.org.tz(),
    };
    let now = match &args.now {
        Some(now) => chrono::DateTime::parse_from_rfc3339(now)
            .map_err(|e| CliError::Usage(format!("--now must be RFC 3339, e.g. 2026-11-25T10:00:00+08:00 ({e})")))?
            .with_timezone(&tz),
        None => chrono::Utc::now().with_timezone(&tz),
    };
    match crate::bot::time::parse(&args.text, now, config.bot.default_hour) {
        Ok(parsed) => {
            println!("{}", crate::bot::time::rfc3339(&parsed.at));
            println!("{}", parsed.rest);
            Ok(())
        }
        Err(e) => Err(CliError::Usage(e.message_en())),
    }
}
