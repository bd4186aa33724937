//! Group commit for the inbox. Each HTTP handler submits its row and waits; one writer task takes
//! whatever rows are queued (up to `write_batch`) and stores them with a single
//! `INSERT … ON CONFLICT (dedupe_key) DO NOTHING RETURNING id` — one commit, one fsync, however many
//! callbacks. A handler is answered only after that commit, so nothing is acknowledged before it is
//! durable. Under light load a batch is one row and costs no extra latency.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use sea_orm::sea_query::{OnConflict, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityName, Iden, RuntimeErr, sqlx};
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{NewCallback, Status};
use crate::db::entity::inbox;
use crate::db::now_ms;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOutcome {
    /// Newly stored with this id.
    Stored(i64),
    /// A row with the same dedupe key already exists (a WeCom retry).
    Duplicate,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("the inbox writer has stopped")]
    Stopped,
}

struct Request {
    row: NewCallback,
    reply: oneshot::Sender<Result<StoreOutcome, StoreError>>,
}

/// Submits callbacks to the writer task; cheap to clone. The task ends once every handle is dropped
/// and the queue is drained.
#[derive(Clone)]
pub struct InboxWriter {
    tx: mpsc::Sender<Request>,
}

impl InboxWriter {
    /// Starts the writer task. `stored` is notified whenever new rows were committed.
    pub fn spawn(db: DatabaseConnection, write_batch: usize, stored: Arc<Notify>) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(write_batch.max(1) * 4);
        let handle = tokio::spawn(write_loop(db, rx, write_batch.max(1), stored));
        (Self { tx }, handle)
    }

    /// Stores one callback durably, or reports why it could not be stored.
    pub async fn store(&self, row: NewCallback) -> Result<StoreOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Request { row, reply })
            .await
            .map_err(|_| StoreError::Stopped)?;
        answer.await.map_err(|_| StoreError::Stopped)?
    }
}

/// Batches committed at the same time. While one batch waits for its commit the next one is already
/// being written, so the commit latency does not cap the rate. SQLite has a single writer anyway.
/// Two batches holding retries of the same two messages in opposite orders can deadlock; PostgreSQL
/// then aborts one of them, whose requests get 503 and are retried by WeCom: nothing is lost.
fn parallel_commits(db: &DatabaseConnection) -> usize {
    match db.get_database_backend() {
        DbBackend::Postgres => 4,
        _ => 1,
    }
}

async fn write_loop(db: DatabaseConnection, mut rx: mpsc::Receiver<Request>, max: usize, stored: Arc<Notify>) {
    let parallel = parallel_commits(&db);
    let slots = Arc::new(Semaphore::new(parallel));
    let mut batch = Vec::with_capacity(max);
    while rx.recv_many(&mut batch, max).await > 0 {
        let slot = slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let requests = std::mem::replace(&mut batch, Vec::with_capacity(max));
        let (db, stored) = (db.clone(), stored.clone());
        tokio::spawn(async move {
            commit(&db, requests, &stored).await;
            drop(slot);
        });
    }
    // Every batch taken is committed (or failed) before the writer reports that it has stopped.
    let _ = slots.acquire_many(parallel as u32).await;
}

/// Stores one batch and answers each of its requests.
async fn commit(db: &DatabaseConnection, batch: Vec<Request>, stored: &Notify) {
    let rows: Vec<&NewCallback> = batch.iter().map(|r| &r.row).collect();
    let started = std::time::Instant::now();
    match insert_batch(db, &rows).await {
        Ok(outcomes) => {
            tracing::debug!(
                rows = rows.len(),
                elapsed_us = started.elapsed().as_micros() as u64,
                "inbox batch committed"
            );
            if outcomes.iter().any(|o| matches!(o, StoreOutcome::Stored(_))) {
                stored.notify_one();
            }
            for (request, outcome) in batch.into_iter().zip(outcomes) {
                let _ = request.reply.send(Ok(outcome));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, rows = batch.len(), "inbox write failed");
            let error = StoreError::Unavailable(e.to_string());
            for request in batch {
                let _ = request.reply.send(Err(error.clone()));
            }
        }
    }
}

