//! The durable callback inbox. The HTTP handler hands every verified callback to the
//! [`InboxWriter`], which commits it (grouping concurrent callbacks into one commit) before the
//! handler answers WeCom; the [`InboxWorker`] then processes stored rows asynchronously, with retries
//! and a per-row outcome. A unique dedupe key makes WeCom's retries land on the same row.

mod admin;
pub mod answers;
mod handler;
mod held_back;
mod lease;
mod worker;
mod writer;

pub use admin::{RetryTarget, list, retry};
pub use handler::{HandlerError, HandlerFuture, InboxHandler, Outcome, ParsedRow, RunFuture, UnhandledKinds};
pub use lease::{finish_all_within, finish_within, keep_all_within};
pub use worker::InboxWorker;
pub use writer::{InboxWriter, StoreError, StoreOutcome};

use crate::db::claim::ClaimColumns;
use crate::db::entity::inbox;
use crate::wecom::callback::Callback;

/// How workers claim inbox rows.
pub(crate) const CLAIM: ClaimColumns<inbox::Column, Status> = ClaimColumns {
    id: inbox::Column::Id,
    status: inbox::Column::Status,
    next_attempt_at: inbox::Column::NextAttemptAt,
    locked_by: inbox::Column::LockedBy,
    locked_until: inbox::Column::LockedUntil,
    attempts: inbox::Column::Attempts,
    ready: Status::Pending,
    claimed: Status::Processing,
    order: &[],
};

/// The advisory lock inbox claims take turns on (PostgreSQL, with the schema as its second key), so
/// two instances never both take rows of one lane.
pub(crate) const CLAIM_TURN: i32 = 0x5c4d_1b0c;

pub use crate::db::entity::inbox::InboxStatus as Status;

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
    /// Rows of one lane are handled in arrival order ([`lane_of`]).
    pub lane: Option<String>,
}

/// The lane a callback is handled in: a customer's contact events in the order they happened
/// (whichever member they concern), everything else a member does or is told in theirs.
pub fn lane_of(callback: &Callback) -> Option<String> {
    use crate::wecom::callback::CallbackKind;
    let lane = match &callback.kind {
        CallbackKind::ExternalContact(e) if !e.external_user_id.is_empty() => format!("c:{}", e.external_user_id),
        CallbackKind::Unknown { .. } => return None,
        _ => format!("u:{}", callback.subject_user()?),
    };
    Some(lane.chars().take(160).collect())
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
            lane: lane_of(callback),
        }
    }
}
