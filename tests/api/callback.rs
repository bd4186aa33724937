//! `/wecom/callback` end to end: verification, storage exactly once, and every rejection.

use std::time::Duration;

use futures::future::join_all;
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};
use wecom_scrm::wecom::compose::{self, ExternalContactExtras};

use crate::helpers::*;
use wecom_scrm::db::entity::inbox::InboxStatus;

#[tokio::test]
async fn url_verification_answers_the_decrypted_echostr_exactly() {
    let app = TestApp::spawn().await;
    let crypto = crypto();
    let echo = "1288432023552776189";
    let echostr = crypto.encrypt(echo);
    let (timestamp, nonce) = (now_secs().to_string(), "47744683".to_string());
    let signature = String::from_utf8(crypto.signature(&timestamp, &nonce, &echostr).to_vec()).unwrap();
    let response = app
        .client
        .get(app.url("/wecom/callback"))
        .query(&[
            ("msg_signature", &signature),
            ("timestamp", &timestamp),
            ("nonce", &nonce),
            ("echostr", &echostr),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(response.text().await.unwrap(), echo);

    // A tampered nonce fails the signature.
    let response = app
        .client
        .get(app.url("/wecom/callback"))
        .query(&[
            ("msg_signature", &signature),
            ("timestamp", &timestamp),
            ("nonce", &"1".to_string()),
            ("echostr", &echostr),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn url_verification_with_the_official_vector_when_the_window_is_off() {
    // Set B of the official samples, signed in 2016: only acceptable with the timestamp check off.
    let app = TestApp::spawn_with(
        |c| c.wecom.max_timestamp_age_secs = 0,
        std::sync::Arc::new(wecom_scrm::inbox::UnhandledKinds),
    )
    .await;
    let url = format!(
        "{}?msg_signature=012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb&timestamp=1476416373&nonce=47744683&echostr={}",
        app.url("/wecom/callback"),
        "fsi1xnbH4yQh0%2BPJxcOdhhK6TDXkjMyhEPA7xB2TGz6b%2Bg7xyAbEkRxN%2F3cNXW9qdqjnoVzEtpbhnFyq6SVHyA%3D%3D"
    );
    let response = app.client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "1288432023552776189");
}

#[tokio::test]
async fn a_text_message_is_stored_once_and_processed_within_a_second() {
    // Polling every minute: only the writer's wake-up can get the row handled quickly.
    let app = TestApp::spawn_with(
        |c| c.inbox.poll_interval_ms = 60_000,
        std::sync::Arc::new(wecom_scrm::inbox::UnhandledKinds),
    )
    .await;
    let msg_id = next_msg_id();
    let inner = compose::text_message(
        CORP_ID,
        "zhangsan",
        "跟进 张总 明天下午三点回访",
        msg_id,
        AGENT_ID,
        now_secs(),
    );
    let response = app.post_callback(&inner).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "", "no passive reply: an empty body");

    let rows = app.inbox_rows().await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.dedupe_key, format!("msg:{msg_id}"));
    assert_eq!(row.kind, "text");
    assert_eq!(row.from_user.as_deref(), Some("zhangsan"));
    assert_eq!(row.agent_id, Some(AGENT_ID));
    assert_eq!(row.payload, inner);

    let rows = app.wait_until_settled(Duration::from_secs(1)).await;
    assert_eq!(rows[0].status, InboxStatus::Ignored);
    assert_eq!(rows[0].outcome.as_deref(), Some("no handler for text"));
    assert_eq!(rows[0].attempts, 1);
}

#[tokio::test]
async fn wecom_retries_of_the_same_callback_create_one_row() {
    let app = TestApp::spawn().await;
    let text = compose::text_message(CORP_ID, "zhangsan", "hello", next_msg_id(), AGENT_ID, now_secs());
    let add = compose::external_contact_event(
        CORP_ID,
        "add_external_contact",
        "zhangsan",
        "wmRetry",
        &ExternalContactExtras {
            state: Some("expo"),
            welcome_code: Some("W1"),
            ..Default::default()
        },
        now_secs(),
    );
    for inner in [&text, &add] {
        // WeCom re-encrypts on each retry: different ciphertext, same content.
        let sends = (0..3).map(|_| app.post_callback(inner));
        for response in join_all(sends).await {
            assert_eq!(response.status(), StatusCode::OK);
        }
        // And retries arriving after the first was stored.
        assert_eq!(app.post_callback(inner).await.status(), StatusCode::OK);
    }
    let rows = app.inbox_rows().await;
    assert_eq!(rows.len(), 2, "{rows:#?}");
}

#[tokio::test]
async fn two_customers_adding_the_same_rep_in_the_same_second_are_two_rows() {
    let app = TestApp::spawn().await;
    let at = now_secs();
    for external in ["wmCustomerOne", "wmCustomerTwo"] {
        let inner = compose::external_contact_event(
            CORP_ID,
            "add_external_contact",
            "zhangsan",
            external,
            &ExternalContactExtras::default(),
            at,
        );
        assert_eq!(app.post_callback(&inner).await.status(), StatusCode::OK);
    }
    let rows = app.inbox_rows().await;
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .all(|r| r.kind == "change_external_contact:add_external_contact")
    );
    assert!(rows.iter().all(|r| r.from_user.as_deref() == Some("zhangsan")));
}

#[tokio::test]
async fn every_event_kind_is_stored_with_its_kind_and_plain_text_xml_is_accepted() {
    let app = TestApp::spawn().await;
    let at = now_secs();
    let mut inputs = vec![
        (
            compose::app_event(CORP_ID, "zhangsan", "enter_agent", "", AGENT_ID, at),
            "event:enter_agent",
        ),
        (
            compose::app_event(CORP_ID, "zhangsan", "click", "DAILY_SUMMARY", AGENT_ID, at),
            "event:click",
        ),
        (
            compose::app_event(CORP_ID, "zhangsan", "view", "https://example.com", AGENT_ID, at),
            "event:view",
        ),
        (
            compose::contact_event(CORP_ID, "create_user", "wangwu", at),
            "change_contact:create_user",
        ),
        (
            compose::contact_event(CORP_ID, "update_user", "wangwu", at),
            "change_contact:update_user",
        ),
        (
            compose::contact_event(CORP_ID, "delete_user", "wangwu", at),
            "change_contact:delete_user",
        ),
    ];
    for change in [
        "add_half_external_contact",
        "edit_external_contact",
        "del_external_contact",
        "del_follow_user",
        "transfer_fail",
    ] {
        let extras = ExternalContactExtras {
            fail_reason: (change == "transfer_fail").then_some("customer_refused"),
            ..Default::default()
        };
        let inner = compose::external_contact_event(CORP_ID, change, "lisi", "wmX", &extras, at);
        inputs.push((
            inner,
            Box::leak(format!("change_external_contact:{change}").into_boxed_str()),
        ));
    }
    // Plain-text (no CDATA) XML, as in the 2016 official sample, and two kinds we do not handle.
    inputs.push((
        format!("<xml><ToUserName>{CORP_ID}</ToUserName><FromUserName>ChenJiaShun</FromUserName><CreateTime>{at}</CreateTime><MsgType>text</MsgType><Content>你好</Content><MsgId>{}</MsgId><AgentID>1000002</AgentID></xml>", next_msg_id()),
        "text",
    ));
    inputs.push((
        format!("<xml><ToUserName>{CORP_ID}</ToUserName><FromUserName>zhangsan</FromUserName><CreateTime>{at}</CreateTime><MsgType>image</MsgType><PicUrl>http://x</PicUrl><MsgId>{}</MsgId></xml>", next_msg_id()),
        "image",
    ));
    inputs.push((
        format!("<xml><ToUserName>{CORP_ID}</ToUserName><FromUserName>sys</FromUserName><CreateTime>{at}</CreateTime><MsgType>event</MsgType><Event>change_external_chat</Event><ChatId>wr1</ChatId><ChangeType>dismiss</ChangeType></xml>"),
        "event:change_external_chat:dismiss",
    ));
    for (inner, _) in &inputs {
        assert_eq!(app.post_callback(inner).await.status(), StatusCode::OK, "{inner}");
    }
    let rows = app.wait_until_settled(Duration::from_secs(5)).await;
    let kinds: Vec<&str> = rows.iter().map(|r| r.kind.as_str()).collect();
    let expected: Vec<&str> = inputs.iter().map(|(_, k)| *k).collect();
    assert_eq!(kinds, expected);
    assert!(rows.iter().all(|r| r.status == InboxStatus::Ignored), "{rows:#?}");
}

#[tokio::test]
async fn bad_or_missing_signature_is_401_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let sealed = app.seal(&compose::text_message(
        CORP_ID,
        "a",
        "x",
        next_msg_id(),
        AGENT_ID,
        now_secs(),
    ));

    let mut forged = sealed.clone();
    forged.msg_signature = "0".repeat(40);
    assert_eq!(app.post_sealed(&forged).await.status(), StatusCode::UNAUTHORIZED);

    let mut short = sealed.clone();
    short.msg_signature = "abc".into();
    assert_eq!(app.post_sealed(&short).await.status(), StatusCode::UNAUTHORIZED);

    let missing = app
        .client
        .post(app.url("/wecom/callback"))
        .body(sealed.body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);

    assert!(app.inbox_rows().await.is_empty());
}

