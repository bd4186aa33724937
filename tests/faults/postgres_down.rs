//! PostgreSQL goes away mid-run (stopped the hard way, like a crash): callbacks are answered 503 so
//! that WeCom retries them, nothing acknowledged is lost, and the service recovers by itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use reqwest::StatusCode;
use wecom_scrm::inbox::UnhandledKinds;
use wecom_scrm::wecom::compose;

use crate::helpers::*;
use crate::servers::ThrowawayPostgres;
use wecom_scrm::db::entity::inbox::InboxStatus;

/// What WeCom saw for one message: every answer, and the slowest refusal.
struct Delivery {
    statuses: Vec<StatusCode>,
    slowest_refusal: Duration,
}

/// Posts the callback `delay` from now, then again like WeCom until it is acknowledged.
async fn deliver_like_wecom(app: &TestApp, inner: &str, delay: Duration) -> Delivery {
    tokio::time::sleep(delay).await;
    let sealed = app.seal(inner);
    let mut delivery = Delivery {
        statuses: Vec::new(),
        slowest_refusal: Duration::ZERO,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let started = Instant::now();
        let status = app.post_sealed(&sealed).await.status();
        delivery.statuses.push(status);
        if status == StatusCode::OK || Instant::now() > deadline {
            return delivery;
        }
        delivery.slowest_refusal = delivery.slowest_refusal.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_are_refused_with_503_while_postgres_is_down_and_none_acknowledged_is_lost() {
    let mut pg = tokio::task::spawn_blocking(ThrowawayPostgres::start).await.unwrap();
    let test_db = TestDb::on_server(&pg.url());
    let mut config = test_config(&test_db);
    config.database.connect_timeout_secs = 2;
    let app = TestApp::start(test_db, config, Arc::new(UnhandledKinds)).await;

    // 300 distinct messages over about three seconds; the database is down for two of them.
    let inners: Vec<String> = (0..300)
        .map(|i| {
            compose::text_message(
                CORP_ID,
                "rep1",
                &format!("记 第{i}条"),
                next_msg_id(),
                AGENT_ID,
                now_secs(),
            )
        })
        .collect();
    let outage = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        pg.kill();
        std::thread::sleep(Duration::from_secs(2));
        pg.resume();
        pg
    });
    let deliveries = join_all(
        inners
            .iter()
            .enumerate()
            .map(|(i, inner)| deliver_like_wecom(&app, inner, Duration::from_millis(10 * i as u64))),
    )
    .await;
    let _pg = outage.join().expect("the outage thread");

    let refused = deliveries
        .iter()
        .filter(|d| d.statuses.contains(&StatusCode::SERVICE_UNAVAILABLE))
        .count();
    assert!(refused > 0, "the outage was noticed");
    for d in &deliveries {
        assert_eq!(
            d.statuses.last(),
            Some(&StatusCode::OK),
            "acknowledged in the end: {:?}",
            d.statuses
        );
        assert!(
            d.statuses[..d.statuses.len() - 1]
                .iter()
                .all(|s| *s == StatusCode::SERVICE_UNAVAILABLE),
            "refusals are 503 (WeCom retries those): {:?}",
            d.statuses
        );
        assert!(
            d.slowest_refusal < Duration::from_secs(5),
            "refused within WeCom's 5 s wait: {:?}",
            d.slowest_refusal
        );
    }
    // Every message stored exactly once, the ones acknowledged before the crash included.
    let rows = app.wait_until_settled(Duration::from_secs(30)).await;
    let mut stored: Vec<&str> = rows.iter().map(|r| r.payload.as_str()).collect();
    let mut sent: Vec<&str> = inners.iter().map(String::as_str).collect();
    stored.sort_unstable();
    sent.sort_unstable();
    assert_eq!(stored.len(), sent.len(), "one row per message");
    assert_eq!(stored, sent);
    assert!(
        rows.iter().all(|r| r.status == InboxStatus::Ignored),
        "the worker went on after the outage"
    );
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
}
