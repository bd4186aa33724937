//! Configuration, built once at start-up: code defaults < `config/default.toml` < `--config FILE` <
//! environment (`SCRM_<SECTION>__<KEY>`). Secrets are [`SecretString`](secrecy::SecretString)s, so
//! neither `Debug` nor a log line can print them. [`Config::validate`] checks meaning (not just
//! types) and names the key at fault in both its TOML and its environment spelling.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::ExposeSecret;
use serde::Deserialize;

pub const ENV_PREFIX: &str = "SCRM_";
pub const DEFAULT_FILE: &str = "config/default.toml";

/// Environment variables that share our prefix but are not configuration keys.
const NON_CONFIG_ENV: &[&str] = &["test_database_url", "test_redis_url", "config"];

mod infra;
mod leads;
mod sales;

pub use self::infra::*;
pub use self::leads::*;
pub use self::sales::*;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub wecom: WecomConfig,
    pub org: OrgConfig,
    pub inbox: InboxConfig,
    pub outbox: OutboxConfig,
    pub customers: CustomersConfig,
    pub jobs: JobsConfig,
    pub bot: BotConfig,
    pub sales: SalesConfig,
    pub summary: SummaryConfig,
    /// Who gets leads without an owner.
    pub assignment: AssignmentRules,
    /// The lead pool (公海).
    pub pool: PoolRules,
    /// The customer score and its segments.
    pub scoring: ScoringConfig,
    /// Follow-up plans by lead status.
    pub plans: Vec<Plan>,
    /// Stale-lead nudges by stage.
    pub stale: Vec<StaleRule>,
    /// Lead channels to create or update at start-up (more can be managed later without a restart).
    pub channels: Vec<ChannelSeed>,
    pub log: LogConfig,
    pub web: WebConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: Default::default(),
            database: Default::default(),
            redis: Default::default(),
            wecom: Default::default(),
            org: Default::default(),
            inbox: Default::default(),
            outbox: Default::default(),
            customers: Default::default(),
            jobs: Default::default(),
            bot: Default::default(),
            sales: Default::default(),
            summary: Default::default(),
            assignment: Default::default(),
            pool: Default::default(),
            scoring: Default::default(),
            plans: default_plans(),
            stale: default_stale_rules(),
            channels: Vec::new(),
            log: Default::default(),
            web: Default::default(),
        }
    }
}

/// A configuration problem, naming each key at fault as it is spelled in TOML and in the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<(String, String)>,
}

