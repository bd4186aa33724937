//! The client's error taxonomy. Every non-zero `errcode` becomes [`WecomError::Api`] with the code
//! and message; what is retried, refreshed or reported as a configuration problem is decided here.

use std::time::Duration;

/// WeCom error codes the client acts on.
pub mod codes {
    pub const SYSTEM_BUSY: i64 = -1;
    pub const INVALID_CREDENTIAL: i64 = 40001;
    pub const INVALID_CORPID: i64 = 40013;
    pub const INVALID_ACCESS_TOKEN: i64 = 40014;
    pub const ACCESS_TOKEN_EXPIRED: i64 = 42001;
    pub const MISSING_ACCESS_TOKEN: i64 = 41001;
    pub const API_FREQ_LIMIT: i64 = 45009;
    pub const CONCURRENCY_LIMIT: i64 = 45033;
    pub const WELCOME_ALREADY_SENT: i64 = 41051;
    pub const WELCOME_BEING_SENT: i64 = 41096;
    pub const NO_RELATIONSHIP: i64 = 84061;
    pub const USER_NOT_FOUND: i64 = 60111;
    pub const INVALID_EXTERNAL_USERID: i64 = 40096;
    pub const ALL_RECIPIENTS_INVALID: i64 = 81013;
    pub const INVALID_PARAMETER: i64 = 40058;
    pub const INVALID_AGENTID: i64 = 40056;
    /// A template card's task id was used before (or is empty or too long).
    pub const TASK_ID_EXISTS: i64 = 42014;
    /// A template card's response code was used already, or is past its 72 hours.
    pub const RESPONSE_CODE_SPENT: i64 = 60140;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WecomError {
    /// WeCom answered with a non-zero errcode.
    #[error("{call} failed: errcode {code}: {message}")]
    Api {
        call: &'static str,
        code: i64,
        message: String,
    },
    /// The credentials cannot work: fix the configuration (never retried).
    #[error(
        "WeCom refused the credentials (gettoken errcode {code}: {message}); check wecom.corp_id and wecom.secret (SCRM_WECOM__CORP_ID / SCRM_WECOM__SECRET)"
    )]
    Config { code: i64, message: String },
    /// An HTTP status other than 200.
    #[error("{call} failed: HTTP {status}")]
    Http { call: &'static str, status: u16 },
    /// No answer: connection refused, timeout, broken body.
    #[error("{call} failed: {message}")]
    Transport {
        call: &'static str,
        message: String,
        timeout: bool,
    },
    #[error("{call} answered something that is not the expected JSON: {message}")]
    Decode { call: &'static str, message: String },
    /// Our own limiter: this API's per-minute budget is spent.
    #[error("{call} is over its per-minute call budget; retry in {retry_after:?}")]
    RateLimited { call: &'static str, retry_after: Duration },
    /// The caller's condition no longer held right before the request would have gone out: nothing
    /// was sent.
    #[error("{call} not made: it could not go out in time after its checks")]
    Late { call: &'static str },
    /// `message/send` reported the recipient as invalid (left the corp, outside the app's visibility).
    #[error("{user} cannot receive app messages (invaliduser)")]
    InvalidRecipient { user: String },
}

impl WecomError {
    /// The WeCom errcode, when WeCom gave one.
    pub fn code(&self) -> Option<i64> {
        match self {
            Self::Api { code, .. } | Self::Config { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Worth retrying with backoff: system busy, rate limits, 5xx, timeouts.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Api { code, .. } => {
                matches!(
                    *code,
                    codes::SYSTEM_BUSY | codes::API_FREQ_LIMIT | codes::CONCURRENCY_LIMIT
                )
            }
            Self::Http { status, .. } => *status >= 500 || *status == 429,
            Self::Transport { .. } => true,
            _ => false,
        }
    }

    /// The access token was refused: drop it, fetch a new one, retry once.
    pub fn is_token_rejected(&self) -> bool {
        matches!(
            self.code(),
            Some(codes::INVALID_CREDENTIAL | codes::INVALID_ACCESS_TOKEN | codes::ACCESS_TOKEN_EXPIRED)
        ) && matches!(self, Self::Api { .. })
    }
}
