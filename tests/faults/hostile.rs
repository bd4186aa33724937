//! Hostile input while real traffic flows: 100,000 distinct bogus signatures, oversize bodies, XML
//! bombs, invalid UTF-8 and replays outside the time window each get their clear 4xx, and valid
//! callbacks keep being acknowledged and stored throughout.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::StatusCode;
use wecom_scrm::inbox::UnhandledKinds;
use wecom_scrm::wecom::compose;

use crate::helpers::*;

const BOGUS_SIGNATURES: usize = 100_000;

/// One hostile request: its query, its body, and the answer it must get.
struct Attack {
    what: &'static str,
    query: Vec<(&'static str, String)>,
    body: Vec<u8>,
    expect: StatusCode,
}

fn envelope(encrypt: &str) -> String {
    format!("<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>")
}

fn signed(
    what: &'static str,
    app: &TestApp,
    timestamp: i64,
    body: Vec<u8>,
    encrypt: &str,
    expect: StatusCode,
) -> Attack {
    let ts = timestamp.to_string();
    let signature = String::from_utf8(app.crypto.signature(&ts, "9", encrypt).to_vec()).unwrap();
    Attack {
        what,
        query: vec![("msg_signature", signature), ("timestamp", ts), ("nonce", "9".into())],
        body,
        expect,
    }
}

/// The attacks other than the bogus signatures, each a few times over.
fn assorted(app: &TestApp) -> Vec<Attack> {
    let now = now_secs();
    let mut attacks = Vec::new();
    let text = |i: u64| compose::text_message(CORP_ID, "rep1", "记 @张伟 x", 9_000_000 + i, AGENT_ID, now);
    for i in 0..50u64 {
        // A body far over the 64 KiB limit.
        attacks.push(signed(
            "1 MiB body",
            app,
            now,
            vec![b'<'; 1 << 20],
            "",
            StatusCode::PAYLOAD_TOO_LARGE,
        ));
        // Billion laughs in the envelope.
        let mut bomb = String::from("<!DOCTYPE xml [<!ENTITY l0 \"lol\">");
        for level in 1..10 {
            let prev = format!("&l{};", level - 1).repeat(10);
            bomb.push_str(&format!("<!ENTITY l{level} \"{prev}\">"));
        }
        bomb.push_str("]>");
        bomb.push_str(&envelope("&l9;"));
        attacks.push(signed(
            "billion laughs",
            app,
            now,
            bomb.into_bytes(),
            "&l9;",
            StatusCode::BAD_REQUEST,
        ));
        // Elements nested 9,000 deep (as deep as fits under the body limit).
        let deep = format!("{}{}", "<a>".repeat(9_000), "</a>".repeat(9_000));
        attacks.push(signed(
            "deep nesting",
            app,
            now,
            deep.into_bytes(),
            "",
            StatusCode::BAD_REQUEST,
        ));
        // Not UTF-8: the body itself, and an authentic message whose content is not.
        attacks.push(signed(
            "non-UTF-8 body",
            app,
            now,
            vec![0xff, 0xfe, b'<', 0xc3],
            "",
            StatusCode::BAD_REQUEST,
        ));
        let mut inner = text(i).into_bytes();
        inner.splice(20..20, [0xed, 0xa0, 0x80]);
        let padded = inner.len() + 20 + CORP_ID.len();
        let pad = 32 - padded % 32;
        let encrypted = encrypt_frame(&frame(&inner, inner.len() as u32, pad, pad as u8));
        attacks.push(signed(
            "invalid UTF-8 inside",
            app,
            now,
            envelope(&encrypted).into_bytes(),
            &encrypted,
            StatusCode::BAD_REQUEST,
        ));
        // A genuine callback replayed an hour later, with its original signature.
        let old = now - 3600;
        let sealed = app
            .crypto
            .seal_callback(&text(100 + i), &AGENT_ID.to_string(), &old.to_string(), "9");
        attacks.push(Attack {
            what: "replay an hour late",
            query: vec![
                ("msg_signature", sealed.msg_signature),
                ("timestamp", sealed.timestamp),
                ("nonce", sealed.nonce),
            ],
            body: sealed.body.into_bytes(),
            expect: StatusCode::UNAUTHORIZED,
        });
    }
    attacks
}

/// A well-formed body signed with a signature nobody computed (a different one each time).
fn bogus(i: usize, body: &[u8]) -> Attack {
    Attack {
        what: "bogus signature",
        query: vec![
            ("msg_signature", format!("{:040x}", i as u128 * 0x9e37_79b9_7f4a_7c15)),
            ("timestamp", now_secs().to_string()),
            ("nonce", i.to_string()),
        ],
        body: body.to_vec(),
        expect: StatusCode::UNAUTHORIZED,
    }
}

/// Valid callbacks, one every 50 ms until `stop`: the messages sent and the slowest answer.
async fn valid_traffic(app: &TestApp, stop: &AtomicBool) -> (Vec<String>, Duration) {
    let (mut sent, mut slowest) = (Vec::new(), Duration::ZERO);
    while !stop.load(Ordering::Relaxed) {
        let inner = compose::text_message(CORP_ID, "rep2", "记 @刘洋 正常", next_msg_id(), AGENT_ID, now_secs());
        let started = Instant::now();
        let status = app.post_callback(&inner).await.status();
        slowest = slowest.max(started.elapsed());
        assert_eq!(status, StatusCode::OK, "valid traffic is served during the attack");
        sent.push(inner);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (sent, slowest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_stays_responsive_under_hostile_input() {
    let app = TestApp::spawn_with(|_| {}, Arc::new(UnhandledKinds)).await;
    let genuine = app.seal(&compose::text_message(CORP_ID, "x", "y", 1, AGENT_ID, now_secs()));
    let mut attacks = assorted(&app);
    attacks.extend((0..BOGUS_SIGNATURES).map(|i| bogus(i, genuine.body.as_bytes())));
    let total = attacks.len();

    let stop = AtomicBool::new(false);
    let flood = async {
        let url = app.url("/wecom/callback");
        // Oversize bodies on connections of their own: the server answers before reading such a
        // body and then closes the connection, which a pooled connection would trip over later.
        let unpooled = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
        let wrong: Vec<String> = futures::stream::iter(attacks)
            .map(|attack| {
                let client = if attack.expect == StatusCode::PAYLOAD_TOO_LARGE {
                    &unpooled
                } else {
                    &app.client
                };
                let request = client.post(&url).query(&attack.query).body(attack.body);
                async move {
                    let status = request.send().await.map(|r| r.status());
                    match status {
                        Ok(status) if status == attack.expect => None,
                        other => Some(format!("{}: expected {}, got {other:?}", attack.what, attack.expect)),
                    }
                }
            })
            .buffer_unordered(32)
            .filter_map(|wrong| async move { wrong })
            .take(5)
            .collect()
            .await;
        stop.store(true, Ordering::Relaxed);
        wrong
    };
    let started = Instant::now();
    let (wrong, (sent, slowest)) = tokio::join!(flood, valid_traffic(&app, &stop));
    assert!(wrong.is_empty(), "every hostile request gets its 4xx: {wrong:?}");
    eprintln!(
        "{total} hostile requests in {:?}; {} valid callbacks alongside, slowest answer {slowest:?}",
        started.elapsed(),
        sent.len()
    );
    assert!(
        slowest < Duration::from_secs(2),
        "valid callbacks answered promptly during the attack: {slowest:?}"
    );
    // Only the valid callbacks were stored, each once.
    let rows = app.inbox_rows().await;
    let mut stored: Vec<&str> = rows.iter().map(|r| r.payload.as_str()).collect();
    let mut expected: Vec<&str> = sent.iter().map(String::as_str).collect();
    stored.sort_unstable();
    expected.sort_unstable();
    assert_eq!(stored, expected);
}