impl ConfigError {
    pub fn single(key: &str, problem: impl Into<String>) -> Self {
        Self {
            problems: vec![(key.to_owned(), problem.into())],
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration:")?;
        for (key, problem) in &self.problems {
            if key.is_empty() {
                write!(f, "\n  - {problem}")?;
            } else {
                write!(f, "\n  - {key} ({}): {problem}", env_name(key))?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// `wecom.corp_id` → `SCRM_WECOM__CORP_ID`.
pub fn env_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.replace('.', "__").to_ascii_uppercase())
}

/// What a command needs from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Database (and cache) only: `migrate`, `inbox`.
    Storage,
    /// The callback credentials (corp id, token, EncodingAESKey): `simulate`.
    Callbacks,
    /// Everything, including the WeCom credentials: `serve`.
    Service,
}

impl Config {
    /// Loads the layered configuration. `file` is the `--config` argument.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if Path::new(DEFAULT_FILE).exists() {
            figment = figment.merge(Toml::file(DEFAULT_FILE));
        }
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::single(
                    "",
                    format!("config file {} does not exist", file.display()),
                ));
            }
            figment = figment.merge(Toml::file(file));
        }
        figment = figment.merge(Env::prefixed(ENV_PREFIX).split("__").ignore(NON_CONFIG_ENV));
        Self::from_figment(figment)
    }

    pub fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        figment.extract::<Config>().map_err(|errors| ConfigError {
            problems: errors.into_iter().map(|e| (String::new(), e.to_string())).collect(),
        })
    }

    pub fn server_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server.addr.parse().map_err(|_| {
            ConfigError::single(
                "server.addr",
                format!("{:?} is not an address like 127.0.0.1:8080", self.server.addr),
            )
        })
    }

    /// The inbox settings a worker runs with: `inbox.lanes = 0` becomes half the database pool
    /// (each lane holds at most one connection at a time) and at most one lane per CPU core, at
    /// least 2 and at most 16. A lane working off a backlog in runs keeps the database busy; more
    /// lanes than cores took CPU from receiving callbacks (docs/performance.md, "A lane's backlog
    /// in runs").
    pub fn inbox_worker(&self) -> InboxConfig {
        let mut inbox = self.inbox.clone();
        if inbox.lanes == 0 {
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            inbox.lanes = (self.database.max_connections as usize / 2).min(cores).clamp(2, 16);
        }
        inbox
    }

    /// Checks meaning, collecting every problem rather than stopping at the first.
    pub fn validate(&self, needs: Needs) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let mut problem = |key: &str, text: String| problems.push((key.to_owned(), text));

        if let Err(e) = self.server_addr() {
            problems_extend(&mut problem, e);
        }
        let db_url = self.database.url.expose_secret();
        if !(db_url.starts_with("sqlite:") || db_url.starts_with("postgres://") || db_url.starts_with("postgresql://"))
        {
            problem("database.url", "must start with sqlite: or postgres://".into());
        }
        if self.database.max_connections == 0 {
            problem("database.max_connections", "must be at least 1".into());
        }
        if !self.database.schema.is_empty() && !is_identifier(&self.database.schema) {
            problem("database.schema", "must be letters, digits and underscores".into());
        }
        let redis_url = self.redis.url.expose_secret().trim();
        let redis_scheme_ok = redis_url.starts_with("redis://") || redis_url.starts_with("rediss://");
        if !redis_url.is_empty() && !redis_scheme_ok {
            problem(
                "redis.url",
                "must start with redis:// (or be empty for the in-process cache)".into(),
            );
        }
        if self.redis.memory_capacity == 0 {
            problem("redis.memory_capacity", "must be at least 1".into());
        }
        if self.org.timezone.parse::<chrono_tz::Tz>().is_err() {
            problem(
                "org.timezone",
                format!("{:?} is not an IANA time zone such as Asia/Shanghai", self.org.timezone),
            );
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            problem("log.format", "must be text or json".into());
        }
        if self.inbox.poll_interval_ms == 0 || self.inbox.claim_batch == 0 || self.inbox.write_batch == 0 {
            problem(
                "inbox",
                "poll_interval_ms, claim_batch and write_batch must be at least 1".into(),
            );
        }
        if self.outbox.max_attempts < 1 || self.outbox.lease_secs == 0 || self.outbox.poll_interval_ms == 0 {
            problem(
                "outbox",
                "max_attempts, lease_secs and poll_interval_ms must be at least 1".into(),
            );
        }
        if self.jobs.org_sync_interval_secs < 60 || self.jobs.reconcile_interval_secs < 60 {
            problem(
                "jobs",
                "org_sync_interval_secs and reconcile_interval_secs must be at least 60".into(),
            );
        }
        for (i, channel) in self.channels.iter().enumerate() {
            if let Some(plan) = &channel.plan
                && LeadStatus::from_key(plan).is_none()
            {
                problem(
                    "channels",
                    format!("channel #{}: plan {plan:?} is not a lead status", i + 1),
                );
            }
            if channel.state.trim().is_empty() || channel.state.chars().count() > 30 {
                problem(
                    "channels",
                    format!("channel #{}: state must be 1 to 30 characters (WeCom's limit)", i + 1),
                );
            }
        }
        for (key, value) in [
            ("jobs.agenda_time", &self.jobs.agenda_time),
            ("jobs.summary_time", &self.jobs.summary_time),
            ("jobs.score_time", &self.jobs.score_time),
        ] {
            if JobsConfig::time_of(value).is_none() {
                problem(key, format!("{value:?} is not a time like 09:00"));
            }
        }
        if let Err(e) = self.pool.check() {
            problem("pool", e);
        }
        if let Err(e) = self.scoring.check() {
            problem("scoring", e);
        }
        if self.jobs.workdays.iter().any(|d| !(1..=7).contains(d)) {
            problem("jobs.workdays", "days are 1 (Monday) to 7 (Sunday)".into());
        }
        if self.jobs.poll_interval_ms == 0
            || self.jobs.lease_secs == 0
            || self.jobs.merge_max == 0
            || self.jobs.claim_batch == 0
        {
            problem(
                "jobs",
                "poll_interval_ms, lease_secs, merge_max and claim_batch must be at least 1".into(),
            );
        }
        for plan in &self.plans {
            if LeadStatus::from_key(&plan.status).is_none() {
                problem(
                    "plans",
                    format!(
                        "{:?} is not a lead status (qualified, interested, hot, on_hold, inactive)",
                        plan.status
                    ),
                );
            }
        }
        for rule in &self.stale {
            if rule.escalate_after_days < rule.remind_after_days || rule.remind_after_days == 0 {
                problem(
                    "stale",
                    "remind_after_days must be at least 1 and escalate_after_days no smaller".into(),
                );
            }
        }
        if self.bot.default_hour > 23 {
            problem("bot.default_hour", "must be an hour from 0 to 23".into());
        }
        if self.sales.stages.len() < 3 || self.sales.stages.iter().any(|s| s.trim().is_empty()) {
            problem(
                "sales.stages",
                "needs at least three non-empty stages, the last two being won and lost".into(),
            );
        }
        if let Some((stage, p)) = self.sales.probabilities.iter().find(|(_, p)| **p > 100) {
            problem(
                "sales.stages",
                format!("the win probability of {stage:?} is {p} %; it must be 0 to 100"),
            );
        }
        if let Some(stage) = self
            .sales
            .probabilities
            .keys()
            .find(|name| !self.sales.stages.contains(name))
        {
            problem("sales.stages", format!("{stage:?} has a probability but is no stage"));
        }
        if self.inbox.max_attempts < 1 {
            problem("inbox.max_attempts", "must be at least 1".into());
        }
        if !(self.wecom.api_base.starts_with("http://") || self.wecom.api_base.starts_with("https://")) {
            problem("wecom.api_base", "must be an http:// or https:// URL".into());
        }
        if !(self.wecom.oauth_base.starts_with("http://") || self.wecom.oauth_base.starts_with("https://")) {
            problem("wecom.oauth_base", "must be an http:// or https:// URL".into());
        }
        if let Some(base) = self.web.base() {
            let rest = base.strip_prefix("https://").or_else(|| base.strip_prefix("http://"));
            if rest.is_none_or(|r| r.is_empty() || r.contains(['?', '#', ' '])) {
                problem(
                    "web.public_url",
                    "must be an http:// or https:// URL without a query, e.g. https://crm.example.com".into(),
                );
            }
        }
        let session_key = self.web.session_key.expose_secret();
        if !session_key.is_empty() && session_key.chars().count() < 32 {
            problem(
                "web.session_key",
                "must be at least 32 characters (or empty: a key is generated and kept in the database)".into(),
            );
        }
        if self.web.session_ttl_secs < 60 || self.web.sign_in_ttl_secs < 30 {
            problem(
                "web",
                "session_ttl_secs must be at least 60 and sign_in_ttl_secs at least 30".into(),
            );
        }

        if needs != Needs::Storage {
            let w = &self.wecom;
            if w.corp_id.trim().is_empty() {
                problem("wecom.corp_id", "is required (the corp id, ww…)".into());
            }
            if needs == Needs::Service && w.agent_id <= 0 {
                problem("wecom.agent_id", "is required (the app's AgentId, e.g. 1000002)".into());
            }
            if needs == Needs::Service && w.secret.expose_secret().trim().is_empty() {
                problem("wecom.secret", "is required (the app's Secret)".into());
            }
            let token = w.token.expose_secret().trim();
            if token.is_empty() {
                problem("wecom.token", "is required (the callback Token)".into());
            } else if !token.chars().all(|c| c.is_ascii_alphanumeric()) {
                problem("wecom.token", "must be letters and digits only".into());
            }
            let key = w.encoding_aes_key.expose_secret().trim();
            if key.is_empty() {
                problem(
                    "wecom.encoding_aes_key",
                    "is required (the callback EncodingAESKey)".into(),
                );
            } else if key.chars().count() != 43
                || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
            {
                problem(
                    "wecom.encoding_aes_key",
                    "must be the 43 characters of base64 WeCom shows as the EncodingAESKey".into(),
                );
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError { problems })
        }
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.server.request_timeout_secs.max(1))
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.server.shutdown_grace_secs)
    }

    /// The SQLite file a `sqlite:` URL points at, if any (to create its directory).
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        sqlite_path(self.database.url.expose_secret())
    }
}

