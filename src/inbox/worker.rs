//! Processes stored callbacks. Rows are claimed in batches with a lease (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL, an atomic conditional update on SQLite) and split into lanes: a lane's rows (one
//! member's chat, one customer's contact events) are handled one after another in arrival order,
//! different lanes side by side, and a lane being handled anywhere is not claimed again until it is
//! through. A claimed lane brings its next rows along, and a handler may take a run of them together
//! (one transaction for a member's run of chat messages). Each row is finished with an outcome. A
//! failed attempt is retried with exponential backoff; a row whose worker died is claimed again when
//! its lease runs out. The worker wakes as soon as the writer stores a row; polling is only the
//! fallback for rows stored by other instances or left by a restart.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::Status;
use super::answers::AwaitedAnswers;
use super::handler::{HandlerError, InboxHandler, Outcome, Retry};
use super::held_back::HeldBack;
use super::lease::{finished, while_leased};
use super::{CLAIM, CLAIM_TURN};
use crate::config::InboxConfig;
use tracing::Instrument;

use crate::clock::Backoff;
use crate::db::claim::{self, Lease};
use crate::db::entity::inbox;
use crate::db::now_ms;
use crate::telemetry::Chain;
use crate::wecom::callback::parse_callback;

/// Handles stored callbacks in lanes ([`super::lane_of`]): each claimed lane's rows one after
/// another in arrival order, up to `lanes` lanes side by side. Cheap to clone (shared state).
#[derive(Clone)]
pub struct InboxWorker {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    config: InboxConfig,
    handler: Arc<dyn InboxHandler>,
    wake: Arc<Notify>,
    instance: String,
    answers: Arc<AwaitedAnswers>,
    /// Set while a claim's answer is outstanding: if the database fails then, rows this worker
    /// claimed without hearing back are given back as soon as it answers again (with no lane in
    /// flight), rather than when their lease runs out.
    stranded: AtomicBool,
    /// At most `lanes` lanes run at once, each holding a permit.
    lanes: usize,
    permits: Arc<Semaphore>,
    /// Lanes claimed and not yet through (running or waiting for a permit); also `/metrics`'
    /// `scrm_inbox_lanes_in_flight`.
    in_flight: Gauge,
    /// A lane finished: there may be room for more.
    lane_done: Notify,
    /// Kinds whose waiting rows were deferred together with a row refused for capacity.
    held_back: HeldBack,
}

/// A claimed lane: its rows in arrival order.
type Lane = Vec<inbox::Model>;

/// Rows claimed together, split into lanes (a row without a lane is one by itself), each in
/// arrival order, the lane with the oldest row first.
fn into_lanes(rows: Vec<inbox::Model>) -> Vec<Lane> {
    let mut order: Vec<String> = Vec::new();
    let mut lanes: HashMap<String, Lane> = HashMap::new();
    for row in rows {
        let key = row.lane.clone().unwrap_or_else(|| format!("#{}", row.id));
        let lane = lanes.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            Vec::new()
        });
        lane.push(row);
    }
    order.into_iter().filter_map(|key| lanes.remove(&key)).collect()
}

impl InboxWorker {
    pub fn new(
        db: DatabaseConnection,
        config: InboxConfig,
        handler: Arc<dyn InboxHandler>,
        wake: Arc<Notify>,
        instance: String,
        answers: Arc<AwaitedAnswers>,
    ) -> Self {
        let lanes = Ord::max(config.lanes, 1);
        Self {
            inner: Arc::new(Inner {
                db,
                config,
                handler,
                wake,
                instance,
                answers,
                stranded: AtomicBool::new(false),
                lanes,
                permits: Arc::new(Semaphore::new(lanes)),
                in_flight: Gauge::default(),
                lane_done: Notify::new(),
                held_back: HeldBack::default(),
            }),
        }
    }

    /// Counts the lanes in flight on `gauge` (`/metrics`).
    pub fn with_lanes_gauge(self, gauge: Gauge) -> Self {
        let mut inner = Arc::into_inner(self.inner).expect("configured before it runs");
        inner.in_flight = gauge;
        Self { inner: Arc::new(inner) }
    }

    /// Lanes claimed by this worker and not yet through.
    fn lanes_in_flight(&self) -> usize {
        usize::try_from(self.inner.in_flight.get()).unwrap_or(0)
    }

