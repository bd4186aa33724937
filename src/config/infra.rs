//! The settings of the running service: where it listens, its database, cache and WeCom app, its
//! queues and schedules, the chat's timing, and logging.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::redact_url;

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
    /// Where browsers are sent to sign in (`/connect/oauth2/authorize`): WeCom's, or a fake's.
    pub oauth_base: String,
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
            oauth_base: "https://open.weixin.qq.com".into(),
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

/// The web pages (the customer page in WeCom's chat sidebar) and their sign-in.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// Where members' browsers reach the service — the app's trusted domain in WeCom, e.g.
    /// `https://crm.example.com`. Pages are served, and page URLs signed, under it only; empty = the
    /// web pages are off (they answer that they are not configured).
    pub public_url: String,
    /// Signs sessions and sign-in states: at least 32 characters; empty = a key generated once and
    /// kept in the database (shared by every instance).
    pub session_key: SecretString,
    /// How long a sign-in lasts.
    pub session_ttl_secs: u64,
    /// How long a started sign-in may take to come back from WeCom.
    pub sign_in_ttl_secs: u64,
    /// WeCom's JS-SDK, loaded by the pages as WeCom documents it.
    pub jssdk_url: String,
    /// Members (userids) whose dashboard shows the whole org; a department leader's shows the
    /// departments they lead.
    pub dashboard_admins: Vec<String>,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            public_url: String::new(),
            session_key: SecretString::from(""),
            session_ttl_secs: 12 * 3600,
            sign_in_ttl_secs: 600,
            dashboard_admins: Vec::new(),
            jssdk_url: "https://wwcdn.weixin.qq.com/node/open/js/wecom-jssdk-2.3.4.js".into(),
        }
    }
}

impl fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebConfig")
            .field("public_url", &self.public_url)
            .field("session_key", &"[redacted]")
            .field("session_ttl_secs", &self.session_ttl_secs)
            .field("sign_in_ttl_secs", &self.sign_in_ttl_secs)
            .field("jssdk_url", &self.jssdk_url)
            .field("dashboard_admins", &self.dashboard_admins)
            .finish()
    }
}

impl WebConfig {
    /// The public URL without a trailing slash; `None` when the pages are off.
    pub fn base(&self) -> Option<&str> {
        let base = self.public_url.trim().trim_end_matches('/');
        (!base.is_empty()).then_some(base)
    }

    /// A customer's page, for links in pushed messages; `None` when the pages are off.
    pub fn customer_url(&self, external_userid: &str) -> Option<String> {
        let id: String = form_urlencoded::byte_serialize(external_userid.as_bytes()).collect();
        self.base().map(|base| format!("{base}/web/customers/{id}"))
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
    /// Lanes handled side by side (a lane: one member's chat, one customer's contact events, each
    /// in arrival order). 0: half the database pool, at most one per CPU core, at least 2 and at
    /// most 16.
    pub lanes: usize,
    /// Each lane claimed brings up to this many more of its waiting rows, handled together (a
    /// member's run of chat commands in one transaction). 0: one claim's rows only.
    pub lane_run: u64,
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
            lanes: 0,
            lane_run: 16,
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
    /// A chat answer that missed its response waits this long for the member's next answers, so
    /// that a burst goes out as one numbered message (fewer of the 30 messages a minute WeCom lets
    /// the app send a member, fewer sends). Such an answer is late already; this is small beside it.
    pub answer_gather_ms: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            send: true,
            poll_interval_ms: 1000,
            lease_secs: 60,
            max_attempts: 10,
            retry_base_ms: 2000,
            answer_gather_ms: 500,
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
    /// Reminder pushes and the agenda as template cards with buttons (完成 / 1小时后 / 明天9点);
    /// false: markdown, answered by chat commands only.
    pub cards: bool,
    /// `/readyz` fails when the dispatcher has not completed a round for this long.
    pub stale_after_secs: u64,
    /// `wecom-scrm status` reports (and fails on) reminder deliveries claimed or queued this long.
    pub stuck_after_secs: u64,
    /// When the morning agenda goes out (org timezone, HH:MM).
    pub agenda_time: String,
    /// When the managers' daily summary goes out (org timezone, HH:MM).
    pub summary_time: String,
    /// When every customer's score is recomputed, every day (org timezone, HH:MM).
    pub score_time: String,
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
            cards: true,
            stale_after_secs: 30,
            stuck_after_secs: 900,
            agenda_time: "09:00".into(),
            summary_time: "18:00".into(),
            score_time: "02:00".into(),
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
            max_waiting_replies: 1024,
            session_idle_secs: 1800,
            undo_window_secs: 600,
        }
    }
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
