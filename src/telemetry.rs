//! Logging set-up: human-readable text or JSON lines, filtered by `log.level` unless `RUST_LOG`
//! says otherwise.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogConfig;

/// Installs the global subscriber. Safe to call more than once (later calls do nothing).
pub fn init(config: &LogConfig) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        let mut directives = config.level.clone();
        // The SQL layers are chatty at info; their problems surface through our own errors.
        for quiet in ["sqlx", "sea_orm", "sea_orm_migration"] {
            if !directives.contains(quiet) {
                directives.push_str(&format!(",{quiet}=warn"));
            }
        }
        EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = if config.format == "json" {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}