    /// Runs until `shutdown`: claims whenever a lane has room, so a lane waiting on a slow call
    /// holds only itself. The row each lane is handling when shutdown fires is finished first;
    /// the lanes' later rows are given back.
    pub async fn run(self, shutdown: CancellationToken) {
        let poll = Duration::from_millis(Ord::max(self.inner.config.poll_interval_ms, 1));
        tracing::info!(instance = %self.inner.instance, lanes = self.inner.lanes, "inbox worker started");
        let mut lanes = JoinSet::new();
        while !shutdown.is_cancelled() {
            while let Some(ended) = lanes.try_join_next() {
                if let Ok(Err(e)) = ended {
                    tracing::warn!(error = %e, "an inbox lane stopped on a database error; its rows are given back");
                }
            }
            match self.claim_into(&mut lanes, &shutdown).await {
                // A full batch: more may be due at once.
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "inbox worker cannot reach the database; will retry")
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.inner.wake.notified() => {}
                _ = self.inner.lane_done.notified() => {}
                _ = tokio::time::sleep(jittered(poll)) => {}
            }
        }
        while lanes.join_next().await.is_some() {}
        tracing::info!(instance = %self.inner.instance, "inbox worker stopped");
    }

    /// Claims a batch while fewer lanes are in flight than may run (so every claimed lane soon
    /// has its permit), and starts its lanes. True when the batch was full (more may be due).
    async fn claim_into(
        &self,
        lanes: &mut JoinSet<Result<usize, DbErr>>,
        shutdown: &CancellationToken,
    ) -> Result<bool, DbErr> {
        let inner = &self.inner;
        let in_flight = self.lanes_in_flight();
        if in_flight >= inner.lanes {
            return Ok(false);
        }
        if inner.stranded.load(Ordering::Relaxed) {
            // Rows of an unanswered claim are given back before claiming again, and only with no
            // lane in flight (they are all this worker's).
            if in_flight > 0 {
                return Ok(false);
            }
            inner.release_stranded().await?;
        }
        let claimed = inner.claim().await?;
        let full = claimed.len() as u64 >= inner.config.claim_batch;
        for lane in into_lanes(claimed) {
            self.start_lane(lanes, lane, shutdown.clone());
        }
        Ok(full)
    }

    fn start_lane(&self, lanes: &mut JoinSet<Result<usize, DbErr>>, lane: Lane, shutdown: CancellationToken) {
        let inner = self.inner.clone();
        inner.in_flight.inc();
        lanes.spawn(async move {
            let permit = inner.permits.clone().acquire_owned().await;
            let result = inner.run_lane(lane, &shutdown).await;
            drop(permit);
            inner.in_flight.dec();
            inner.lane_done.notify_one();
            result
        });
    }

    /// Claims and handles rows until none is due (every lane of a batch through before the next
    /// claim); returns how many were handled. A batch shorter than `claim_batch` took everything
    /// due, so the worker does not ask again.
    pub async fn drain(&self, shutdown: &CancellationToken) -> Result<usize, DbErr> {
        let mut total = 0;
        loop {
            let handled = self.run_once(shutdown).await?;
            total += handled.0;
            if (handled.1 as u64) < self.inner.config.claim_batch || shutdown.is_cancelled() {
                return Ok(total);
            }
        }
    }

    /// Claims one batch and handles its lanes side by side; returns how many rows were handled
    /// and how many were claimed.
    async fn run_once(&self, shutdown: &CancellationToken) -> Result<(usize, usize), DbErr> {
        self.inner.release_stranded().await?;
        let claimed = self.inner.claim().await?;
        let count = claimed.len();
        let mut lanes = JoinSet::new();
        for lane in into_lanes(claimed) {
            self.start_lane(&mut lanes, lane, shutdown.clone());
        }
        let (mut handled, mut failure) = (0, None);
        while let Some(joined) = lanes.join_next().await {
            match joined.expect("a lane does not panic") {
                Ok(n) => handled += n,
                Err(e) => failure = Some(e),
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok((handled, count)),
        }
    }
}

