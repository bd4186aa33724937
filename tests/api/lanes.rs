//! The inbox in lanes: one member's chat (one customer's contact events) handled in arrival order,
//! different lanes side by side, also with two workers on one database; a slow lane holds only
//! itself.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use wecom_scrm::db::entity::inbox::{self, InboxStatus};
use wecom_scrm::inbox::answers::AwaitedAnswers;
use wecom_scrm::inbox::{self as store, HandlerFuture, InboxHandler, InboxWorker, Outcome};
use wecom_scrm::wecom::callback::{Callback, parse_callback};
use wecom_scrm::wecom::compose;

use crate::helpers::*;

/// Records what ran when: per lane the rows in the order handled, whether a lane was ever
/// handled twice at once, and how many lanes ran at once at most.
#[derive(Default)]
struct Recorder {
    handled: Mutex<HashMap<String, Vec<i64>>>,
    running: Mutex<HashSet<String>>,
    overlaps: AtomicUsize,
    now: AtomicUsize,
    most: AtomicUsize,
    /// Rows of this lane wait for `release` before they finish.
    slow_lane: Option<String>,
    release: Notify,
}

impl InboxHandler for Recorder {
    fn handle<'a>(&'a self, row: &'a inbox::Model, _callback: &'a Callback) -> HandlerFuture<'a> {
        Box::pin(async move {
            let lane = row.lane.clone().expect("a chat row has a lane");
            if !self.running.lock().unwrap().insert(lane.clone()) {
                self.overlaps.fetch_add(1, Ordering::SeqCst);
            }
            let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            if self.slow_lane.as_ref() == Some(&lane) {
                self.release.notified().await;
            } else {
                // Long enough for lanes to overlap, varied so that they interleave.
                tokio::time::sleep(Duration::from_millis(1 + (row.id % 4) as u64)).await;
            }
            self.now.fetch_sub(1, Ordering::SeqCst);
            self.running.lock().unwrap().remove(&lane);
            self.handled.lock().unwrap().entry(lane).or_default().push(row.id);
            Ok(Outcome::Processed("recorded".into()))
        })
    }
}

pub(crate) async fn store_notes(db: &DatabaseConnection, senders: &[&str], per_sender: usize) {
    let (writer, _task) = store::InboxWriter::spawn(db.clone(), 64, Arc::new(Notify::new()));
    for i in 0..per_sender {
        for sender in senders {
            let xml = compose::text_message(
                CORP_ID,
                sender,
                &format!("记 第{i}条"),
                next_msg_id(),
                AGENT_ID,
                now_secs(),
            );
            let callback = parse_callback(&xml).unwrap();
            writer.store(store::NewCallback::new(&callback, xml)).await.unwrap();
        }
    }
}

fn worker(
    db: &DatabaseConnection,
    config: &wecom_scrm::config::Config,
    name: &str,
    handler: Arc<Recorder>,
) -> InboxWorker {
    let mut inbox = config.inbox_worker();
    inbox.lanes = 4;
    inbox.claim_batch = 8;
    InboxWorker::new(
        db.clone(),
        inbox,
        handler,
        Arc::new(Notify::new()),
        name.into(),
        Arc::new(AwaitedAnswers::new(0, 2000)),
    )
}

async fn open_rows(db: &DatabaseConnection) -> u64 {
    inbox::Entity::find()
        .filter(inbox::Column::Status.is_in(InboxStatus::OPEN))
        .count(db)
        .await
        .unwrap()
}

#[tokio::test]
async fn each_lane_in_order_and_lanes_side_by_side_with_two_workers() {
    let test_db = TestDb::new();
    let config = test_config(&test_db);
    let (db, _) = wecom_scrm::db::connect_migrated(&config.database, true).await.unwrap();
    let senders = ["rep1", "rep2", "rep3", "rep4", "rep5", "rep6"];
    store_notes(&db, &senders, 10).await;
    let recorder = Arc::new(Recorder::default());
    let other_db = wecom_scrm::db::connect(&config.database).await.unwrap();
    let (one, two) = (
        worker(&db, &config, "instance-1", recorder.clone()),
        worker(&other_db, &config, "instance-2", recorder.clone()),
    );
    for _ in 0..200 {
        let token = CancellationToken::new();
        let (a, b) = tokio::join!(one.drain(&token), two.drain(&token));
        a.unwrap();
        b.unwrap();
        if open_rows(&db).await == 0 {
            break;
        }
    }
    assert_eq!(open_rows(&db).await, 0, "everything handled");
    assert_eq!(recorder.overlaps.load(Ordering::SeqCst), 0, "a lane ran twice at once");
    let handled = recorder.handled.lock().unwrap();
    assert_eq!(handled.len(), senders.len());
    for (lane, ids) in handled.iter() {
        assert_eq!(ids.len(), 10, "{lane}: every row once");
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{lane} out of order: {ids:?}");
    }
    assert!(recorder.most.load(Ordering::SeqCst) > 1, "lanes ran side by side");
}