fn problems_extend(push: &mut impl FnMut(&str, String), e: ConfigError) {
    for (key, text) in e.problems {
        push(&key, text);
    }
}

pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        None
    } else {
        Some(PathBuf::from(path))
    }
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

/// Removes the password from a URL for display.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            if userinfo.contains(':') {
                format!("{scheme}://{user}:[REDACTED]@{host}{path}")
            } else {
                format!("{scheme}://{user}@{host}{path}")
            }
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;
    use figment::providers::Serialized;

    fn service_config() -> Config {
        let mut c = Config::default();
        c.wecom.corp_id = "ww1".into();
        c.wecom.agent_id = 1000002;
        c.wecom.secret = SecretString::from("s3cret-value");
        c.wecom.token = SecretString::from("QDG6eK");
        c.wecom.encoding_aes_key = SecretString::from("jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C");
        c
    }

    #[test]
    fn defaults_are_valid_for_storage_commands_but_not_for_serve() {
        let c = Config::default();
        c.validate(Needs::Storage).unwrap();
        let err = c.validate(Needs::Service).unwrap_err().to_string();
        for key in [
            "SCRM_WECOM__CORP_ID",
            "SCRM_WECOM__AGENT_ID",
            "SCRM_WECOM__SECRET",
            "SCRM_WECOM__TOKEN",
            "SCRM_WECOM__ENCODING_AES_KEY",
        ] {
            assert!(err.contains(key), "{err}");
        }
        service_config().validate(Needs::Service).unwrap();
    }

    #[test]
    fn a_short_aes_key_is_named_with_what_is_wrong() {
        let mut c = service_config();
        c.wecom.encoding_aes_key = SecretString::from("tooshort");
        let err = c.validate(Needs::Service).unwrap_err().to_string();
        assert!(
            err.contains("wecom.encoding_aes_key (SCRM_WECOM__ENCODING_AES_KEY)"),
            "{err}"
        );
        assert!(err.contains("43 characters of base64"), "{err}");
    }

    #[test]
    fn bad_timezone_and_address() {
        let mut c = Config::default();
        c.org.timezone = "Mars/Olympus".into();
        c.server.addr = "nowhere".into();
        let err = c.validate(Needs::Storage).unwrap_err().to_string();
        assert!(
            err.contains("SCRM_ORG__TIMEZONE") && err.contains("SCRM_SERVER__ADDR"),
            "{err}"
        );
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let mut c = service_config();
        c.database.url = SecretString::from("postgres://app:hunter2@db.internal/scrm");
        c.redis.url = SecretString::from("redis://:redispass@cache:6379");
        let debug = format!("{c:?}");
        for secret in ["s3cret-value", "QDG6eK", "jWmYm7qr5nMo", "hunter2", "redispass"] {
            assert!(!debug.contains(secret), "{secret} leaked: {debug}");
        }
        assert!(debug.contains("db.internal"));
    }

    #[test]
    fn layering_env_over_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[server]\naddr = \"0.0.0.0:9000\"\n[org]\ntimezone = \"Europe/Berlin\"\n",
        )
        .unwrap();
        let figment = Figment::new()
            .merge(Toml::file(&file))
            .merge(Serialized::default("org.timezone", "Asia/Tokyo"));
        let c = Config::from_figment(figment).unwrap();
        assert_eq!(c.server.addr, "0.0.0.0:9000");
        assert_eq!(c.org.timezone, "Asia/Tokyo");
        assert_eq!(c.inbox.max_attempts, 8);
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_refused_with_the_key() {
        let err = Config::from_figment(Figment::new().merge(Serialized::default("wecom.corpid", "x"))).unwrap_err();
        assert!(err.to_string().contains("corpid"), "{err}");
        let err = Config::from_figment(Figment::new().merge(Serialized::default("wecom.agent_id", "abc"))).unwrap_err();
        assert!(err.to_string().to_lowercase().contains("agent_id"), "{err}");
    }

    #[test]
    fn redaction_and_sqlite_paths() {
        assert_eq!(
            redact_url("postgres://u:p@h:5432/d"),
            "postgres://u:[REDACTED]@h:5432/d"
        );
        assert_eq!(redact_url("postgres://u@h/d"), "postgres://u@h/d");
        assert_eq!(redact_url("sqlite://data/x.db"), "sqlite://data/x.db");
        assert_eq!(
            sqlite_path("sqlite://data/x.db?mode=rwc"),
            Some(PathBuf::from("data/x.db"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(env_name("wecom.corp_id"), "SCRM_WECOM__CORP_ID");
    }
}

#[cfg(test)]
mod default_file_tests {
    use super::*;

    /// The shipped `config/default.toml` documents the defaults; it must agree with the code.
    #[test]
    fn the_default_file_matches_the_built_in_defaults() {
        let from_file =
            Config::from_figment(Figment::new().merge(Toml::string(include_str!("../../config/default.toml"))))
                .unwrap();
        assert_eq!(format!("{from_file:?}"), format!("{:?}", Config::default()));
        assert_eq!(
            from_file.database.url.expose_secret(),
            Config::default().database.url.expose_secret()
        );
    }
}
