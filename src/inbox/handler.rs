//! What the worker asks of whoever handles stored callbacks: the [`InboxHandler`] trait, the
//! outcome of a row, and the errors that decide whether and when a row is tried again.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::db::entity::inbox;
use crate::wecom::api::WecomError;
use crate::wecom::callback::Callback;

/// What a handler did with a callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The work was done; the text says what, for `inbox list`.
    Processed(String),
    /// Nothing to do; the text says why.
    Ignored(String),
    /// The work was done and the row marked processed in the same transaction ([`finish_within`]),
    /// so the worker has nothing left to record.
    Committed(String),
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum HandlerError {
    /// Worth another attempt later (a timeout, an unavailable dependency).
    #[error("{0}")]
    Transient(String),
    /// Will fail the same way every time until something is fixed; the row is marked failed at
    /// once and can be replayed with `inbox retry`.
    #[error("{0}")]
    Permanent(String),
    /// A dependency is at capacity and said when to come back: the row waits that long and the
    /// attempt is not counted, so a burst larger than a budget is worked off as the budget allows
    /// instead of running out of attempts.
    #[error("{0}")]
    Deferred(String, Duration),
    /// The database failed: tried again later.
    #[error("database")]
    Db(#[from] sea_orm::DbErr),
    /// A WeCom call failed: tried again later; a spent call budget is waited out uncounted.
    #[error("WeCom")]
    Wecom(#[from] WecomError),
}

/// What the worker does with a failed row.
pub(super) enum Retry {
    Later,
    Deferred(Duration),
    Never,
}

impl HandlerError {
    pub(super) fn retry(&self) -> Retry {
        match self {
            Self::Transient(_) | Self::Db(_) => Retry::Later,
            Self::Wecom(WecomError::RateLimited { retry_after, .. }) => Retry::Deferred(*retry_after),
            Self::Wecom(_) => Retry::Later,
            Self::Deferred(_, after) => Retry::Deferred(*after),
            Self::Permanent(_) => Retry::Never,
        }
    }
}

pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Result<Outcome, HandlerError>> + Send + 'a>>;

/// What [`InboxHandler::handle_run`] returns: how many of the rows, from the first, it handled.
pub type RunFuture<'a> = Pin<Box<dyn Future<Output = Result<usize, HandlerError>> + Send + 'a>>;

/// A stored row with its callback read back.
pub type ParsedRow = (inbox::Model, Callback);

/// Does the work a callback calls for. Implementations must be idempotent: a row can be handled
/// again after a crash between the work and the outcome being recorded.
pub trait InboxHandler: Send + Sync + 'static {
    fn handle<'a>(&'a self, row: &'a inbox::Model, callback: &'a Callback) -> HandlerFuture<'a>;

    /// How many of a lane's next rows (in order) [`Self::handle_run`] takes together; below 2 the
    /// rows are handled one by one.
    fn run_length(&self, _rows: &[ParsedRow]) -> usize {
        0
    }

    /// Handles the first `run_length` rows together and records each one's outcome with its work
    /// ([`finish_within`]), in one transaction; returns how many it handled from the first (0: none,
    /// the worker handles them one by one). An error means nothing was committed: the worker then
    /// handles the rows one by one, each with its own outcome.
    fn handle_run<'a>(&'a self, _rows: &'a [ParsedRow]) -> RunFuture<'a> {
        Box::pin(async { Ok(0) })
    }
}

/// Records every callback's kind and marks it ignored: the handler used until a capability that
/// handles the kind is wired in.
#[derive(Debug, Default, Clone, Copy)]
pub struct UnhandledKinds;

impl InboxHandler for UnhandledKinds {
    fn handle<'a>(&'a self, row: &'a inbox::Model, _callback: &'a Callback) -> HandlerFuture<'a> {
        Box::pin(async move { Ok(Outcome::Ignored(format!("no handler for {}", row.kind))) })
    }
}
