//! The notification outbox: every message the service owes a member — a push of due reminders, the
//! agenda, a summary, an alert, a chat answer — goes through one delivery state machine
//! ([`MessageState`]). A message is queued with [`enqueue`] in the same transaction as the change
//! that calls for it, so it is neither lost when the process dies after the commit nor sent for a
//! change that rolled back, under a key that makes replays harmless. The [`Notifier`] of every
//! instance claims due messages with a lease, checks the lease, the member's send windows and what
//! the message carries right before each send, sends with WeCom's duplicate check over the whole
//! retry horizon, and records the outcome — each step one transaction, in which what the message
//! carries (the reminders of a push, through [`DeliveryHooks`]) moves with it.

mod distinct;
pub mod limit;
mod sender;

use std::time::Duration;

use futures_util::future::BoxFuture;
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, Set};
use serde::{Deserialize, Serialize};

pub use self::limit::MemberWindows;
pub use self::sender::{Attempted, Notifier, Prepared, Ready};
use crate::db::entity::outbox::{self, MessageState};
use crate::db::now_ms;
use crate::texts::split_lines;
use crate::wecom::api::{MAX_CONTENT_BYTES, MessageBody};

/// A queued message: what to send, the reminders it pushes (checked just before sending, settled
/// with its outcome), and the reminders the recipient's chat numbers after it arrives, so that
/// `完成 1` refers to them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    pub body: MessageBody,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reminders: Vec<ReminderRef>,
    /// The numbered list the recipient's session holds once this arrives; without it, the
    /// pushed reminders in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub numbered: Vec<i64>,
    /// For chat answers sent through the message API: each answer and its key, in order. Answers
    /// waiting for one member are merged into one numbered message ([`enqueue_answer`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<QueuedAnswer>,
}

/// One chat answer in a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedAnswer {
    pub key: String,
    pub text: String,
}

/// A reminder as it was when the message was written: a changed due time means a stale message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReminderRef {
    pub id: i64,
    pub due_at: i64,
}

impl Payload {
    pub fn of(body: MessageBody) -> Self {
        Self {
            body,
            reminders: Vec::new(),
            numbered: Vec::new(),
            answers: Vec::new(),
        }
    }

    /// Reads a stored payload (messages queued before payloads existed are a bare body).
    pub fn parse(stored: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str::<Payload>(stored).or_else(|_| serde_json::from_str::<MessageBody>(stored).map(Self::of))
    }

    /// The list the recipient's chat numbers once this message arrives.
    pub fn numbered_list(&self) -> Vec<i64> {
        if self.numbered.is_empty() {
            self.reminders.iter().map(|r| r.id).collect()
        } else {
            self.numbered.clone()
        }
    }
}

/// A claimed message with its payload read.
#[derive(Debug, Clone)]
pub struct Message {
    pub row: outbox::Model,
    pub payload: Payload,
}

/// What became of a send, recorded in one transaction with what the message carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent {
        msgid: String,
    },
    /// Tried again after `after`; with the error when the attempt failed (it counts), without when
    /// it only had to wait (a full member window, the API budget).
    Retry {
        after: Duration,
        error: Option<String>,
    },
    /// Not sent, for good; `recipient_refused` when WeCom refused the recipient (left, outside the
    /// app's visibility).
    Failed {
        reason: String,
        recipient_refused: bool,
    },
    /// Not sent, and not to be: what it said no longer holds.
    Dropped {
        reason: String,
    },
}

impl Outcome {
    pub fn state(&self) -> MessageState {
        match self {
            Self::Sent { .. } => MessageState::Sent,
            Self::Retry { .. } => MessageState::Pending,
            Self::Failed { .. } => MessageState::Failed,
            Self::Dropped { .. } => MessageState::Dropped,
        }
    }
}

/// Whether a message may still go, decided right before it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Send,
    Drop(String),
}

