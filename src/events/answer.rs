//! Answering a member exactly once. A chat message is answered with text, a click on a card's
//! button by the card showing what was done; either way the change and its answer are committed
//! together, then the answer goes to the request still waiting for it (a passive reply). When nobody
//! waits (a burst, or the request gave up), a chat answer is queued for the message API in that
//! same commit, and a card is updated through `message/update_template_card` with the click's
//! response code right after it. A replay finds the answer already recorded and never runs the
//! change twice; an answer recorded but not yet delivered is delivered (`reply_mode` says how).

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter};

use crate::db::begin_write;
use crate::db::entity::inbox;
use crate::inbox::{HandlerError, Outcome, finish_all_within, finish_within, keep_all_within};
use crate::notify;
use crate::services::Services;
use crate::wecom::api::CardUpdate;

/// How an answer goes out when no request waits for it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Fallback<'a> {
    /// Through `message/send`, queued in the outbox.
    Message,
    /// The clicked card updated with the click's response code.
    CardUpdate { response_code: &'a str },
}

/// Runs `change` (which returns the answer) once for `row`, and delivers its answer once.
pub(super) async fn answer_once(
    s: &Services,
    row: &inbox::Model,
    userid: &str,
    fallback: Fallback<'_>,
    change: impl AsyncFnOnce(&DatabaseTransaction) -> Result<String, DbErr>,
) -> Result<Outcome, HandlerError> {
    if let Some(reply) = &row.reply {
        // Answered before a crash or a replay: only make sure the answer went out.
        if row.reply_mode.is_none() {
            let mode = deliver(s, row, userid, reply, fallback).await?;
            mode_update(mode)
                .filter(inbox::Column::Id.eq(row.id))
                .exec(&s.db)
                .await?;
            s.metrics.answered(mode);
        }
        return Ok(Outcome::Processed("already answered".into()));
    }
    let txn = begin_write(&s.db).await?;
    let reply = change(&txn).await?;
    let set_reply = reply_update(&reply);
    let Some(waiter) = s.answers.take_waiter(&row.dedupe_key) else {
        let Fallback::Message = fallback else {
            // The change and its answer first; the card is updated after the commit (a failed
            // update leaves the answer recorded and undelivered: the retry delivers it).
            set_reply.filter(inbox::Column::Id.eq(row.id)).exec(&txn).await?;
            txn.commit().await?;
            let mode = deliver(s, row, userid, &reply, fallback).await?;
            return finish(s, row, mode).await;
        };
        // The change, its answer queued for the message API and the row's outcome commit together.
        queue_answer(s, &txn, row, userid, &reply).await?;
        let note = "answered (message)";
        let set_mode = set_reply.col_expr(inbox::Column::ReplyMode, Expr::val("message"));
        if !finish_within(&txn, row, set_mode, note).await? {
            txn.rollback().await?;
            return Err(lease_lost());
        }
        txn.commit().await?;
        s.notifier.wake_after(gather(s));
        s.metrics.answered("message");
        return Ok(Outcome::Committed(note.into()));
    };
    // The answer is committed before it is handed over, and its delivery mode recorded after: a
    // retry of the callback arriving in between waits for the mode rather than carry the answer too.
    set_reply.filter(inbox::Column::Id.eq(row.id)).exec(&txn).await?;
    txn.commit().await?;
    let mode = if waiter.send(Some(reply.clone())).is_ok() {
        "passive"
    } else {
        deliver_without_waiter(s, row, userid, &reply, fallback).await?
    };
    finish(s, row, mode).await
}

