//! A lane's backlog in runs: a claimed lane brings its next rows along, the handler takes them
//! together (a member's chat messages in one transaction), and a run that fails is handled row by
//! row, in order, each row once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sea_orm::{DatabaseConnection, EntityTrait};
use tokio::sync::Notify;
use wecom_scrm::db::entity::follow_up;
use wecom_scrm::db::entity::inbox::{self, InboxStatus};
use wecom_scrm::events::EventHandler;
use wecom_scrm::inbox::answers::AwaitedAnswers;
use wecom_scrm::inbox::{
    HandlerError, HandlerFuture, InboxHandler, InboxWorker, Outcome, ParsedRow, RunFuture, finish_all_within,
};
use wecom_scrm::wecom::callback::Callback;
use wecom_scrm::wecom::compose;

use crate::helpers::*;
use crate::lanes::store_notes;

/// Takes every offered row as a run and records runs and single rows per lane; with `fail`, every
/// run fails before committing anything.
struct Runs {
    db: DatabaseConnection,
    fail: bool,
    runs: Mutex<HashMap<String, Vec<Vec<i64>>>>,
    singles: Mutex<HashMap<String, Vec<i64>>>,
}

impl Runs {
    fn new(db: &DatabaseConnection, fail: bool) -> Arc<Self> {
        Arc::new(Self {
            db: db.clone(),
            fail,
            runs: Mutex::default(),
            singles: Mutex::default(),
        })
    }
}

impl InboxHandler for Runs {
    fn handle<'a>(&'a self, row: &'a inbox::Model, _callback: &'a Callback) -> HandlerFuture<'a> {
        Box::pin(async move {
            let lane = row.lane.clone().expect("a chat row has a lane");
            self.singles.lock().unwrap().entry(lane).or_default().push(row.id);
            Ok(Outcome::Processed("one by one".into()))
        })
    }

    fn run_length(&self, rows: &[ParsedRow]) -> usize {
        rows.len()
    }

    fn handle_run<'a>(&'a self, rows: &'a [ParsedRow]) -> RunFuture<'a> {
        Box::pin(async move {
            if self.fail {
                return Err(HandlerError::Transient("the run failed".into()));
            }
            let models: Vec<&inbox::Model> = rows.iter().map(|(row, _)| row).collect();
            let finished = finish_all_within(&self.db, &models, inbox::Entity::update_many(), "in a run").await?;
            assert_eq!(finished as usize, models.len(), "every row of the run was still leased");
            let lane = models[0].lane.clone().expect("a chat row has a lane");
            let ids = models.iter().map(|row| row.id).collect();
            self.runs.lock().unwrap().entry(lane).or_default().push(ids);
            Ok(models.len())
        })
    }
}

fn worker(db: &DatabaseConnection, config: &wecom_scrm::config::Config, handler: Arc<Runs>) -> InboxWorker {
    let mut inbox = config.inbox_worker();
    inbox.lanes = 2;
    inbox.claim_batch = 2;
    inbox.lane_run = 4;
    InboxWorker::new(
        db.clone(),
        inbox,
        handler,
        Arc::new(Notify::new()),
        "instance-1".into(),
        Arc::new(AwaitedAnswers::new(0, 2000)),
    )
}

/// `lane`'s row ids in arrival order.
fn ids_of(rows: &[inbox::Model], lane: &str) -> Vec<i64> {
    rows.iter()
        .filter(|row| row.lane.as_deref() == Some(lane))
        .map(|row| row.id)
        .collect()
}

async fn all_rows(db: &DatabaseConnection) -> Vec<inbox::Model> {
    use sea_orm::QueryOrder;
    inbox::Entity::find()
        .order_by_asc(inbox::Column::Id)
        .all(db)
        .await
        .unwrap()
}

/// Stores `per_sender` notes each from rep1 and rep2, interleaved (rep1, rep2, rep1, …), and drains
/// them with [`worker`] and a [`Runs`] handler; returns the database (kept for the test), the
/// handler, how many rows the worker handled and the rows as stored afterwards.
async fn drain_notes(per_sender: usize, fail: bool) -> (TestDb, Arc<Runs>, usize, Vec<inbox::Model>) {
    let test_db = TestDb::new();
    let config = test_config(&test_db);
    let (db, _) = wecom_scrm::db::connect_migrated(&config.database, true).await.unwrap();
    store_notes(&db, &["rep1", "rep2"], per_sender).await;
    let runs = Runs::new(&db, fail);
    let handled = worker(&db, &config, runs.clone())
        .drain(&Default::default())
        .await
        .unwrap();
    let rows = all_rows(&db).await;
    (test_db, runs, handled, rows)
}

