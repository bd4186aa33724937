//! Configuration, built once at start-up: code defaults < `config/default.toml` < `--config FILE` <
//! environment (`SCRM_<SECTION>__<KEY>`). Secrets are [`SecretString`]s, so neither `Debug` nor a log
//! line can print them. [`Config::validate`] checks meaning (not just types) and names the key at
//! fault in both its TOML and its environment spelling.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

pub const ENV_PREFIX: &str = "SCRM_";
pub const DEFAULT_FILE: &str = "config/default.toml";

/// Environment variables that share our prefix but are not configuration keys.
const NON_CONFIG_ENV: &[&str] = &["test_database_url", "test_redis_url", "config"];

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
    /// Follow-up plans by lead status.
    pub plans: Vec<Plan>,
    /// Stale-lead nudges by stage.
    pub stale: Vec<StaleRule>,
    /// Lead channels to create or update at start-up (more can be managed later without a restart).
    pub channels: Vec<ChannelSeed>,
    pub log: LogConfig,
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
            plans: default_plans(),
            stale: default_stale_rules(),
            channels: Vec::new(),
            log: Default::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free port.
    pub addr: String,
    /// Upper bound for any one HTTP request.
    pub request_timeout_secs: u64,
    /// How long shutdown waits for in-flight requests and the worker's current row.
    pub shutdown_grace_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:8080".into(),
            request_timeout_secs: 10,
            shutdown_grace_secs: 20,
        }
    }
}

#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://path?mode=rwc` or `postgres://user:pass@host/db`.
    pub url: SecretString,
    /// Apply pending migrations when `serve` starts.
    pub auto_migrate: bool,
    pub max_connections: u32,
    pub connect_timeout_secs: u64,
    /// PostgreSQL only: the schema to use (created if missing). Empty means the server default.
    pub schema: String,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: SecretString::from("sqlite://data/wecom-scrm.db?mode=rwc"),
            auto_migrate: true,
            max_connections: 10,
            connect_timeout_secs: 5,
            schema: String::new(),
        }
    }
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &redact_url(self.url.expose_secret()))
            .field("auto_migrate", &self.auto_migrate)
            .field("max_connections", &self.max_connections)
            .field("schema", &self.schema)
            .finish()
    }
}

#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// Empty: an in-process cache (one instance only).
    pub url: SecretString,
    /// Prepended to every key, so several deployments (or test runs) can share one Redis.
    pub key_prefix: String,
    /// Entry bound of the in-process cache.
    pub memory_capacity: usize,
    pub connect_timeout_ms: u64,
    pub response_timeout_ms: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: SecretString::from(""),
            key_prefix: "scrm:".into(),
            memory_capacity: 100_000,
            connect_timeout_ms: 1000,
            response_timeout_ms: 500,
        }
    }
}

impl RedisConfig {
    pub fn is_configured(&self) -> bool {
        !self.url.expose_secret().trim().is_empty()
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact_url(self.url.expose_secret()))
            .field("key_prefix", &self.key_prefix)
            .field("memory_capacity", &self.memory_capacity)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WecomConfig {
    pub corp_id: String,
    pub agent_id: i64,
    /// The app's secret, for the server API.
    pub secret: SecretString,
    /// The callback token set in the admin console.
    pub token: SecretString,
    /// The callback EncodingAESKey: 43 characters of base64.
    pub encoding_aes_key: SecretString,
    pub api_base: String,
    /// Callbacks whose `timestamp` is further than this from now are refused; 0 turns it off.
    pub max_timestamp_age_secs: u64,
    /// Per API request.
    pub request_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    /// Attempts for a call that fails transiently (busy, rate-limited, 5xx, timeout).
    pub max_attempts: u32,
    /// Total time one call may spend on retries.
    pub retry_budget_ms: u64,
    /// First retry delay (exponential with full jitter after that).
    pub retry_base_ms: u64,
    /// API calls in flight at once from one instance.
    pub max_concurrency: usize,
    /// Calls per API per minute from all instances (WeCom allows 10,000).
    pub api_calls_per_minute: i64,
    /// App messages per member per minute / per hour (WeCom silently drops beyond 30 / 1,000).
    pub messages_per_user_per_minute: u32,
    pub messages_per_user_per_hour: u32,
    /// Refresh the access token this long before WeCom says it expires.
    pub token_refresh_margin_secs: u64,
}

impl Default for WecomConfig {
    fn default() -> Self {
        Self {
            corp_id: String::new(),
            agent_id: 0,
            secret: SecretString::from(""),
            token: SecretString::from(""),
            encoding_aes_key: SecretString::from(""),
            api_base: "https://qyapi.weixin.qq.com".into(),
            max_timestamp_age_secs: 1800,
            request_timeout_ms: 10_000,
            connect_timeout_ms: 3_000,
            max_attempts: 4,
            retry_budget_ms: 15_000,
            retry_base_ms: 250,
            max_concurrency: 5,
            api_calls_per_minute: 4_500,
            messages_per_user_per_minute: 28,
            messages_per_user_per_hour: 950,
            token_refresh_margin_secs: 300,
        }
    }
}

/// A lead status: what follow-up plans and channels name in the configuration, and what a customer
/// carries. Stored and configured by its key; chat accepts every spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeadStatus {
    Qualified,
    Interested,
    Hot,
    OnHold,
    Inactive,
}

