//! WeCom's API down, then rate-limiting: pushes back off while it is away and are delivered once
//! it recovers, each exactly once.

use std::time::Duration;

use sea_orm::EntityTrait;
use wecom_scrm::crm::audit::Actor;
use wecom_scrm::crm::reminders;
use wecom_scrm::db::entity::{outbox, reminder};
use wecom_scrm::db::now_ms;
use wecom_scrm::sync;
use wecom_scrm::wecom::fake::{FakeWecom, FaultKind};

use wecom_scrm::db::entity::outbox::MessageState;
use wecom_scrm::db::entity::reminder::DeliveryState;

use crate::helpers::*;

/// WeCom's "API calls over the frequency limit".
const API_FREQ_OUT_OF_LIMIT: i64 = 45009;

/// The reminders that fall due while WeCom is away: owner and text.
const DUE: [(&str, &str); 4] = [
    ("rep1", "回电话"),
    ("rep1", "发报价"),
    ("rep2", "约见面"),
    ("rep3", "寄样品"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_back_off_while_wecom_is_down_and_go_out_once_when_it_recovers() {
    let mut app = TestApp::spawn_with_fake(test_fixture(), |c| {
        c.jobs.push_reminders = true;
        c.jobs.poll_interval_ms = 100;
        c.wecom.request_timeout_ms = 500;
        c.wecom.connect_timeout_ms = 200;
    })
    .await;
    let s = app.services();
    sync::sync_org(&s, &Actor::Sync, &mut |_| {}).await.unwrap();
    sync::sync_customers(&s, &mut |_| {}).await.unwrap();

    let fake = app.fake.take().unwrap();
    let addr = fake.addr();
    fake.stop().await;
    let mut ids = Vec::new();
    for (owner, text) in DUE {
        let r = reminders::create(
            &app.db,
            owner,
            &Actor::Member(owner.into()),
            None,
            text,
            now_ms() - 1000,
            "manual",
            now_ms(),
        )
        .await
        .unwrap();
        ids.push(r.id);
    }
    // While WeCom is unreachable the messages wait with growing delays, not in a tight loop.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let waiting = outbox::Entity::find().all(&app.db).await.unwrap();
    assert!(!waiting.is_empty(), "the pushes were queued");
    for message in &waiting {
        assert_eq!(message.status, MessageState::Pending, "{message:?}");
        assert!(message.last_error.is_some(), "the failure is recorded: {message:?}");
        assert!(
            (1..=6).contains(&message.attempts),
            "backed off (50 ms doubling) rather than retried in a loop: {} attempts",
            message.attempts
        );
    }

    // WeCom is back, but rate-limits the first few sends.
    let fake = FakeWecom::start(test_fixture(), addr)
        .await
        .expect("WeCom back on the same address");
    fake.inject(Some("message/send"), FaultKind::Errcode(API_FREQ_OUT_OF_LIMIT), 3);
    app.fake = Some(fake);
    let delivered = wait_for(Duration::from_secs(60), || async {
        let rows = reminder::Entity::find().all(&app.db).await.unwrap();
        rows.iter()
            .all(|r| r.delivery_state == DeliveryState::Sent)
            .then_some(rows)
    })
    .await;
    assert!(delivered.is_some(), "every reminder pushed after the recovery");
    // Nothing twice: each reminder in exactly one message, to its owner (two of one rep's may share
    // a message or not, depending on when they were claimed).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let messages = app.fake().messages();
    for (owner, text) in DUE {
        let carrying: Vec<_> = messages
            .iter()
            .filter(|m| m.body.display_text().contains(text))
            .collect();
        assert_eq!(carrying.len(), 1, "{text} pushed once: {messages:#?}");
        assert_eq!(carrying[0].to_users, [owner], "{text} pushed to {owner}");
    }
    let sent = outbox::Entity::find().all(&app.db).await.unwrap();
    assert!(sent.iter().all(|m| m.status == MessageState::Sent), "{sent:#?}");
}