/// What a message carries, seen by the layer that put it there (the reminder pushes): the sender
/// calls these inside the transactions of the message's own transitions, so that the message and
/// what it carries move together — never one without the other.
pub trait DeliveryHooks: Send + Sync + 'static {
    /// Right before the first send, in the transaction that renews the lease: does what the message
    /// says still hold? A drop is recorded in the same transaction, with [`DeliveryHooks::settle`].
    /// (A message attempted before is not asked again: it may have arrived, and goes again as it was.)
    fn check<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        message: &'a Message,
        now: i64,
    ) -> BoxFuture<'a, Result<Verdict, DbErr>>;

    /// In the transaction that records the message's outcome.
    fn settle<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        message: &'a Message,
        outcome: &'a Outcome,
        now: i64,
    ) -> BoxFuture<'a, Result<(), DbErr>>;

    /// After that transaction committed: what lives outside the database (the chat's numbered
    /// list, counters). Best effort.
    fn committed<'a>(&'a self, message: &'a Message, outcome: &'a Outcome, now: i64) -> BoxFuture<'a, ()>;
}

/// Messages that carry nothing but their text.
pub struct PlainMessages;

impl DeliveryHooks for PlainMessages {
    fn check<'a>(
        &'a self,
        _: &'a DatabaseTransaction,
        _: &'a Message,
        _: i64,
    ) -> BoxFuture<'a, Result<Verdict, DbErr>> {
        Box::pin(async { Ok(Verdict::Send) })
    }

    fn settle<'a>(
        &'a self,
        _: &'a DatabaseTransaction,
        _: &'a Message,
        _: &'a Outcome,
        _: i64,
    ) -> BoxFuture<'a, Result<(), DbErr>> {
        Box::pin(async { Ok(()) })
    }

    fn committed<'a>(&'a self, _: &'a Message, _: &'a Outcome, _: i64) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

/// Queues `body` for `recipient` unless a message with `key` was queued before. Returns the ids
/// queued now (none for a replay; several when the text is longer than WeCom takes in one
/// message). Call inside the transaction of the change, then [`Notifier::wake`] after commit.
pub async fn enqueue(
    db: &impl ConnectionTrait,
    key: &str,
    recipient: &str,
    body: &MessageBody,
) -> Result<Vec<i64>, DbErr> {
    enqueue_payload(db, key, recipient, &Payload::of(body.clone())).await
}

