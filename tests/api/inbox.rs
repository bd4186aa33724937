//! The inbox worker: retries, failures, replays, and rows left behind by a restart.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use sea_orm::{ActiveModelTrait, EntityTrait, Set};
use wecom_scrm::db::entity::inbox;
use wecom_scrm::db::now_ms;
use wecom_scrm::inbox::{
    self as store, HandlerError, HandlerFuture, InboxHandler, Outcome, RetryTarget, Status, UnhandledKinds,
};
use wecom_scrm::wecom::callback::Callback;
use wecom_scrm::wecom::compose;

use migration::MigratorTrait;

use crate::helpers::*;
use wecom_scrm::db::entity::inbox::InboxStatus;

/// Fails transiently a given number of times, then processes.
struct Flaky {
    failures_left: AtomicU32,
    calls: AtomicU32,
}

impl InboxHandler for Flaky {
    fn handle<'a>(&'a self, _row: &'a inbox::Model, callback: &'a Callback) -> HandlerFuture<'a> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.failures_left.load(Ordering::SeqCst) > 0 {
                self.failures_left.fetch_sub(1, Ordering::SeqCst);
                return Err(HandlerError::Transient("WeCom API busy".into()));
            }
            Ok(Outcome::Processed(format!("handled {}", callback.kind_name())))
        })
    }
}

/// Fails permanently until switched on, like a handler with a bug that is later fixed.
struct Buggy {
    fixed: std::sync::atomic::AtomicBool,
}

impl InboxHandler for Buggy {
    fn handle<'a>(&'a self, _row: &'a inbox::Model, _callback: &'a Callback) -> HandlerFuture<'a> {
        Box::pin(async move {
            if self.fixed.load(Ordering::SeqCst) {
                Ok(Outcome::Processed("fixed".into()))
            } else {
                Err(HandlerError::Permanent("unexpected field in event".into()))
            }
        })
    }
}

/// Says "come back later" a given number of times, like a spent per-minute API budget.
struct OverBudget {
    refusals_left: AtomicU32,
}

impl InboxHandler for OverBudget {
    fn handle<'a>(&'a self, _row: &'a inbox::Model, _callback: &'a Callback) -> HandlerFuture<'a> {
        Box::pin(async move {
            if self.refusals_left.load(Ordering::SeqCst) > 0 {
                self.refusals_left.fetch_sub(1, Ordering::SeqCst);
                return Err(HandlerError::Deferred(
                    "externalcontact/get is over its per-minute call budget".into(),
                    Duration::from_millis(100),
                ));
            }
            Ok(Outcome::Processed("fetched".into()))
        })
    }
}

struct Panics;

impl InboxHandler for Panics {
    fn handle<'a>(&'a self, _row: &'a inbox::Model, _callback: &'a Callback) -> HandlerFuture<'a> {
        Box::pin(async move { panic!("handler bug") })
    }
}

fn text() -> String {
    compose::text_message(CORP_ID, "zhangsan", "hello", next_msg_id(), AGENT_ID, now_secs())
}

