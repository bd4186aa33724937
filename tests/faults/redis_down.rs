//! Redis goes away mid-run: callbacks are still stored once (the database's unique key dedupes),
//! chat keeps answering without its context and says so, and everything recovers by itself when
//! Redis is back.

use std::time::Duration;

use reqwest::StatusCode;
use wecom_scrm::crm::audit::Actor;
use wecom_scrm::sync;
use wecom_scrm::wecom::compose;

use crate::helpers::*;
use crate::servers::ThrowawayRedis;
use wecom_scrm::db::entity::inbox::InboxStatus;

const NO_CONTEXT: &str = "暂时记不住上下文";

async fn note(app: &TestApp, text: &str) -> reqwest::Response {
    let inner = compose::text_message(CORP_ID, "rep1", text, next_msg_id(), AGENT_ID, now_secs());
    app.post_callback(&inner).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_are_stored_and_chat_degrades_while_redis_is_down_then_recovers() {
    let mut redis = ThrowawayRedis::start();
    let url = redis.url();
    let app = TestApp::spawn_with_fake(test_fixture(), |c| c.redis.url = url.as_str().into()).await;
    assert_eq!(app.services().cache.backend_name(), "redis");
    let s = app.services();
    sync::sync_org(&s, &Actor::Sync, &mut |_| {}).await.unwrap();
    sync::sync_customers(&s, &mut |_| {}).await.unwrap();

    assert_eq!(
        app.say("rep1", "记 @张伟 已报价，等审批").await,
        "✅ 已记录跟进 · 张伟(华为)"
    );

    redis.kill();
    // Callbacks: acknowledged and stored, a retry of the same one stored once.
    let sealed = app.seal(&compose::text_message(
        CORP_ID,
        "rep2",
        "记 @刘洋 约了周五见面",
        next_msg_id(),
        AGENT_ID,
        now_secs(),
    ));
    for _ in 0..3 {
        assert_eq!(app.post_sealed(&sealed).await.status(), StatusCode::OK);
    }
    for i in 0..20 {
        assert_eq!(
            note(&app, &format!("记 @张伟 第{i}次沟通")).await.status(),
            StatusCode::OK
        );
    }
    let rows = app.wait_until_settled(Duration::from_secs(30)).await;
    assert_eq!(rows.len(), 1 + 1 + 20, "one row per distinct callback");
    assert!(rows.iter().all(|r| r.status == InboxStatus::Processed), "{rows:#?}");
    // Chat still answers, and says it cannot keep the context.
    let answer = app.say("rep1", "记 @张伟 又打了电话").await;
    assert!(answer.starts_with("✅ 已记录跟进 · 张伟(华为)"), "{answer}");
    assert!(answer.contains(NO_CONTEXT), "{answer}");
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK, "the process stays up");

    redis.resume();
    // No restart needed: the connection comes back on its own.
    let recovered = wait_for(Duration::from_secs(20), || async {
        let answer = app.say("rep1", "记 @张伟 恢复后的记录").await;
        (!answer.contains(NO_CONTEXT)).then_some(answer)
    })
    .await;
    assert!(recovered.is_some(), "chat keeps its context again once Redis is back");
    let ready = wait_for(Duration::from_secs(10), || async {
        let response = app.client.get(app.url("/readyz")).send().await.unwrap();
        (response.status() == StatusCode::OK).then_some(())
    })
    .await;
    assert!(ready.is_some(), "readyz is green again");
    // The retry from before the outage is still recognised.
    let before = app.inbox_rows().await.len();
    assert_eq!(app.post_sealed(&sealed).await.status(), StatusCode::OK);
    assert_eq!(app.inbox_rows().await.len(), before);
}
