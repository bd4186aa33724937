//! A member's chat session: the current customer, the last numbered list, and a pending question.
//! It lives in the cache (Redis when configured), so whichever instance receives the next message
//! continues the conversation; it expires after a configurable idle time.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::command::{Lang, Verb};
use crate::cache::Cache;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The customer commands apply to when none is named.
    pub current: Option<i64>,
    /// What the numbers in the last answer refer to.
    pub list: Option<List>,
    /// A question the next message may answer.
    pub pending: Option<Pending>,
    /// The language of the member's last command.
    pub lang: Lang,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum List {
    Customers(Vec<i64>),
    Reminders(Vec<i64>),
    /// Leads in the pool, as `公海` listed them (`领取 n`).
    Pool(Vec<i64>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Pending {
    /// Several customers matched: the answer is a number among `candidates`, then `verb` runs with
    /// `args` on that customer.
    Choose {
        candidates: Vec<i64>,
        verb: Verb,
        args: String,
    },
    /// Several open deals: the answer is a number among `deals`, then `action` applies to it.
    ChooseDeal {
        deals: Vec<i64>,
        action: super::deals::DealAction,
    },
    /// Text that was not a command, offered as a note on the current customer ("1" saves it).
    SaveNote { customer_id: i64, text: String },
    /// Text that was not a command but names a time: "1" saves it as a note, "2" saves it and sets
    /// a reminder at `due_at` (Unix ms) for `task`.
    SaveNoteOrRemind {
        customer_id: i64,
        text: String,
        due_at: i64,
        task: String,
    },
}

/// Loads and saves sessions. A cache failure never stops a command: the member starts with an
/// empty session and is told that context cannot be kept for now.
#[derive(Clone)]
pub struct Sessions {
    cache: Cache,
    idle: Duration,
}

/// A loaded session, and whether the cache could be read.
pub struct Loaded {
    pub session: Session,
    pub available: bool,
}

impl Sessions {
    pub fn new(cache: &Cache, idle: Duration) -> Self {
        Self {
            cache: cache.scoped("session:"),
            idle,
        }
    }

    pub async fn load(&self, userid: &str) -> Loaded {
        match self.cache.get(userid).await {
            Ok(Some(json)) => Loaded {
                session: serde_json::from_str(&json).unwrap_or_default(),
                available: true,
            },
            Ok(None) => Loaded {
                session: Session::default(),
                available: true,
            },
            Err(e) => {
                tracing::warn!(error = %e, "session cache unavailable; continuing without context");
                Loaded {
                    session: Session::default(),
                    available: false,
                }
            }
        }
    }

    /// Saves the session and restarts its idle time; false when the cache is unavailable.
    pub async fn save(&self, userid: &str, session: &Session) -> bool {
        let json = serde_json::to_string(session).expect("a session serializes");
        match self.cache.set(userid, &json, self.idle).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "session could not be saved");
                false
            }
        }
    }
}