#[tokio::test]
async fn transient_failures_are_retried_with_backoff_until_processed() {
    let handler = Arc::new(Flaky {
        failures_left: AtomicU32::new(2),
        calls: AtomicU32::new(0),
    });
    let app = TestApp::spawn_with(|_| {}, handler.clone()).await;
    assert_eq!(app.post_callback(&text()).await.status(), 200);
    let rows = app.wait_until_settled(Duration::from_secs(10)).await;
    assert_eq!(rows[0].status, InboxStatus::Processed);
    assert_eq!(rows[0].outcome.as_deref(), Some("handled text"));
    assert_eq!(rows[0].attempts, 3);
    assert_eq!(rows[0].last_error, None);
    assert_eq!(handler.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn rows_fail_after_max_attempts_with_the_error_recorded() {
    let handler = Arc::new(Flaky {
        failures_left: AtomicU32::new(100),
        calls: AtomicU32::new(0),
    });
    let app = TestApp::spawn_with(|c| c.inbox.max_attempts = 3, handler.clone()).await;
    app.post_callback(&text()).await;
    let rows = app.wait_until_settled(Duration::from_secs(10)).await;
    assert_eq!(rows[0].status, InboxStatus::Failed);
    assert_eq!(rows[0].attempts, 3);
    assert_eq!(rows[0].last_error.as_deref(), Some("WeCom API busy"));
    assert_eq!(handler.calls.load(Ordering::SeqCst), 3);
}

/// A row told to wait by a spent budget waits as told and never runs out of attempts over it.
#[tokio::test]
async fn deferred_rows_wait_without_using_up_their_attempts() {
    let handler = Arc::new(OverBudget {
        refusals_left: AtomicU32::new(5),
    });
    let app = TestApp::spawn_with(|c| c.inbox.max_attempts = 2, handler.clone()).await;
    app.post_callback(&text()).await;
    let rows = app.wait_until_settled(Duration::from_secs(10)).await;
    assert_eq!(
        rows[0].status,
        InboxStatus::Processed,
        "five refusals, two attempts allowed: {rows:?}"
    );
    assert_eq!(rows[0].attempts, 1, "only the attempt that ran counts");
    assert_eq!(handler.refusals_left.load(Ordering::SeqCst), 0);
    let waited = rows[0].processed_at.unwrap() - rows[0].received_at;
    assert!(
        waited >= 5 * 100,
        "each refusal waited its 100 ms (never less, up to 20 % more), waited {waited} ms"
    );
}

#[tokio::test]
async fn a_failed_row_can_be_replayed_after_the_fix() {
    let handler = Arc::new(Buggy { fixed: false.into() });
    let app = TestApp::spawn_with(|_| {}, handler.clone()).await;
    app.post_callback(&text()).await;
    app.post_callback(&text()).await;
    let rows = app.wait_until_settled(Duration::from_secs(5)).await;
    assert!(
        rows.iter().all(|r| r.status == InboxStatus::Failed && r.attempts == 1),
        "permanent errors fail at once: {rows:#?}"
    );
    assert_eq!(store::list(&app.db, Some(Status::Failed), 10).await.unwrap().len(), 2);

    handler.fixed.store(true, Ordering::SeqCst);
    assert_eq!(store::retry(&app.db, RetryTarget::Id(rows[0].id)).await.unwrap(), 1);
    assert_eq!(store::retry(&app.db, RetryTarget::AllFailed).await.unwrap(), 1);
    let rows = app.wait_until_settled(Duration::from_secs(5)).await;
    assert!(
        rows.iter()
            .all(|r| r.status == InboxStatus::Processed && r.last_error.is_none()),
        "{rows:#?}"
    );
    assert_eq!(store::retry(&app.db, RetryTarget::AllFailed).await.unwrap(), 0);
}

#[tokio::test]
async fn a_panicking_handler_fails_its_row_only() {
    let app = TestApp::spawn_with(|c| c.inbox.max_attempts = 2, Arc::new(Panics)).await;
    app.post_callback(&text()).await;
    let rows = app.wait_until_settled(Duration::from_secs(5)).await;
    assert_eq!(rows[0].status, InboxStatus::Failed);
    assert_eq!(rows[0].last_error.as_deref(), Some("handler panicked"));
    // The service still answers.
    assert_eq!(app.post_callback(&text()).await.status(), 200);
}

#[tokio::test]
async fn rows_left_by_a_restart_or_another_instance_are_picked_up() {
    let test_db = TestDb::new();
    let config = test_config(&test_db);
    // The schema exists once an app has run against it.
    let first = TestApp::start(test_db, config, Arc::new(UnhandledKinds)).await;
    let (test_db, config) = first.stop().await;
    let db = wecom_scrm::db::connect(&config.database).await.unwrap();
    let now = now_ms();
    stored_row("msg:left-pending", Status::Pending, None)
        .insert(&db)
        .await
        .unwrap();
    stored_row(
        "msg:lease-expired",
        Status::Processing,
        Some(("crashed-instance", now - 1)),
    )
    .insert(&db)
    .await
    .unwrap();
    stored_row(
        "msg:lease-held",
        Status::Processing,
        Some(("crashed-instance", now + 3_600_000)),
    )
    .insert(&db)
    .await
    .unwrap();

    let app = TestApp::start(test_db, config, Arc::new(UnhandledKinds)).await;
    let settled = wait_for(Duration::from_secs(5), || async {
        let rows = app.inbox_rows().await;
        rows.iter()
            .filter(|r| r.status == InboxStatus::Ignored)
            .count()
            .eq(&2)
            .then_some(rows)
    })
    .await
    .expect("left-over rows handled");
    let held = settled.iter().find(|r| r.dedupe_key == "msg:lease-held").unwrap();
    assert_eq!(
        held.status,
        InboxStatus::Processing,
        "a row under another live lease is not taken"
    );
    let expired = settled.iter().find(|r| r.dedupe_key == "msg:lease-expired").unwrap();
    assert_eq!(expired.attempts, 2);
}

/// A stored text callback in `status`, under `lease` (owner, until) if given, as a crash or another
/// instance would leave it.
fn stored_row(key: &str, status: Status, lease: Option<(&str, i64)>) -> inbox::ActiveModel {
    let now = now_ms();
    inbox::ActiveModel {
        dedupe_key: Set(key.into()),
        kind: Set("text".into()),
        from_user: Set(Some("zhangsan".into())),
        agent_id: Set(Some(AGENT_ID)),
        create_time: Set(now_secs()),
        payload: Set(text()),
        status: Set(status),
        attempts: Set(i32::from(status == Status::Processing)),
        next_attempt_at: Set(now),
        locked_by: Set(lease.map(|(owner, _)| owner.into())),
        locked_until: Set(lease.map(|(_, until)| until)),
        received_at: Set(now),
        ..Default::default()
    }
}

/// A handler that marks its row processed in its own transaction does so only while it still holds
/// the lease; otherwise it learns so and must roll back.
#[tokio::test]
async fn finishing_within_the_work_requires_the_lease() {
    let test_db = TestDb::new();
    let config = test_config(&test_db);
    let app = TestApp::start(test_db, config, Arc::new(UnhandledKinds)).await;
    let (_test_db, config) = app.stop().await;
    let db = wecom_scrm::db::connect(&config.database).await.unwrap();
    let now = now_ms();
    let row = stored_row("msg:leased", Status::Processing, Some(("instance-b", now + 60_000)))
        .insert(&db)
        .await
        .unwrap();

    let stale = inbox::Model {
        locked_by: Some("instance-a".into()),
        ..row.clone()
    };
    let finished = store::finish_within(&db, &stale, inbox::Entity::update_many(), "done").await;
    assert!(!finished.unwrap(), "instance-a's lease is gone");
    let unchanged = inbox::Entity::find_by_id(row.id).one(&db).await.unwrap().unwrap();
    assert_eq!(unchanged.status, InboxStatus::Processing);
    assert_eq!(unchanged.locked_by.as_deref(), Some("instance-b"));

    let finished = store::finish_within(&db, &row, inbox::Entity::update_many(), "done").await;
    assert!(finished.unwrap());
    let done = inbox::Entity::find_by_id(row.id).one(&db).await.unwrap().unwrap();
    assert_eq!(done.status, InboxStatus::Processed);
    assert_eq!(done.outcome.as_deref(), Some("done"));
    assert_eq!(done.locked_by, None);
    assert!(done.processed_at.is_some());
}

/// Regression: on SQLite, a pooled connection opened before the migration kept the old schema and
/// refused the first upsert ("ON CONFLICT clause does not match any … UNIQUE constraint").
#[tokio::test]
async fn the_first_callback_on_a_freshly_migrated_database_is_stored() {
    // The race showed about once in 40 fresh SQLite files; PostgreSQL schemas are slower to make.
    let rounds = if TestDb::new().is_postgres() { 5 } else { 60 };
    for i in 0..rounds {
        let test_db = TestDb::new();
        let config = test_config(&test_db);
        let (db, applied) = wecom_scrm::db::connect_migrated(&config.database, true).await.unwrap();
        assert_eq!(applied, migration::Migrator::migrations().len());
        let (writer, _task) = store::InboxWriter::spawn(db, 8, Arc::new(tokio::sync::Notify::new()));
        let row = store::NewCallback {
            dedupe_key: format!("msg:fresh-{i}"),
            kind: "text".into(),
            from_user: None,
            agent_id: None,
            create_time: 0,
            payload: text(),
            lane: None,
        };
        assert!(
            matches!(writer.store(row).await, Ok(store::StoreOutcome::Stored(_))),
            "iteration {i}"
        );
    }
}

/// A release can be rolled back: every migration undoes itself, newest first, and applies again.
#[tokio::test]
async fn every_migration_rolls_back_and_applies_again() {
    let test_db = TestDb::new();
    let config = test_config(&test_db);
    let (db, applied) = wecom_scrm::db::connect_migrated(&config.database, true).await.unwrap();
    assert_eq!(applied, migration::Migrator::migrations().len());
    migration::Migrator::down(&db, None)
        .await
        .expect("every migration rolls back");
    assert_eq!(
        migration::Migrator::get_pending_migrations(&db).await.unwrap().len(),
        migration::Migrator::migrations().len()
    );
    migration::Migrator::up(&db, None).await.expect("and applies again");
    assert!(
        migration::Migrator::get_pending_migrations(&db)
            .await
            .unwrap()
            .is_empty()
    );
}