impl Inner {
    /// One lane's rows in order; returns how many were handled. What shutdown leaves, and the rest
    /// of a lane whose outcome could not be recorded, is given back (the failed row too: handlers
    /// are idempotent), so the lane's order holds.
    async fn run_lane(&self, lane: Lane, shutdown: &CancellationToken) -> Result<usize, DbErr> {
        let (mut handled, mut left, mut failure) = (0, Vec::new(), None);
        let mut rows = std::collections::VecDeque::from(lane);
        // Rows of a run that failed are handled one by one, each with its own outcome.
        let mut one_by_one = 0;
        while !shutdown.is_cancelled() && !rows.is_empty() {
            if one_by_one == 0 {
                match self.try_run(rows.make_contiguous()).await {
                    Ran::Handled(n) => {
                        rows.drain(..n);
                        handled += n;
                        continue;
                    }
                    Ran::Failed(n) => {
                        // Read again, as a run that timed out may still have committed: rows it
                        // finished are dropped, rows it answered are delivered, not run again.
                        let fresh = match self.reread(&rows.make_contiguous()[..n]).await {
                            Ok(fresh) => fresh,
                            Err(e) => {
                                failure = Some(e);
                                break;
                            }
                        };
                        rows.drain(..n);
                        one_by_one = fresh.len();
                        for row in fresh.into_iter().rev() {
                            rows.push_front(row);
                        }
                        continue;
                    }
                    Ran::NotTaken => {}
                }
            }
            one_by_one = one_by_one.saturating_sub(1);
            let Some(row) = rows.pop_front() else { break };
            let id = row.id;
            if let Err(e) = self.handle_row(row).await {
                left.push(id);
                failure = Some(e);
                break;
            }
            handled += 1;
        }
        left.extend(rows.into_iter().map(|row| row.id));
        let released = if left.is_empty() {
            Ok(())
        } else {
            self.release(&left).await
        };
        match failure {
            // The failure is the news; a release that failed too leaves the rows to their lease.
            Some(e) => Err(e),
            None => released.map(|()| handled),
        }
    }

    /// Tells whoever waits for answers how long a row taken up on its first attempt waited.
    fn observe_taken(&self, row: &inbox::Model) {
        if row.attempts <= 1 {
            let waited = now_ms().saturating_sub(row.received_at);
            self.answers.observe_taken(u64::try_from(waited).unwrap_or(0));
        }
    }

    /// Offers the lane's next rows to the handler as one run, when it takes two or more of them.
    async fn try_run(&self, rows: &[inbox::Model]) -> Ran {
        let mut parsed = Vec::new();
        for row in rows {
            if row.attempts > self.config.max_attempts {
                break;
            }
            let Ok(callback) = parse_callback(&row.payload) else {
                break;
            };
            parsed.push((row.clone(), callback));
        }
        let length = self.handler.run_length(&parsed).min(parsed.len());
        if length < 2 {
            return Ran::NotTaken;
        }
        parsed.truncate(length);
        let span = tracing::info_span!("inbox_run", first = parsed[0].0.id, rows = length);
        let started = std::time::Instant::now();
        for (row, _) in &parsed {
            self.observe_taken(row);
        }
        let keys: Vec<String> = parsed.iter().map(|(row, _)| row.dedupe_key.clone()).collect();
        let handler = self.handler.clone();
        let limit = Duration::from_secs(Ord::max(self.config.lease_secs / 2, 1));
        let task = tokio::spawn(async move { handler.handle_run(&parsed).await }.instrument(span.clone()));
        let abort = task.abort_handle();
        let result = match tokio::time::timeout(limit, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(HandlerError::Transient(format!("run task ended: {join}"))),
            Err(_) => {
                // Stopped, so that its transaction is rolled back rather than committed later.
                abort.abort();
                Err(HandlerError::Transient(format!(
                    "run timed out after {}s",
                    limit.as_secs()
                )))
            }
        };
        let _entered = span.enter();
        match result {
            Ok(0) => Ran::NotTaken,
            Ok(n) => {
                let elapsed_ms = started.elapsed().as_millis() as u64;
                tracing::info!(handled = n, elapsed_ms, "inbox run processed");
                // A request still waiting for an answer the handler did not give stops waiting now.
                for key in &keys[..n.min(keys.len())] {
                    self.answers.offer(key, None);
                }
                Ran::Handled(n.min(length))
            }
            Err(e) => {
                tracing::info!(error = %Chain(&e), "inbox run not committed; its rows are handled one by one");
                Ran::Failed(length)
            }
        }
    }