/// [`enqueue`] with a payload. Content beyond WeCom's limit is split between lines into numbered
/// parts (`key`, `key#2`, …), each carrying the numbered list; a push of reminders is packed to fit
/// by its writer, since each part must carry its own reminders.
pub async fn enqueue_payload(
    db: &impl ConnectionTrait,
    key: &str,
    recipient: &str,
    payload: &Payload,
) -> Result<Vec<i64>, DbErr> {
    let mut ids = Vec::new();
    for (i, part) in parts(payload).into_iter().enumerate() {
        let key = if i == 0 {
            key.to_owned()
        } else {
            format!("{key}#{}", i + 1)
        };
        if let Some(id) = insert(db, &key, recipient, &part, now_ms()).await? {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// The payload as WeCom takes it: whole when its content fits, else in numbered parts.
fn parts(payload: &Payload) -> Vec<Payload> {
    let Some(content) = payload.body.content().filter(|c| c.len() > MAX_CONTENT_BYTES) else {
        return vec![payload.clone()];
    };
    debug_assert!(payload.reminders.is_empty(), "a push is packed to fit by its writer");
    // Room for the part marker `（1/2）`.
    let lines: Vec<String> = content.lines().map(str::to_owned).collect();
    let texts = split_lines(&lines, MAX_CONTENT_BYTES - 24);
    let n = texts.len();
    texts
        .into_iter()
        .enumerate()
        .map(|(i, text)| Payload {
            body: payload.body.with_content(format!("{text}\n（{}/{n}）", i + 1)),
            reminders: if i + 1 == n {
                payload.reminders.clone()
            } else {
                Vec::new()
            },
            numbered: payload.numbered.clone(),
            answers: Vec::new(),
        })
        .collect()
}

/// Where chat answers' keys begin: only they are merged.
const ANSWER_KEY: &str = "reply:";

/// Queues the answer to a chat message (`key`: `reply:<message>`) for `recipient`, once whatever
/// the replays. When an answer to the same member is still waiting (never attempted), this one
/// joins it as one numbered message, so that a burst of answers spends one of the member's
/// messages a minute instead of one each; a message would grow past WeCom's limit gets a new one.
/// A new message is due `gather` after it is queued, so that answers following it soon join it.
/// Call inside the transaction of the change, then [`Notifier::wake_after`] with the same `gather`
/// after commit.
pub async fn enqueue_answer(
    db: &impl ConnectionTrait,
    key: &str,
    recipient: &str,
    text: &str,
    gather: Duration,
) -> Result<(), DbErr> {
    let answer = QueuedAnswer {
        key: key.to_owned(),
        text: text.to_owned(),
    };
    enqueue_answers(db, recipient, vec![answer], gather).await
}

/// [`enqueue_answer`] for several answers to one member, in the order the messages came: the
/// waiting message is looked up once and as many join it as fit, the rest start new messages.
pub async fn enqueue_answers(
    db: &impl ConnectionTrait,
    recipient: &str,
    answers: Vec<QueuedAnswer>,
    gather: Duration,
) -> Result<(), DbErr> {
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};
    debug_assert!(answers.iter().all(|a| a.key.starts_with(ANSWER_KEY)));
    let mut waiting = outbox::Entity::find()
        .filter(outbox::Column::Recipient.eq(recipient))
        .filter(outbox::Column::Status.eq(MessageState::Pending))
        .filter(outbox::Column::FirstAttemptAt.is_null())
        .filter(outbox::Column::DedupeKey.starts_with(ANSWER_KEY))
        .order_by_desc(outbox::Column::Id);
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        // The sender skips it meanwhile (its claim skips locked rows).
        waiting = waiting.lock_exclusive();
    }
    let mut open = match waiting.one(db).await? {
        Some(row) => match Payload::parse(&row.body) {
            Ok(payload) if !payload.answers.is_empty() => Some(OpenAnswers::Waiting {
                id: row.id,
                payload,
                joined: Vec::new(),
            }),
            _ => None,
        },
        None => None,
    };
    let gather_ms = i64::try_from(gather.as_millis()).unwrap_or(i64::MAX);
    for answer in answers {
        if open.as_ref().is_some_and(|o| o.holds(&answer.key)) {
            continue;
        }
        if let Some(o) = open.as_mut()
            && o.join(&answer)
        {
            continue;
        }
        if let Some(full) = open.take() {
            full.store(db, recipient, gather_ms).await?;
        }
        if answer.text.len() > MAX_CONTENT_BYTES {
            // Too long to merge with anything: sent in parts like any long message.
            enqueue(db, &answer.key, recipient, &MessageBody::text(&answer.text)).await?;
        } else {
            let mut payload = Payload::of(MessageBody::text(&answer.text));
            payload.answers = vec![answer];
            open = Some(OpenAnswers::New(payload));
        }
    }
    if let Some(last) = open {
        last.store(db, recipient, gather_ms).await?;
    }
    Ok(())
}

/// The member's message that answers are joining.
enum OpenAnswers {
    /// Queued before and not attempted yet; `joined`: the answers added now.
    Waiting {
        id: i64,
        payload: Payload,
        joined: Vec<QueuedAnswer>,
    },
    /// Started now, stored under its first answer's key.
    New(Payload),
}

impl OpenAnswers {
    fn payload(&mut self) -> &mut Payload {
        match self {
            Self::Waiting { payload, .. } | Self::New(payload) => payload,
        }
    }

    fn holds(&self, key: &str) -> bool {
        match self {
            Self::Waiting { payload, .. } | Self::New(payload) => payload.answers.iter().any(|a| a.key == key),
        }
    }

    /// Adds `answer` when the numbered message still fits.
    fn join(&mut self, answer: &QueuedAnswer) -> bool {
        let payload = self.payload();
        payload.answers.push(answer.clone());
        let merged = numbered_answers(&payload.answers);
        if merged.len() > MAX_CONTENT_BYTES {
            payload.answers.pop();
            return false;
        }
        payload.body = MessageBody::text(merged);
        if let Self::Waiting { joined, .. } = self {
            joined.push(answer.clone());
        }
        true
    }

    async fn store(self, db: &impl ConnectionTrait, recipient: &str, gather_ms: i64) -> Result<(), DbErr> {
        use sea_orm::{ColumnTrait, QueryFilter};
        let (payload, key) = match self {
            Self::Waiting { joined, .. } if joined.is_empty() => return Ok(()),
            Self::Waiting { id, payload, joined } => {
                let updated = outbox::Entity::update_many()
                    .col_expr(
                        outbox::Column::Body,
                        sea_orm::sea_query::Expr::val(serde_json::to_string(&payload).expect("a payload serializes")),
                    )
                    .filter(outbox::Column::Id.eq(id))
                    .filter(outbox::Column::Status.eq(MessageState::Pending))
                    .filter(outbox::Column::FirstAttemptAt.is_null())
                    .exec(db)
                    .await?;
                if updated.rows_affected == 1 {
                    return Ok(());
                }
                // Taken by the sender meanwhile: the answers that joined go out as a new message.
                let mut fresh = Payload::of(MessageBody::text(numbered_answers(&joined)));
                fresh.answers = joined;
                let key = fresh.answers[0].key.clone();
                (fresh, key)
            }
            Self::New(payload) => {
                let key = payload.answers[0].key.clone();
                (payload, key)
            }
        };
        insert(db, &key, recipient, &payload, now_ms().saturating_add(gather_ms)).await?;
        Ok(())
    }
}

/// Several answers as one message: numbered, in the order the messages came.
fn numbered_answers(answers: &[QueuedAnswer]) -> String {
    if let [only] = answers {
        return only.text.clone();
    }
    answers
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{}. {}", i + 1, a.text))
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// Queues a message due at `due`.
async fn insert(
    db: &impl ConnectionTrait,
    key: &str,
    recipient: &str,
    payload: &Payload,
    due: i64,
) -> Result<Option<i64>, DbErr> {
    let now = now_ms();
    let inserted = outbox::Entity::insert(outbox::ActiveModel {
        dedupe_key: Set(key.chars().take(160).collect()),
        recipient: Set(recipient.to_owned()),
        body: Set(serde_json::to_string(payload).expect("a payload serializes")),
        status: Set(MessageState::Pending),
        attempts: Set(0),
        next_attempt_at: Set(due),
        created_at: Set(now),
        ..Default::default()
    })
    .on_conflict_do_nothing_on([outbox::Column::DedupeKey])
    .exec(db)
    .await?;
    Ok(match inserted {
        sea_orm::TryInsertResult::Inserted(done) => Some(done.last_insert_id),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_content_goes_out_in_numbered_parts_that_each_fit() {
        let lines: Vec<String> = (0..120).map(|i| format!("{i}. 客户跟进事项第{i}条")).collect();
        let payload = Payload {
            body: MessageBody::markdown(lines.join("\n")),
            reminders: Vec::new(),
            numbered: vec![1, 2, 3],
            answers: Vec::new(),
        };
        let parts = parts(&payload);
        assert!(parts.len() > 1);
        for (i, part) in parts.iter().enumerate() {
            let content = part.body.content().unwrap();
            assert!(content.len() <= MAX_CONTENT_BYTES, "part {i}: {} bytes", content.len());
            assert!(
                content.ends_with(&format!("（{}/{}）", i + 1, parts.len())),
                "{content}"
            );
            assert_eq!(part.numbered, vec![1, 2, 3], "every part keeps the numbered list");
        }
        let rejoined: Vec<&str> = parts
            .iter()
            .flat_map(|p| {
                let c = p.body.content().unwrap();
                c[..c.rfind('\n').unwrap()].lines().collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(rejoined.join("\n"), lines.join("\n"), "nothing lost or reordered");
        let short = Payload::of(MessageBody::text("短"));
        assert_eq!(super::parts(&short), vec![short]);
    }

    #[test]
    fn the_numbered_list_defaults_to_the_pushed_reminders() {
        let mut p = Payload::of(MessageBody::text("x"));
        p.reminders = vec![ReminderRef { id: 7, due_at: 1 }, ReminderRef { id: 3, due_at: 1 }];
        assert_eq!(p.numbered_list(), vec![7, 3]);
        p.numbered = vec![1, 7, 3];
        assert_eq!(p.numbered_list(), vec![1, 7, 3]);
    }
}
