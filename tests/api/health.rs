//! Operations: liveness, readiness, request ids, and graceful shutdown.

use std::time::Duration;

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::Value;
use wecom_scrm::wecom::compose;

use crate::helpers::*;
use wecom_scrm::db::entity::inbox::InboxStatus;

#[tokio::test]
async fn healthz_and_readyz() {
    let app = TestApp::spawn().await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert!(
        health.headers().contains_key("x-request-id"),
        "every response carries its request id"
    );
    assert_eq!(health.text().await.unwrap(), "ok");

    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"status": "ok", "database": "ok", "cache": "ok"})
    );
}

#[tokio::test]
async fn readyz_names_the_failing_dependency() {
    let app = TestApp::spawn().await;
    // Close the app's own pool: its database is gone as far as it can tell.
    app.app_db.clone().close().await.unwrap();
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["cache"], "ok");
    assert!(body["database"].as_str().unwrap().starts_with("error"), "{body}");
    // And callbacks are refused with 503 rather than acknowledged.
    let inner = compose::text_message(CORP_ID, "a", "x", next_msg_id(), AGENT_ID, now_secs());
    assert_eq!(
        app.post_callback(&inner).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn unknown_routes_are_404() {
    let app = TestApp::spawn().await;
    let response = app.client.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn shutdown_under_load_acknowledges_only_what_was_stored() {
    let app = TestApp::spawn().await;
    let inners: Vec<String> = (0..120)
        .map(|i| {
            compose::text_message(
                CORP_ID,
                "zhangsan",
                &format!("n{i}"),
                next_msg_id(),
                AGENT_ID,
                now_secs(),
            )
        })
        .collect();
    let client = app.client.clone();
    let url = app.url("/wecom/callback");
    let sealed: Vec<_> = inners.iter().map(|inner| app.seal(inner)).collect();
    let sends = sealed.into_iter().map(|s| {
        let (client, url) = (client.clone(), url.clone());
        tokio::spawn(async move {
            let result = client
                .post(url)
                .query(&[
                    ("msg_signature", s.msg_signature),
                    ("timestamp", s.timestamp),
                    ("nonce", s.nonce),
                ])
                .body(s.body)
                .send()
                .await;
            result.map(|r| r.status()).ok()
        })
    });
    let sends: Vec<_> = sends.collect();
    // A real wait: the requests must be in flight when the shutdown begins.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let db = app.db.clone();
    let (_db, _config) = app.stop().await;
    let statuses: Vec<Option<StatusCode>> = join_all(sends).await.into_iter().map(|r| r.unwrap()).collect();
    let acknowledged = statuses.iter().filter(|s| **s == Some(StatusCode::OK)).count();
    let stored = wecom_scrm::inbox::list(&db, None, 1000).await.unwrap();
    assert!(
        acknowledged <= stored.len(),
        "acknowledged {acknowledged} but stored {}",
        stored.len()
    );
    assert!(
        statuses
            .iter()
            .all(|s| matches!(s, None | Some(StatusCode::OK) | Some(StatusCode::SERVICE_UNAVAILABLE))),
        "{statuses:?}"
    );
    // Nothing is left claimed: the worker finished or released what it held.
    assert!(
        stored.iter().all(|r| r.status != InboxStatus::Processing),
        "{stored:#?}"
    );
}