#[tokio::test]
async fn stale_or_future_timestamps_are_401() {
    let app = TestApp::spawn().await;
    let inner = compose::text_message(CORP_ID, "a", "x", next_msg_id(), AGENT_ID, now_secs());
    for ts in [now_secs() - 1900, now_secs() + 1900] {
        let sealed = app.crypto.seal_callback(&inner, "1000002", &ts.to_string(), "123");
        assert_eq!(app.post_sealed(&sealed).await.status(), StatusCode::UNAUTHORIZED);
    }
    let sealed = app.crypto.seal_callback(&inner, "1000002", "not-a-number", "123");
    assert_eq!(app.post_sealed(&sealed).await.status(), StatusCode::UNAUTHORIZED);
    assert!(app.inbox_rows().await.is_empty());
}

#[tokio::test]
async fn malformed_input_is_400() {
    let app = TestApp::spawn().await;
    let (ts, nonce) = (now_secs().to_string(), "5".to_string());
    let post = |body: String, encrypt_for_signature: String| {
        let signature = String::from_utf8(app.crypto.signature(&ts, &nonce, &encrypt_for_signature).to_vec()).unwrap();
        app.client
            .post(app.url("/wecom/callback"))
            .query(&[("msg_signature", &signature), ("timestamp", &ts), ("nonce", &nonce)])
            .body(body)
            .send()
    };
    let envelope = |encrypt: &str| {
        format!("<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>")
    };

    // Broken envelope XML, an envelope without Encrypt, a DOCTYPE.
    assert_eq!(
        post("<xml><Encrypt>".into(), String::new()).await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post("<xml><A>1</A></xml>".into(), String::new())
            .await
            .unwrap()
            .status(),
        StatusCode::BAD_REQUEST
    );
    let doctype = format!("<!DOCTYPE x [<!ENTITY a \"b\">]>{}", envelope("abc"));
    assert_eq!(
        post(doctype, "abc".into()).await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    // Correctly signed, but not base64 / not a block multiple / bad padding.
    assert_eq!(
        post(envelope("!!notbase64!!"), "!!notbase64!!".into())
            .await
            .unwrap()
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post(envelope("AAAA"), "AAAA".into()).await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    let zeros = base64_standard(&[0u8; 32]);
    assert_eq!(
        post(envelope(&zeros), zeros.clone()).await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    // Encrypted for another corp (wrong receive id).
    let other =
        wecom_scrm::wecom::crypto::WecomCrypto::new(secrecy::SecretString::from(TOKEN), AES_KEY, "wwSomeoneElse")
            .unwrap();
    let foreign = other.encrypt(&compose::text_message(
        "wwSomeoneElse",
        "a",
        "x",
        1,
        AGENT_ID,
        now_secs(),
    ));
    assert_eq!(
        post(envelope(&foreign), foreign.clone()).await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    // Authentic envelope whose inner XML is broken or declares a DOCTYPE.
    for inner in [
        "<xml><MsgType>text",
        "<!DOCTYPE xml [<!ENTITY x \"y\">]><xml><MsgType>text</MsgType></xml>",
    ] {
        let encrypted = app.crypto.encrypt(inner);
        assert_eq!(
            post(envelope(&encrypted), encrypted.clone()).await.unwrap().status(),
            StatusCode::BAD_REQUEST
        );
    }
    // Not UTF-8.
    let response = app
        .client
        .post(app.url("/wecom/callback"))
        .query(&[
            ("msg_signature", "x".repeat(40)),
            ("timestamp", ts.clone()),
            ("nonce", nonce.clone()),
        ])
        .body(vec![0xff, 0xfe, 0x3c])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    assert!(app.inbox_rows().await.is_empty());
}

fn base64_standard(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn bodies_over_64_kib_are_413() {
    let app = TestApp::spawn().await;
    let huge = format!("<xml><Encrypt>{}</Encrypt></xml>", "A".repeat(70 * 1024));
    let response = app
        .client
        .post(app.url("/wecom/callback"))
        .query(&[
            ("msg_signature", "x".repeat(40)),
            ("timestamp", now_secs().to_string()),
            ("nonce", "1".into()),
        ])
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // A legitimate callback still works afterwards.
    let inner = compose::text_message(CORP_ID, "a", "x", next_msg_id(), AGENT_ID, now_secs());
    assert_eq!(app.post_callback(&inner).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn database_unavailable_is_503_and_recovers_without_losing_the_retry() {
    let app = TestApp::spawn().await;
    let inner = compose::text_message(CORP_ID, "zhangsan", "note 1", next_msg_id(), AGENT_ID, now_secs());
    // Make the inbox unwritable by moving its table away.
    app.db
        .execute_raw(Statement::from_string(
            app.db.get_database_backend(),
            "ALTER TABLE inbox RENAME TO inbox_away",
        ))
        .await
        .unwrap();
    let response = app.post_callback(&inner).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let ready = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK, "the process itself stays alive");

    app.db
        .execute_raw(Statement::from_string(
            app.db.get_database_backend(),
            "ALTER TABLE inbox_away RENAME TO inbox",
        ))
        .await
        .unwrap();
    // WeCom retries; now it is stored, once.
    assert_eq!(app.post_callback(&inner).await.status(), StatusCode::OK);
    assert_eq!(app.inbox_rows().await.len(), 1);
}

#[tokio::test]
async fn concurrent_callbacks_are_group_committed_and_all_stored() {
    let app = TestApp::spawn().await;
    let inners: Vec<String> = (0..200)
        .map(|i| {
            compose::text_message(
                CORP_ID,
                &format!("rep{}", i % 7),
                &format!("note {i}"),
                next_msg_id(),
                AGENT_ID,
                now_secs(),
            )
        })
        .collect();
    let sends = inners.iter().map(|inner| app.post_callback(inner));
    let statuses: Vec<StatusCode> = join_all(sends).await.iter().map(|r| r.status()).collect();
    assert!(statuses.iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
    let rows = app.inbox_rows().await;
    assert_eq!(rows.len(), 200);
    let mut payloads: Vec<&str> = rows.iter().map(|r| r.payload.as_str()).collect();
    let mut expected: Vec<&str> = inners.iter().map(String::as_str).collect();
    payloads.sort_unstable();
    expected.sort_unstable();
    assert_eq!(payloads, expected);
}

#[tokio::test]
async fn bad_padding_and_forged_lengths_are_400() {
    let app = TestApp::spawn().await;
    let msg = compose::text_message(CORP_ID, "a", "x", next_msg_id(), AGENT_ID, now_secs());
    let unpadded = 16 + 4 + msg.len() + CORP_ID.len();
    let pad = 32 - unpadded % 32;
    let cases = [
        ("pad byte 0", frame(msg.as_bytes(), msg.len() as u32, pad, 0)),
        ("pad bytes disagree", {
            let mut f = frame(msg.as_bytes(), msg.len() as u32, pad, pad as u8);
            let n = f.len();
            f[n - pad] ^= 1;
            f
        }),
        (
            "declared length beyond the frame",
            frame(msg.as_bytes(), 100_000, pad, pad as u8),
        ),
    ];
    // A valid frame first, so the helper itself is known to be right.
    let good = encrypt_frame(&frame(msg.as_bytes(), msg.len() as u32, pad, pad as u8));
    let (ts, nonce) = (now_secs().to_string(), "7".to_string());
    let post = |encrypt: String| {
        let signature = String::from_utf8(app.crypto.signature(&ts, &nonce, &encrypt).to_vec()).unwrap();
        let body = format!("<xml><ToUserName>{CORP_ID}</ToUserName><Encrypt>{encrypt}</Encrypt></xml>");
        app.client
            .post(app.url("/wecom/callback"))
            .query(&[("msg_signature", &signature), ("timestamp", &ts), ("nonce", &nonce)])
            .body(body)
            .send()
    };
    assert_eq!(post(good).await.unwrap().status(), StatusCode::OK);
    for (what, bad) in cases {
        let response = post(encrypt_frame(&bad)).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{what}");
    }
    assert_eq!(app.inbox_rows().await.len(), 1);
}