/// Inserts the rows in one statement; returns an outcome per input row, in order. Rows repeating a
/// key already in the batch are duplicates without touching the database.
async fn insert_batch(db: &DatabaseConnection, rows: &[&NewCallback]) -> Result<Vec<StoreOutcome>, DbErr> {
    let mut first_of_key: HashMap<&str, usize> = HashMap::with_capacity(rows.len());
    let mut unique = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        if let Entry::Vacant(slot) = first_of_key.entry(&row.dedupe_key) {
            slot.insert(i);
            unique.push(*row);
        }
    }
    let ids = match db.get_database_backend() {
        DbBackend::Postgres => insert_postgres(db, &unique).await?,
        _ => insert_values(db, &unique).await?,
    };
    Ok(rows
        .iter()
        .enumerate()
        .map(|(i, row)| match ids.get(row.dedupe_key.as_str()) {
            Some(&id) if first_of_key[row.dedupe_key.as_str()] == i => StoreOutcome::Stored(id),
            _ => StoreOutcome::Duplicate,
        })
        .collect())
}

/// PostgreSQL: the rows travel as one array per column, so every batch, whatever its size, runs the
/// same prepared statement (a `VALUES` list would be parsed and planned anew for each batch size).
const INSERT_UNNEST: &str = r#"INSERT INTO inbox
    (dedupe_key, kind, from_user, agent_id, create_time, payload, lane, status, attempts, next_attempt_at, received_at)
SELECT k, t, u, a, c, p, l, 'pending', 0, $8, $8
FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[], $6::text[], $7::text[]) AS r(k, t, u, a, c, p, l)
ON CONFLICT (dedupe_key) DO NOTHING
RETURNING id, dedupe_key"#;

/// The ids of the rows inserted, by dedupe key (rows already stored are not returned).
async fn insert_postgres(db: &DatabaseConnection, rows: &[&NewCallback]) -> Result<HashMap<String, i64>, DbErr> {
    let column = |f: for<'r> fn(&'r NewCallback) -> &'r str| rows.iter().map(|r| f(r)).collect::<Vec<&str>>();
    let inserted: Vec<(i64, String)> = sqlx::query_as(INSERT_UNNEST)
        .bind(column(|r| &r.dedupe_key))
        .bind(column(|r| &r.kind))
        .bind(rows.iter().map(|r| r.from_user.as_deref()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.agent_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.create_time).collect::<Vec<_>>())
        .bind(column(|r| &r.payload))
        .bind(rows.iter().map(|r| r.lane.as_deref()).collect::<Vec<_>>())
        .bind(now_ms())
        .fetch_all(db.get_postgres_connection_pool())
        .await
        .map_err(|e| DbErr::Query(RuntimeErr::SqlxError(Arc::new(e))))?;
    Ok(inserted.into_iter().map(|(id, key)| (key, id)).collect())
}

/// Other backends: one multi-row `INSERT … VALUES`.
async fn insert_values(db: &DatabaseConnection, rows: &[&NewCallback]) -> Result<HashMap<String, i64>, DbErr> {
    let now = now_ms();
    let mut insert = Query::insert();
    insert
        .into_table(inbox::Entity.table_ref())
        .columns([
            inbox::Column::DedupeKey,
            inbox::Column::Kind,
            inbox::Column::FromUser,
            inbox::Column::AgentId,
            inbox::Column::CreateTime,
            inbox::Column::Payload,
            inbox::Column::Lane,
            inbox::Column::Status,
            inbox::Column::Attempts,
            inbox::Column::NextAttemptAt,
            inbox::Column::ReceivedAt,
        ])
        .on_conflict(OnConflict::column(inbox::Column::DedupeKey).do_nothing().to_owned())
        .returning(Query::returning().columns([inbox::Column::Id, inbox::Column::DedupeKey]));
    for row in rows {
        insert.values_panic([
            row.dedupe_key.clone().into(),
            row.kind.clone().into(),
            row.from_user.clone().into(),
            row.agent_id.into(),
            row.create_time.into(),
            row.payload.clone().into(),
            row.lane.clone().into(),
            Status::Pending.as_str().into(),
            0i32.into(),
            now.into(),
            now.into(),
        ]);
    }
    let inserted = db.query_all(&insert).await?;
    let id_col = inbox::Column::Id.to_string();
    let key_col = inbox::Column::DedupeKey.to_string();
    let mut ids = HashMap::with_capacity(inserted.len());
    for result in inserted {
        ids.insert(result.try_get("", &key_col)?, result.try_get("", &id_col)?);
    }
    Ok(ids)
}
