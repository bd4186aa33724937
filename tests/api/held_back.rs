//! Rows held back together: a row refused because a dependency is at capacity (a spent call
//! budget) defers the waiting rows of its kind with it, so the chat that came after them is not kept
//! waiting while each of them is claimed and refused in turn.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sea_orm::{EntityTrait, QueryOrder};
use tokio::sync::Notify;
use wecom_scrm::db::entity::inbox::{self, InboxStatus};
use wecom_scrm::inbox::answers::AwaitedAnswers;
use wecom_scrm::inbox::{HandlerError, HandlerFuture, InboxHandler, InboxWorker, Outcome};
use wecom_scrm::inbox::{InboxWriter, NewCallback};
use wecom_scrm::wecom::callback::{Callback, parse_callback};
use wecom_scrm::wecom::compose::{self, ExternalContactExtras};

use crate::helpers::*;
use crate::lanes::store_notes;

const BUDGET_RESETS_IN: Duration = Duration::from_secs(60);

/// Refuses every contact event as over its budget; handles everything else. Records the kinds it
/// was asked to handle.
#[derive(Default)]
struct SpentBudget {
    asked: Mutex<Vec<String>>,
}

impl InboxHandler for SpentBudget {
    fn handle<'a>(&'a self, row: &'a inbox::Model, _callback: &'a Callback) -> HandlerFuture<'a> {
        Box::pin(async move {
            self.asked.lock().unwrap().push(row.kind.clone());
            if row.kind.starts_with("change_external_contact:") {
                return Err(HandlerError::Deferred(
                    "externalcontact/get is over its per-minute call budget".into(),
                    BUDGET_RESETS_IN,
                ));
            }
            Ok(Outcome::Processed("done".into()))
        })
    }
}

#[tokio::test]
async fn a_row_refused_for_capacity_holds_back_its_kind_and_the_chat_behind_goes_on() {
    let test_db = TestDb::new();
    let config = test_config(&test_db);
    let (db, _) = wecom_scrm::db::connect_migrated(&config.database, true).await.unwrap();
    // 40 new customers (a lane each), then a rep's four notes.
    let (writer, _task) = InboxWriter::spawn(db.clone(), 64, Arc::new(Notify::new()));
    for i in 0..40 {
        let xml = compose::external_contact_event(
            CORP_ID,
            "add_external_contact",
            "rep1",
            &format!("wm-held-{i}"),
            &ExternalContactExtras::default(),
            now_secs(),
        );
        let callback = parse_callback(&xml).unwrap();
        writer.store(NewCallback::new(&callback, xml)).await.unwrap();
    }
    store_notes(&db, &["rep1"], 4).await;

    let started = wecom_scrm::db::now_ms();
    let handler = Arc::new(SpentBudget::default());
    let mut settings = config.inbox_worker();
    settings.lanes = 2;
    settings.claim_batch = 4;
    let worker = InboxWorker::new(
        db.clone(),
        settings,
        handler.clone(),
        Arc::new(Notify::new()),
        "instance-1".into(),
        Arc::new(AwaitedAnswers::new(8, 60_000)),
    );
    worker.drain(&Default::default()).await.unwrap();

    let asked = handler.asked.lock().unwrap().clone();
    let contacts = asked
        .iter()
        .filter(|kind| kind.starts_with("change_external_contact:"))
        .count();
    assert_eq!(
        contacts, 4,
        "only the first claim's contact events were tried: {asked:?}"
    );
    let rows = inbox::Entity::find()
        .order_by_asc(inbox::Column::Id)
        .all(&db)
        .await
        .unwrap();
    let (events, notes) = rows.split_at(40);
    assert!(
        notes.iter().all(|row| row.status == InboxStatus::Processed),
        "the chat went on"
    );
    // Every event waits until the budget resets (a refused one up to a fifth longer, so that they
    // do not all come back at once), and neither a refusal nor being held back counts as an attempt.
    let resets = BUDGET_RESETS_IN.as_millis() as i64;
    for row in events {
        assert_eq!((row.status, row.attempts), (InboxStatus::Pending, 0));
        let due_in = row.next_attempt_at - started;
        assert!(
            (resets..=resets * 12 / 10 + 1_000).contains(&due_in),
            "row {} waits for the budget: due {due_in} ms after the start",
            row.id
        );
    }
}