    /// The rows as stored now, those still leased to this worker, in order.
    async fn reread(&self, rows: &[inbox::Model]) -> Result<Vec<inbox::Model>, DbErr> {
        use inbox::Column as C;
        let mut fresh = inbox::Entity::find()
            .filter(C::Id.is_in(rows.iter().map(|row| row.id)))
            .filter(C::LockedBy.eq(self.instance.as_str()))
            .filter(C::Status.eq(Status::Processing.as_str()))
            .all(&self.db)
            .await?;
        fresh.sort_by_key(|row| row.id);
        Ok(fresh)
    }

    async fn release_stranded(&self) -> Result<(), DbErr> {
        if !self.stranded.load(Ordering::Relaxed) {
            return Ok(());
        }
        let released = claim::release_all::<inbox::Entity, Status>(&self.db, &CLAIM, &self.instance).await?;
        self.stranded.store(false, Ordering::Relaxed);
        if released > 0 {
            tracing::info!(
                rows = released,
                "inbox rows claimed when the database went away given back"
            );
        }
        Ok(())
    }

    async fn claim(&self) -> Result<Vec<inbox::Model>, DbErr> {
        let lease = Lease {
            owner: &self.instance,
            duration_ms: i64::try_from(self.config.lease_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
            batch: self.config.claim_batch,
        };
        self.stranded.store(true, Ordering::Relaxed);
        let claimed = claim::claim_in_lanes::<inbox::Entity, Status>(
            &self.db,
            &CLAIM,
            inbox::Column::Lane,
            lease,
            self.config.lane_run,
            now_ms(),
            CLAIM_TURN,
        )
        .await?;
        self.stranded.store(false, Ordering::Relaxed);
        Ok(claimed)
    }

    /// Gives claimed rows back untouched (shutdown between rows).
    async fn release(&self, ids: &[i64]) -> Result<(), DbErr> {
        claim::release::<inbox::Entity, Status>(&self.db, &CLAIM, &self.instance, ids).await
    }

    /// Handles one row inside a span of its own (`inbox_row`, with its id and kind), so that
    /// every line one callback causes can be followed.
    async fn handle_row(&self, row: inbox::Model) -> Result<(), DbErr> {
        let span = tracing::info_span!("inbox_row", id = row.id, kind = %row.kind);
        self.handle_row_in_span(row).instrument(span).await
    }

    async fn handle_row_in_span(&self, row: inbox::Model) -> Result<(), DbErr> {
        let started = std::time::Instant::now();
        self.observe_taken(&row);
        let result = if row.attempts > self.config.max_attempts {
            Err(HandlerError::Permanent(format!(
                "abandoned after {} attempts (the worker handling it stopped or timed out)",
                row.attempts - 1
            )))
        } else {
            self.invoke(&row).await
        };
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let finish = match result {
            Ok(Outcome::Processed(note)) => {
                tracing::info!(elapsed_ms, "inbox row processed");
                Finish::Done(Status::Processed, note)
            }
            Ok(Outcome::Committed(note)) => {
                tracing::info!(elapsed_ms, note = %note, "inbox row processed");
                Finish::Recorded
            }
            Ok(Outcome::Ignored(reason)) => {
                tracing::info!(reason = %reason, "inbox row ignored");
                Finish::Done(Status::Ignored, reason)
            }
            Err(e) => {
                // The whole chain is kept: `inbox list` shows it, and the log line carries it.
                let error = Chain(&e).to_string();
                match e.retry() {
                    Retry::Deferred(after) => {
                        tracing::info!(reason = %error, retry_in_ms = after.as_millis() as u64, "inbox row deferred");
                        self.hold_back_kind(&row, after).await;
                        Finish::Retry {
                            error,
                            delay: not_before(after),
                            counted: false,
                        }
                    }
                    Retry::Later if row.attempts < self.config.max_attempts => {
                        let delay = backoff(Duration::from_millis(self.config.retry_base_ms), row.attempts);
                        tracing::warn!(attempt = row.attempts, error = %error,
                            retry_in_ms = delay.as_millis() as u64, "inbox row failed; will retry");
                        Finish::Retry {
                            error,
                            delay,
                            counted: true,
                        }
                    }
                    Retry::Later | Retry::Never => {
                        tracing::error!(attempt = row.attempts, error = %error, "inbox row failed");
                        Finish::Done(Status::Failed, error)
                    }
                }
            }
        };
        let recorded = self.record(&row, finish).await;
        // A request still waiting for an answer the handler did not give stops waiting now.
        self.answers.offer(&row.dedupe_key, None);
        recorded
    }

    /// Defers the waiting rows of `row`'s kind with it (see [`HeldBack`]). If that fails, they are
    /// claimed and refused one by one as before, which costs time but no attempts.
    async fn hold_back_kind(&self, row: &inbox::Model, after: Duration) {
        let now = now_ms();
        let until = now.saturating_add(after.as_millis() as i64);
        match self.held_back.hold_back(&self.db, &row.kind, until, now).await {
            Ok(0) => {}
            Ok(deferred) => tracing::info!(kind = %row.kind, deferred, "waiting rows of the kind held back with it"),
            Err(e) => tracing::warn!(kind = %row.kind, error = %Chain(&e), "waiting rows of the kind not held back"),
        }
    }

    /// Runs the handler on its own task so that a panic becomes an error for this row only, and
    /// bounds it well inside the lease.
    async fn invoke(&self, row: &inbox::Model) -> Result<Outcome, HandlerError> {
        let callback = parse_callback(&row.payload)
            .map_err(|e| HandlerError::Permanent(format!("stored payload cannot be parsed: {e}")))?;
        let handler = self.handler.clone();
        let owned_row = row.clone();
        let limit = Duration::from_secs(Ord::max(self.config.lease_secs / 2, 1));
        let task = tokio::spawn(
            async move { handler.handle(&owned_row, &callback).await }.instrument(tracing::Span::current()),
        );
        match tokio::time::timeout(limit, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) if join.is_panic() => Err(HandlerError::Transient("handler panicked".into())),
            Ok(Err(join)) => Err(HandlerError::Transient(format!("handler task ended: {join}"))),
            Err(_) => Err(HandlerError::Transient(format!(
                "handler timed out after {}s",
                limit.as_secs()
            ))),
        }
    }

