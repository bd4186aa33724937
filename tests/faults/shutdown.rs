//! SIGTERM under load, on the real binary: requests in flight finish, everything acknowledged is
//! stored, and no inbox row, reminder or outgoing message is left claimed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use wecom_scrm::crm::audit::Actor;
use wecom_scrm::crm::reminders;
use wecom_scrm::db::entity::{inbox, outbox, reminder};
use wecom_scrm::db::now_ms;
use wecom_scrm::wecom::compose;
use wecom_scrm::wecom::fake::FakeWecom;

use crate::helpers::*;
use wecom_scrm::db::entity::inbox::InboxStatus;

/// Posts distinct text messages until the server stops answering; returns the acknowledged ones.
async fn keep_posting(base: String, stop: Arc<AtomicBool>) -> Vec<String> {
    let (client, crypto) = (http_client(), crypto());
    let mut acknowledged = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let inner = compose::text_message(CORP_ID, "rep1", "记 @张伟 跟进", next_msg_id(), AGENT_ID, now_secs());
        let sealed = crypto.seal_callback(&inner, &AGENT_ID.to_string(), &now_secs().to_string(), "7");
        let sent = client
            .post(format!("{base}/wecom/callback"))
            .query(&[
                ("msg_signature", sealed.msg_signature.as_str()),
                ("timestamp", sealed.timestamp.as_str()),
                ("nonce", sealed.nonce.as_str()),
            ])
            .body(sealed.body)
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match sent {
            Ok(response) if response.status() == 200 => acknowledged.push(inner),
            // Refused (shutting down) or not accepted any more: WeCom would retry elsewhere.
            Ok(_) | Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    acknowledged
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_finishes_in_flight_work_and_leaves_nothing_claimed() {
    let fake = FakeWecom::start_local(test_fixture()).await.unwrap();
    // Slow pushes, so some are on the wire when the signal comes.
    fake.set_delay(Duration::from_millis(300));
    let (db, dir) = (TestDb::new(), tempfile::tempdir().unwrap());
    let mut cmd = binary_command(&db, &dir);
    cmd.arg("serve")
        .env("SCRM_WECOM__API_BASE", fake.url())
        .env("SCRM_JOBS__ENABLED", "true")
        .env("SCRM_JOBS__PUSH_REMINDERS", "true")
        .env("SCRM_JOBS__POLL_INTERVAL_MS", "100")
        .env("SCRM_SERVER__SHUTDOWN_GRACE_SECS", "10");
    let mut server = Running::spawn(&mut cmd);
    let listening = server.wait_for_stderr(|line| line.contains("\"wecom-scrm listening\""));
    let addr = serde_json::from_str::<serde_json::Value>(&listening).unwrap()["addr"]
        .as_str()
        .unwrap()
        .to_owned();
    let base = format!("http://{addr}");

    let config = test_config(&db);
    let conn = wecom_scrm::db::connect(&config.database).await.unwrap();
    for i in 0..40 {
        let owner = ["rep1", "rep2", "rep3", "lead1"][i % 4];
        reminders::create(
            &conn,
            owner,
            &Actor::Member(owner.into()),
            None,
            &format!("事项{i}"),
            now_ms() - 1000,
            "manual",
            now_ms(),
        )
        .await
        .unwrap();
    }

    let stop = Arc::new(AtomicBool::new(false));
    let posters: Vec<_> = (0..4)
        .map(|_| tokio::spawn(keep_posting(base.clone(), stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let code = tokio::task::spawn_blocking(move || {
        let code = server.terminate();
        (code, server)
    })
    .await
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    let (code, server) = code;
    assert_eq!(code, 0, "graceful exit; stderr:\n{}", server.stdout());
    let mut acknowledged = Vec::new();
    for poster in posters {
        acknowledged.extend(poster.await.unwrap());
    }
    assert!(
        acknowledged.len() >= 10,
        "the load ran: {} acknowledged",
        acknowledged.len()
    );

    let rows = inbox::Entity::find().all(&conn).await.unwrap();
    let stored: std::collections::HashSet<&str> = rows.iter().map(|r| r.payload.as_str()).collect();
    let lost = acknowledged.iter().filter(|m| !stored.contains(m.as_str())).count();
    assert_eq!(lost, 0, "every acknowledged callback is stored");
    assert_eq!(stored.len(), rows.len(), "and stored once");
    let claimed_rows = rows.iter().filter(|r| r.status == InboxStatus::Processing).count();
    assert_eq!(claimed_rows, 0, "no inbox row left claimed");
    let claimed_reminders = reminder::Entity::find()
        .filter(reminder::Column::DeliveryState.eq("claimed"))
        .count(&conn)
        .await
        .unwrap();
    assert_eq!(claimed_reminders, 0, "no reminder left claimed");
    let sending = outbox::Entity::find()
        .filter(outbox::Column::Status.eq("sending"))
        .count(&conn)
        .await
        .unwrap();
    assert_eq!(sending, 0, "no message left mid-send");
    // What was pushed before the signal is recorded as sent; nothing went out twice.
    let pushed: usize = fake.messages().len();
    let sent = outbox::Entity::find()
        .filter(outbox::Column::Status.eq("sent"))
        .count(&conn)
        .await
        .unwrap();
    assert_eq!(
        pushed as u64, sent,
        "every push WeCom received is recorded, and only those"
    );
}
