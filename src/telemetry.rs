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

/// An error with every cause after it (`database: connection refused: …`), for logs and for the
/// errors stored with a row: the client sees only the first, the operator the whole chain.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'a));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(e) = cause {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn the_chain_shows_every_cause() {
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(Chain(&e).to_string(), "outer: inner");
    }
}