#[tokio::test]
async fn a_slow_lane_holds_only_itself() {
    let test_db = TestDb::new();
    let config = test_config(&test_db);
    let (db, _) = wecom_scrm::db::connect_migrated(&config.database, true).await.unwrap();
    store_notes(&db, &["slow"], 2).await;
    store_notes(&db, &["quick1", "quick2", "quick3"], 5).await;
    let recorder = Arc::new(Recorder {
        slow_lane: Some("u:slow".into()),
        ..Default::default()
    });
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker(&db, &config, "instance-1", recorder.clone()).run(shutdown.clone()));
    let others_done = wait_for(Duration::from_secs(10), || async {
        let open = open_rows(&db).await;
        (open == 2).then_some(())
    })
    .await;
    assert!(
        others_done.is_some(),
        "the quick lanes finished while the slow one waits"
    );
    assert!(recorder.handled.lock().unwrap().get("u:slow").is_none());
    recorder.release.notify_one();
    recorder.release.notify_one();
    let all_done = wait_for(Duration::from_secs(10), || async {
        recorder.release.notify_one();
        (open_rows(&db).await == 0).then_some(())
    })
    .await;
    assert!(all_done.is_some(), "the slow lane finished once released");
    shutdown.cancel();
    running.await.unwrap();
    let handled = recorder.handled.lock().unwrap();
    let slow = &handled["u:slow"];
    assert!(slow.len() == 2 && slow[0] < slow[1], "{slow:?}");
}

/// With everything running, answers that miss their response within `outbox.answer_gather_ms` of
/// each other go out as one message.
#[tokio::test]
async fn answers_missing_their_response_are_gathered_into_one_message() {
    let app = spawn_imported(|c| {
        c.bot.max_waiting_replies = 0;
        c.outbox.answer_gather_ms = 1500;
    })
    .await;
    let target = app.url("/wecom/callback");
    for text in ["记 @张伟 第一次拜访", "记 @张伟 第二次拜访", "记 @张伟 第三次拜访"] {
        let xml = compose::text_message(CORP_ID, "rep1", text, next_msg_id(), AGENT_ID, now_secs());
        let answer = app.fake().send_callback(&target, &xml).await.unwrap();
        assert_eq!(
            (answer.status, answer.reply),
            (200, None),
            "nobody waits for the answer"
        );
    }
    app.wait_until_settled(Duration::from_secs(10)).await;
    app.wait_for_notifications().await;
    let sent = app.fake().messages_to("rep1");
    assert_eq!(sent.len(), 1, "{sent:?}");
    let text = sent[0].body.display_text();
    assert!(text.starts_with("1. ") && text.contains("\n\n3. "), "{text}");
}

/// Answers that go through the message API while earlier ones for the same member still wait
/// are one numbered message; a WeCom retry adds nothing.
#[tokio::test]
async fn answers_waiting_for_one_member_go_out_as_one_message() {
    let app = spawn_imported(|c| {
        // Nothing is answered in the response: the worker runs only when the test says.
        c.inbox.process = false;
        c.outbox.send = false;
        c.jobs.push_reminders = false;
    })
    .await;
    let target = app.url("/wecom/callback");
    let mut first = None;
    for (who, text) in [
        ("rep1", "记 @张伟 第一次拜访"),
        ("rep1", "记 @张伟 第二次拜访"),
        ("rep2", "记 @刘洋 约了下周"),
        ("rep1", "记 @张伟 第三次拜访"),
    ] {
        let xml = compose::text_message(CORP_ID, who, text, next_msg_id(), AGENT_ID, now_secs());
        let answer = app.fake().send_callback(&target, &xml).await.unwrap();
        assert_eq!((answer.status, answer.reply), (200, None), "acknowledged at once");
        first.get_or_insert(xml);
    }
    app.settle().await;
    let to_rep1 = app.fake().messages_to("rep1");
    assert_eq!(to_rep1.len(), 1, "one message for three answers");
    let text = to_rep1[0].body.display_text();
    let (one, two, three) = (
        text.find("1. ").unwrap(),
        text.find("\n\n2. ").unwrap(),
        text.find("\n\n3. ").unwrap(),
    );
    assert!(one < two && two < three, "{text}");
    assert!(
        text[one..two].contains("已记录跟进") && text[three..].contains("已记录跟进"),
        "{text}"
    );
    let to_rep2 = app.fake().messages_to("rep2");
    assert_eq!(to_rep2.len(), 1);
    assert!(
        !to_rep2[0].body.display_text().starts_with("1. "),
        "a single answer is not numbered"
    );
    assert!(
        app.inbox_rows()
            .await
            .iter()
            .all(|r| r.reply_mode.as_deref() == Some("message"))
    );
    // WeCom retries the first message: stored already, answered already.
    app.fake()
        .send_callback(&target, first.as_deref().unwrap())
        .await
        .unwrap();
    app.settle().await;
    assert_eq!(app.fake().messages_to("rep1").len(), 1);
}