    async fn record(&self, row: &inbox::Model, finish: Finish) -> Result<(), DbErr> {
        use inbox::Column as C;
        let now = now_ms();
        let update = match finish {
            Finish::Recorded => return Ok(()),
            Finish::Done(status, text) => finished(inbox::Entity::update_many(), status, text, now),
            Finish::Retry { error, delay, counted } => {
                let again = inbox::Entity::update_many()
                    .col_expr(C::Status, Expr::val(Status::Pending.as_str()))
                    .col_expr(C::LastError, Expr::val(error))
                    .col_expr(
                        C::NextAttemptAt,
                        Expr::val(now.saturating_add(delay.as_millis() as i64)),
                    );
                if counted {
                    again
                } else {
                    again.col_expr(C::Attempts, Expr::col(C::Attempts).sub(1))
                }
            }
        };
        while_leased(update, C::Id.eq(row.id), &self.instance)
            .exec(&self.db)
            .await?;
        Ok(())
    }
}

/// What became of rows offered as a run.
enum Ran {
    /// This many, from the first, were handled and their outcomes recorded.
    Handled(usize),
    /// Nothing was committed: this many are handled one by one.
    Failed(usize),
    /// Not a run: the next row is handled by itself.
    NotTaken,
}

enum Finish {
    Done(Status, String),
    /// Pending again after `delay`; an uncounted attempt is given back (a deferral).
    Retry {
        error: String,
        delay: Duration,
        counted: bool,
    },
    /// The handler committed the outcome with its work ([`Outcome::Committed`]).
    Recorded,
}

/// `base`, 2×, 4× … capped at 10 minutes, spread so that retries of many rows do not bunch up.
fn backoff(base: Duration, attempt: i32) -> Duration {
    Backoff::new(base, Duration::from_secs(600)).spread(Ord::max(attempt, 1) as u32)
}

/// `d` spread ±20 % (polls and waits of several workers do not line up).
fn jittered(d: Duration) -> Duration {
    Backoff::new(d, d).spread(1)
}

/// `d` spread over up to 20 % more, never less: a dependency that said when to come back would
/// refuse a row coming back before then.
fn not_before(d: Duration) -> Duration {
    d.mul_f64(1.0 + rand::random::<f64>() * 0.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_secs(2);
        let first = backoff(base, 1);
        assert!(first <= Duration::from_millis(2400) && first >= Duration::from_millis(1600));
        assert!(backoff(base, 3) >= Duration::from_millis(6400));
        assert!(backoff(base, 40) <= Duration::from_secs(720));
    }
}