/// [`answer_once`] for a run of chat messages from one member, none answered yet, in the order they
/// came: `change` answers them all, and the changes, their answers and the outcomes of the rows
/// answered through the message API commit together. Answers to requests still waiting are handed
/// over after the commit and recorded then, as one. Returns how many rows were handled; on an error
/// nothing was committed and the rows are handled one by one.
pub(super) async fn answer_run(
    s: &Services,
    rows: &[&inbox::Model],
    userid: &str,
    change: impl AsyncFnOnce(&DatabaseTransaction) -> Result<Vec<String>, DbErr>,
) -> Result<usize, HandlerError> {
    let txn = begin_write(&s.db).await?;
    let replies = change(&txn).await?;
    if replies.len() != rows.len() {
        return Err(HandlerError::Permanent(format!(
            "{} answers to {} messages",
            replies.len(),
            rows.len()
        )));
    }
    let (mut waiting, mut queued) = (Vec::new(), Vec::new());
    for (row, reply) in rows.iter().copied().zip(replies) {
        match s.answers.take_waiter(&row.dedupe_key) {
            Some(waiter) => waiting.push((row, reply, waiter)),
            None => queued.push((row, reply)),
        }
    }
    let stored = match record_run(s, &txn, userid, &waiting, &queued).await {
        Ok(()) => txn.commit().await.map_err(HandlerError::from),
        Err(e) => Err(e),
    };
    if let Err(e) = stored {
        // Nothing was committed: the requests keep waiting for the rows handled one by one.
        for (row, _, waiter) in waiting {
            s.answers.wait_again(&row.dedupe_key, waiter);
        }
        return Err(e);
    }
    for _ in &queued {
        s.metrics.answered("message");
    }
    if !queued.is_empty() {
        s.notifier.wake_after(gather(s));
    }
    let mut passive = Vec::new();
    for (row, reply, waiter) in waiting {
        if waiter.send(Some(reply.clone())).is_ok() {
            passive.push(row);
            continue;
        }
        // The request gave up meanwhile. The answer is committed: a failure from here on leaves the
        // row to be taken over when its lease runs out, and the taker delivers the recorded answer.
        let delivered = match deliver_without_waiter(s, row, userid, &reply, Fallback::Message).await {
            Ok(mode) => finish(s, row, mode).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = delivered {
            tracing::warn!(row = row.id, error = %crate::telemetry::Chain(&e), "answer recorded, not yet delivered");
        }
    }
    if !passive.is_empty()
        && let Err(e) = finish_all(s, &passive, "passive").await
    {
        tracing::warn!(error = %crate::telemetry::Chain(&e), "answers handed over, their delivery not recorded yet");
    }
    Ok(rows.len())
}

/// A run's answers within its transaction: queued for the message API with the rows' outcomes, or
/// kept on the rows whose requests wait for them. Every row must still be leased to this worker.
async fn record_run(
    s: &Services,
    txn: &DatabaseTransaction,
    userid: &str,
    waiting: &[(&inbox::Model, String, tokio::sync::oneshot::Sender<Option<String>>)],
    queued: &[(&inbox::Model, String)],
) -> Result<(), HandlerError> {
    if !queued.is_empty() {
        let answers = queued
            .iter()
            .map(|(row, reply)| notify::QueuedAnswer {
                key: answer_key(row),
                text: reply.clone(),
            })
            .collect();
        notify::enqueue_answers(txn, userid, answers, gather(s)).await?;
    }
    // One statement for the rows answered through the message API and one for those whose
    // requests wait, each row given its own answer.
    if !queued.is_empty() {
        let rows: Vec<&inbox::Model> = queued.iter().map(|(row, _)| *row).collect();
        let update = replies_update(queued.iter().map(|(row, reply)| (*row, reply)))
            .col_expr(inbox::Column::ReplyMode, Expr::val("message"));
        if finish_all_within(txn, &rows, update, "answered (message)").await? < rows.len() as u64 {
            return Err(lease_lost());
        }
    }
    if !waiting.is_empty() {
        let rows: Vec<&inbox::Model> = waiting.iter().map(|(row, _, _)| *row).collect();
        let update = replies_update(waiting.iter().map(|(row, reply, _)| (*row, reply)));
        if keep_all_within(txn, &rows, update).await? < rows.len() as u64 {
            return Err(lease_lost());
        }
    }
    Ok(())
}

/// Sets each row's own answer (`CASE id WHEN … THEN …`); the caller picks the rows.
fn replies_update<'a>(
    replies: impl Iterator<Item = (&'a inbox::Model, &'a String)>,
) -> sea_orm::UpdateMany<inbox::Entity> {
    let mut case = sea_orm::sea_query::CaseStatement::new();
    for (row, reply) in replies {
        case = case.case(inbox::Column::Id.eq(row.id), Expr::val(reply.clone()));
    }
    let case = case.finally(Expr::col(inbox::Column::Reply));
    inbox::Entity::update_many().col_expr(inbox::Column::Reply, case.into())
}