#[tokio::test]
async fn a_claimed_lane_brings_its_next_rows_along_as_a_run() {
    let (_db, runs, handled, rows) = drain_notes(12, false).await;
    assert_eq!(handled, 24);
    assert!(rows.iter().all(|row| row.status == InboxStatus::Processed));
    assert!(runs.singles.lock().unwrap().is_empty(), "every row went in a run");
    let recorded = runs.runs.lock().unwrap().clone();
    for lane in ["u:rep1", "u:rep2"] {
        let lane_runs = &recorded[lane];
        let flat: Vec<i64> = lane_runs.iter().flatten().copied().collect();
        assert_eq!(flat, ids_of(&rows, lane), "{lane}: each row once, in arrival order");
        // A claim of two rows takes one of each lane, and each lane brings four more along.
        assert_eq!(lane_runs[0].len(), 5, "{lane}: {lane_runs:?}");
        assert!(lane_runs.iter().all(|run| run.len() <= 5), "{lane}: {lane_runs:?}");
    }
}

#[tokio::test]
async fn a_run_that_fails_is_handled_row_by_row_in_order() {
    let (_db, runs, handled, rows) = drain_notes(6, true).await;
    assert_eq!(handled, 12);
    assert!(rows.iter().all(|row| row.status == InboxStatus::Processed));
    assert!(
        rows.iter().all(|row| row.attempts == 1),
        "a failed run costs no attempt"
    );
    assert!(runs.runs.lock().unwrap().is_empty());
    for lane in ["u:rep1", "u:rep2"] {
        assert_eq!(
            runs.singles.lock().unwrap()[lane],
            ids_of(&rows, lane),
            "{lane}: each row once, one by one in arrival order"
        );
    }
}

/// A member's messages waiting together are answered in one run: the context carries from one to
/// the next, the requests still waiting get their own answers in the response, and the others'
/// answers go out as one numbered message; a WeCom retry adds nothing.
#[tokio::test]
async fn a_members_waiting_messages_are_answered_together_each_once() {
    let app = spawn_imported(|c| {
        // Stored only: the test runs the worker once all four wait.
        c.inbox.process = false;
        c.outbox.send = false;
        c.jobs.push_reminders = false;
    })
    .await;
    let target = app.url("/wecom/callback");
    let texts = ["查 张伟", "1", "记 约了周五见面", "记 @刘洋 发了报价"];
    let mut sent = Vec::new();
    for text in texts {
        let xml = compose::text_message(CORP_ID, "rep1", text, next_msg_id(), AGENT_ID, now_secs());
        let answer = app.fake().send_callback(&target, &xml).await.unwrap();
        assert_eq!((answer.status, answer.reply), (200, None), "stored, acknowledged");
        sent.push(xml);
    }
    let rows = app.inbox_rows().await;
    assert_eq!(rows.len(), 4);
    // Requests wait for the first and the last answers (as callback requests do).
    let mut services = (*app.services()).clone();
    services.answers = Arc::new(AwaitedAnswers::new(8, 60_000));
    let services = Arc::new(services);
    let first = services.answers.wait_for(&rows[0].dedupe_key).unwrap();
    let last = services.answers.wait_for(&rows[3].dedupe_key).unwrap();
    let worker = InboxWorker::new(
        app.db.clone(),
        app.config.inbox_worker(),
        Arc::new(EventHandler::new(services.clone())),
        Arc::new(Notify::new()),
        "instance-1".into(),
        services.answers.clone(),
    );
    assert_eq!(worker.drain(&Default::default()).await.unwrap(), 4);
    let first = first.await.unwrap().expect("an answer");
    let last = last.await.unwrap().expect("an answer");
    assert!(first.contains("找到 1 位客户") && first.contains("张伟"), "{first}");
    assert!(last.contains("已记录跟进 · 刘洋"), "{last}");
    app.settle().await;
    let to_rep1 = app.fake().messages_to("rep1");
    assert_eq!(to_rep1.len(), 1, "the other two answers as one message: {to_rep1:?}");
    let text = to_rep1[0].body.display_text();
    let second = text.find("\n\n2. ").expect("numbered");
    assert!(text.starts_with("1. ") && text[..second].contains("张伟"), "{text}");
    assert!(
        text[second..].contains("已记录跟进 · 张伟"),
        "the note without a name went to the customer picked from the list just before: {text}"
    );
    let rows = app.inbox_rows().await;
    let modes: Vec<Option<&str>> = rows.iter().map(|r| r.reply_mode.as_deref()).collect();
    assert_eq!(modes, ["passive", "message", "message", "passive"].map(Some));
    // Each row keeps its own answer (the run writes them all in one statement).
    let replies: Vec<&str> = rows.iter().map(|r| r.reply.as_deref().unwrap_or_default()).collect();
    assert_eq!((replies[0], replies[3]), (first.as_str(), last.as_str()));
    assert!(text[..second].ends_with(replies[1]), "{:?} in {text}", replies[1]);
    assert!(text[second..].ends_with(replies[2]), "{:?} in {text}", replies[2]);
    assert!(replies[2].contains("已记录跟进 · 张伟"), "{}", replies[2]);
    let notes = follow_up::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(notes.len(), 2, "two notes, each once");
    // WeCom retries every message: stored already, answered already.
    for xml in &sent {
        app.fake().send_callback(&target, xml).await.unwrap();
    }
    app.settle().await;
    assert_eq!(app.fake().messages_to("rep1").len(), 1);
    assert_eq!(follow_up::Entity::find().all(&app.db).await.unwrap().len(), 2);
}