impl LeadStatus {
    pub const ALL: [Self; 5] = [
        Self::Qualified,
        Self::Interested,
        Self::Hot,
        Self::OnHold,
        Self::Inactive,
    ];

    /// How it is stored and configured.
    pub fn key(self) -> &'static str {
        match self {
            Self::Qualified => "qualified",
            Self::Interested => "interested",
            Self::Hot => "hot",
            Self::OnHold => "on_hold",
            Self::Inactive => "inactive",
        }
    }

    /// Its Chinese name.
    pub fn label(self) -> &'static str {
        match self {
            Self::Qualified => "确定",
            Self::Interested => "有兴趣",
            Self::Hot => "热",
            Self::OnHold => "观望",
            Self::Inactive => "停止",
        }
    }

    fn spellings(self) -> &'static [&'static str] {
        match self {
            Self::Qualified => &["qualified", "确定", "已确定"],
            Self::Interested => &["interested", "有兴趣", "感兴趣"],
            Self::Hot => &["hot", "热", "热门"],
            Self::OnHold => &["on_hold", "on-hold", "onhold", "hold", "观望"],
            Self::Inactive => &["inactive", "停止", "无效"],
        }
    }

    /// The status a stored or configured key names.
    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.key() == key)
    }

    /// The status `text` names, in any accepted spelling (either language, any case).
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim().to_lowercase();
        Self::ALL.into_iter().find(|s| s.spellings().contains(&t.as_str()))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrgConfig {
    /// IANA zone in which times are shown and parsed.
    pub timezone: String,
}

impl Default for OrgConfig {
    fn default() -> Self {
        Self {
            timezone: "Asia/Shanghai".into(),
        }
    }
}