fn reply_update(reply: &str) -> sea_orm::UpdateMany<inbox::Entity> {
    inbox::Entity::update_many().col_expr(inbox::Column::Reply, Expr::val(reply.to_owned()))
}

fn lease_lost() -> HandlerError {
    HandlerError::Transient("the row's lease ran out; the worker holding it now answers".into())
}

/// Records how the answer went out and the row's outcome.
async fn finish(s: &Services, row: &inbox::Model, mode: &'static str) -> Result<Outcome, HandlerError> {
    finish_all(s, &[row], mode).await
}

/// [`finish`] for rows whose answers went out the same way, in one statement.
async fn finish_all(s: &Services, rows: &[&inbox::Model], mode: &'static str) -> Result<Outcome, HandlerError> {
    for _ in rows {
        s.metrics.answered(mode);
    }
    let note = format!("answered ({mode})");
    if (finish_all_within(&s.db, rows, mode_update(mode), &note).await? as usize) < rows.len() {
        // Another worker holds a row now: it must find the answer delivered.
        mode_update(mode)
            .filter(inbox::Column::Id.is_in(rows.iter().map(|row| row.id)))
            .exec(&s.db)
            .await?;
    }
    Ok(Outcome::Committed(note))
}

/// Records how an answer went out (`reply_mode`), on the rows the caller filters.
fn mode_update(mode: &'static str) -> sea_orm::UpdateMany<inbox::Entity> {
    inbox::Entity::update_many().col_expr(inbox::Column::ReplyMode, Expr::val(mode))
}

/// Sends the answer once: to the waiting request, or the fallback's way; returns how (the caller
/// records it).
async fn deliver(
    s: &Services,
    row: &inbox::Model,
    userid: &str,
    reply: &str,
    fallback: Fallback<'_>,
) -> Result<&'static str, HandlerError> {
    if s.answers.offer(&row.dedupe_key, Some(reply.to_owned())) {
        Ok("passive")
    } else {
        deliver_without_waiter(s, row, userid, reply, fallback).await
    }
}

async fn deliver_without_waiter(
    s: &Services,
    row: &inbox::Model,
    userid: &str,
    reply: &str,
    fallback: Fallback<'_>,
) -> Result<&'static str, HandlerError> {
    match fallback {
        Fallback::Message => {
            // Queued with its mode recorded: a replay then finds it answered, even when it was
            // merged into an earlier answer's message and has no row of its own.
            let txn = begin_write(&s.db).await?;
            queue_answer(s, &txn, row, userid, reply).await?;
            mode_update("message")
                .filter(inbox::Column::Id.eq(row.id))
                .exec(&txn)
                .await?;
            txn.commit().await?;
            s.notifier.wake_after(gather(s));
            Ok("message")
        }
        Fallback::CardUpdate { response_code } => {
            match s.wecom.update_card_buttons(userid, response_code, reply).await? {
                CardUpdate::Updated => {}
                CardUpdate::CodeSpent => {
                    tracing::info!(row = row.id, "the card was updated before (its response code is spent)")
                }
            }
            Ok("update")
        }
    }
}

/// How long an answer queued for the message API waits for the member's next ones
/// (`outbox.answer_gather_ms`).
fn gather(s: &Services) -> std::time::Duration {
    std::time::Duration::from_millis(s.config.outbox.answer_gather_ms)
}

/// The outbox key of a message's answer.
fn answer_key(row: &inbox::Model) -> String {
    format!("reply:{}", row.dedupe_key)
}

/// Queues the answer for the message API (merged with the member's answers still waiting), once
/// per message whatever the replays.
async fn queue_answer(
    s: &Services,
    db: &impl ConnectionTrait,
    row: &inbox::Model,
    userid: &str,
    reply: &str,
) -> Result<(), DbErr> {
    notify::enqueue_answer(db, &answer_key(row), userid, reply, gather(s)).await
}
