//! The durable callback inbox. The HTTP handler hands every verified callback to the
//! [`InboxWriter`], which commits it (grouping concurrent callbacks into one commit) before the
//! handler answers WeCom; the [`InboxWorker`] then processes stored rows asynchronously, with retries
//! and a per-row outcome. A unique dedupe key makes WeCom's retries land on the same row.

mod admin;
pub mod answers;
mod worker;
mod writer;

pub use admin::{RetryTarget, list, retry};
pub use worker::{HandlerError, HandlerFuture, InboxHandler, InboxWorker, Outcome, UnhandledKinds, finish_within};
pub use writer::{InboxWriter, StoreError, StoreOutcome};

use crate::db::claim::ClaimColumns;
use crate::db::entity::inbox;
use crate::wecom::callback::Callback;

/// How workers claim inbox rows.
pub(crate) const CLAIM: ClaimColumns<inbox::Column, &str> = ClaimColumns {
    id: inbox::Column::Id,
    status: inbox::Column::Status,
    next_attempt_at: inbox::Column::NextAttemptAt,
    locked_by: inbox::Column::LockedBy,
    locked_until: inbox::Column::LockedUntil,
    attempts: inbox::Column::Attempts,
    ready: "pending",
    claimed: "processing",
    order: &[],
};

/// Where a row is in its life. Stored as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Waiting for (another) attempt at `next_attempt_at`.
    Pending,
    /// Claimed by a worker until `locked_until`.
    Processing,
    /// A handler did its work.
    Processed,
    /// Nothing to do for it (no handler for the kind, or not for us); the reason is in `outcome`.
    Ignored,
    /// Gave up after the configured attempts; the error is in `last_error`.
    Failed,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Self::Pending,
        Self::Processing,
        Self::Processed,
        Self::Ignored,
        Self::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Processed => "processed",
            Self::Ignored => "ignored",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A verified, decrypted callback ready to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCallback {
    pub dedupe_key: String,
    pub kind: String,
    pub from_user: Option<String>,
    pub agent_id: Option<i64>,
    pub create_time: i64,
    /// The decrypted inner XML, kept verbatim so a later fix can replay it.
    pub payload: String,
}

impl NewCallback {
    pub fn new(callback: &Callback, payload: String) -> Self {
        Self {
            dedupe_key: callback.dedupe_key.clone(),
            kind: callback.kind_name(),
            from_user: callback.subject_user().map(|u| u.chars().take(128).collect()),
            agent_id: callback.agent_id,
            create_time: callback.create_time,
            payload,
        }
    }
}