impl OrgConfig {
    pub fn tz(&self) -> chrono_tz::Tz {
        self.timezone.parse().unwrap_or(chrono_tz::Asia::Shanghai)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InboxConfig {
    /// Process stored callbacks in this instance. `false` makes an instance that only receives and
    /// stores them (a receiving tier) while other instances on the same database process them; its
    /// chat messages are then always answered through the message API.
    pub process: bool,
    /// Fallback poll for rows stored by other instances or left by a restart; new rows wake the
    /// worker at once.
    pub poll_interval_ms: u64,
    /// Rows claimed per round.
    pub claim_batch: u64,
    /// A claimed row not finished within this is considered abandoned and claimed again.
    pub lease_secs: u64,
    /// Attempts before a row is marked failed.
    pub max_attempts: i32,
    /// Most callbacks committed together in one group commit.
    pub write_batch: usize,
    /// First retry delay after a failed attempt; doubles per attempt up to 10 minutes.
    pub retry_base_ms: u64,
}

impl Default for InboxConfig {
    fn default() -> Self {
        Self {
            process: true,
            poll_interval_ms: 1000,
            claim_batch: 32,
            lease_secs: 60,
            max_attempts: 8,
            write_batch: 256,
            retry_base_ms: 2000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboxConfig {
    /// Send queued messages from this instance. `false` leaves them to the other instances on the
    /// same database (e.g. an instance that only serves the admin API).
    pub send: bool,
    /// Fallback poll for messages queued by other instances (new ones wake the sender at once).
    pub poll_interval_ms: u64,
    /// A message being sent is taken over by another instance after this long.
    pub lease_secs: u64,
    pub max_attempts: i32,
    pub retry_base_ms: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            send: true,
            poll_interval_ms: 1000,
            lease_secs: 60,
            max_attempts: 10,
            retry_base_ms: 2000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CustomersConfig {
    /// The welcome message for customers whose channel has none; `{name}` and `{rep}` are filled in.
    pub welcome_message: String,
    /// Receives a departed rep's customers when no department leader can.
    pub handover_fallback: String,
    /// Also start WeCom's resigned transfer (离职继承) to the successor when a rep leaves.
    pub resigned_transfer: bool,
    /// A rep losing more customers than this in one day alerts their leader (once that day).
    pub mass_deletion_threshold: u32,
}

impl Default for CustomersConfig {
    fn default() -> Self {
        Self {
            welcome_message: "您好{name}，我是{rep}，很高兴为您服务！有任何问题随时在这里找我。".into(),
            handover_fallback: String::new(),
            resigned_transfer: false,
            mass_deletion_threshold: 10,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Run the periodic jobs in this instance (several instances may all run them: each run happens
    /// once).
    pub enabled: bool,
    /// How often members and departments are re-read from WeCom (member events may not arrive).
    pub org_sync_interval_secs: u64,
    /// How often customer relations are compared with WeCom and repaired.
    pub reconcile_interval_secs: u64,
    /// Import everything from WeCom when `serve` starts on a database without customers.
    pub sync_on_empty_start: bool,
    /// Push due reminders from this instance (every instance may: each reminder goes out once).
    pub push_reminders: bool,
    /// How often the reminder dispatcher looks for due reminders.
    pub poll_interval_ms: u64,
    /// Reminders claimed per round.
    pub claim_batch: u64,
    /// A claimed reminder not queued within this is taken over by another instance.
    pub lease_secs: u64,
    /// Reminders due for one rep at the same time are merged, at most this many per message.
    pub merge_max: usize,
    /// `/readyz` fails when the dispatcher has not completed a round for this long.
    pub stale_after_secs: u64,
    /// `wecom-scrm status` reports (and fails on) reminder deliveries claimed or queued this long.
    pub stuck_after_secs: u64,
    /// When the morning agenda goes out (org timezone, HH:MM).
    pub agenda_time: String,
    /// When the managers' daily summary goes out (org timezone, HH:MM).
    pub summary_time: String,
    /// Days the agenda and the summary go out: 1 = Monday … 7 = Sunday.
    pub workdays: Vec<u32>,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            org_sync_interval_secs: 3600,
            reconcile_interval_secs: 86_400,
            sync_on_empty_start: true,
            push_reminders: true,
            poll_interval_ms: 1000,
            claim_batch: 200,
            lease_secs: 60,
            merge_max: 10,
            stale_after_secs: 30,
            stuck_after_secs: 900,
            agenda_time: "09:00".into(),
            summary_time: "18:00".into(),
            workdays: vec![1, 2, 3, 4, 5],
        }
    }
}

impl JobsConfig {
    /// A configured `HH:MM`; validated at start-up.
    pub fn time_of(text: &str) -> Option<chrono::NaiveTime> {
        chrono::NaiveTime::parse_from_str(text.trim(), "%H:%M").ok()
    }
}

/// One step of a follow-up plan: a reminder this many hours after the customer entered the status.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PlanStep {
    pub after_hours: u32,
    pub text: String,
}

/// A follow-up plan ("sales playbook"): the reminders a customer entering `status` gets.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// A lead status key: qualified, interested, hot, on_hold, inactive.
    pub status: String,
    pub steps: Vec<PlanStep>,
}

/// When a customer in an open stage without follow-ups is nudged: the owner after
/// `remind_after_days`, their leader too after `escalate_after_days`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StaleRule {
    /// The stage this applies to; empty for every open stage without its own rule.
    #[serde(default)]
    pub stage: String,
    pub remind_after_days: u32,
    pub escalate_after_days: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SummaryConfig {
    /// Members who get the summary of the whole org besides the department leaders.
    pub extra_recipients: Vec<String>,
    /// Customers without follow-up for this many days in an open stage are listed as at risk.
    pub at_risk_after_days: u32,
}

impl Default for SummaryConfig {
    fn default() -> Self {
        Self {
            extra_recipients: Vec::new(),
            at_risk_after_days: 7,
        }
    }
}

fn default_plans() -> Vec<Plan> {
    let step = |after_hours, text: &str| PlanStep {
        after_hours,
        text: text.into(),
    };
    vec![
        Plan {
            status: "hot".into(),
            steps: vec![
                step(24, "电话跟进"),
                step(48, "发送产品资料"),
                step(168, "再次电话跟进"),
            ],
        },
        Plan {
            status: "interested".into(),
            steps: vec![step(72, "了解需求进展"), step(336, "回访")],
        },
        Plan {
            status: "qualified".into(),
            steps: vec![step(24, "确认报价和合同细节")],
        },
    ]
}

fn default_stale_rules() -> Vec<StaleRule> {
    vec![StaleRule {
        stage: String::new(),
        remind_after_days: 7,
        escalate_after_days: 14,
    }]
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BotConfig {
    /// A reminder set for a day without a time is due at this hour (org timezone).
    pub default_hour: u32,
    /// A command answered within this long is answered in the callback's own response (a passive
    /// reply); slower ones are answered through the message API.
    pub reply_budget_ms: u64,
    /// At most this many callback requests of one instance wait for their answer at once; beyond
    /// it (a burst, a backlog) messages are acknowledged at once and answered through the message
    /// API, so a burst does not hold thousands of connections open.
    pub max_waiting_replies: usize,
    /// A chat session (current customer, last list, pending question) lasts this long idle.
    pub session_idle_secs: u64,
    /// `undo` reaches back this far.
    pub undo_window_secs: u64,
}

impl Default for BotConfig {
    fn default() -> Self {
        Self {
            default_hour: 9,
            reply_budget_ms: 2000,
            max_waiting_replies: 8,
            session_idle_secs: 1800,
            undo_window_secs: 600,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SalesConfig {
    /// Deal stages in order; the last two are the closed ones (won, lost).
    pub stages: Vec<String>,
}

impl Default for SalesConfig {
    fn default() -> Self {
        Self {
            stages: ["初步接触", "需求确认", "方案报价", "商务谈判", "赢单", "输单"]
                .map(String::from)
                .to_vec(),
        }
    }
}

/// A lead channel as written: in the configuration, or to the admin API.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ChannelInput)]
pub struct ChannelSeed {
    pub state: String,
    pub name: String,
    #[serde(default)]
    pub welcome: Option<String>,
    /// A lead status whose follow-up plan the channel's customers get: hot, interested,
    /// qualified, on_hold or inactive (or their Chinese names).
    #[serde(default)]
    pub plan: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter, e.g. `info` or `wecom_scrm=debug,info`; `RUST_LOG` overrides it.
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: "text".into(),
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
        ] {
            if JobsConfig::time_of(value).is_none() {
                problem(key, format!("{value:?} is not a time like 09:00"));
            }
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
        if self.inbox.max_attempts < 1 {
            problem("inbox.max_attempts", "must be at least 1".into());
        }
        if !(self.wecom.api_base.starts_with("http://") || self.wecom.api_base.starts_with("https://")) {
            problem("wecom.api_base", "must be an http:// or https:// URL".into());
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
            Config::from_figment(Figment::new().merge(Toml::string(include_str!("../config/default.toml")))).unwrap();
        assert_eq!(format!("{from_file:?}"), format!("{:?}", Config::default()));
        assert_eq!(
            from_file.database.url.expose_secret(),
            Config::default().database.url.expose_secret()
        );
    }
}
