//! A chat burst through the real binary: `BENCH_REPS` reps (50) each send `BENCH_NOTES` notes (20)
//! at once — every message its own request, all in flight together, as WeCom delivers them — to
//! `wecom-scrm serve` on a random port, with a fake WeCom for the message API. Reports how many
//! answers came in the callback's own response (passive replies), how many through the message API
//! (merged per rep: one message may carry several numbered answers), and when the last answer
//! arrived, counted from the first request. Every note must be answered exactly once.
//!
//! cargo bench --bench chat_burst
//! Environment: SCRM_BENCH_DATABASE_URL / SCRM_BENCH_REDIS_URL (default SQLite + in-process cache),
//! BENCH_REPS, BENCH_NOTES, BENCH_RATE (notes a second, reps taking turns; 0 = all at once),
//! BENCH_SERVICE__<KEY> (passed to the service as SCRM_<KEY>). The answers given in the response
//! are timed from each request's own send: at a steady rate that is the callback → answer latency.

mod common;

use std::time::{Duration, Instant};

use common::{AGENT_ID, BenchDb, CORP_ID, free_port, service_env, wait_ready};
use wecom_scrm::wecom::api::types::{ExternalContact, ExternalContactDetail, FollowUser};
use wecom_scrm::wecom::compose::text_message;

fn main() {
    common::run_bench(run());
}

async fn run() {
    let reps_wanted = common::env_number("BENCH_REPS", 50);
    let notes = common::env_number("BENCH_NOTES", 20);
    let rate = common::env_number("BENCH_RATE", 0);
    let departments = reps_wanted.div_ceil(10);
    let reps: Vec<String> = common::reps(departments, 10)
        .into_iter()
        .take(reps_wanted as usize)
        .collect();
    let bench_db = BenchDb::from_env();
    let mut org = common::org(departments, 10);
    for (r, rep) in reps.iter().enumerate() {
        org.external_contacts.push(ExternalContactDetail {
            external_contact: ExternalContact {
                external_userid: format!("wmburst{r}"),
                name: format!("客户{r}"),
                contact_type: 1,
                ..Default::default()
            },
            follow_user: vec![FollowUser {
                userid: rep.clone(),
                createtime: 1_700_000_000,
                add_way: 1,
                ..Default::default()
            }],
        });
    }
    let (fake, prefix) = common::start_fixture(org).await;
    let crypto = fake.crypto().clone();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let env = service_env(&bench_db, &fake.url(), &prefix, port);
    println!(
        "chat burst on {}: {} reps × {notes} notes at once",
        common::stack(&bench_db),
        reps.len()
    );
    let mut service = common::synced_service(&env);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(2048)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client");
    wait_ready(&client, &base, &mut service.0).await;

    let now = chrono::Utc::now().timestamp();
    let mut msg_id = 7_900_000_000_000_000_000u64;
    let mut requests = Vec::new();
    for i in 0..notes {
        for (r, rep) in reps.iter().enumerate() {
            msg_id += 1;
            let inner = text_message(
                CORP_ID,
                rep,
                &format!("记 @客户{r} 第{i}次沟通，客户关心交付周期"),
                msg_id,
                AGENT_ID,
                now,
            );
            let sealed = crypto.seal_callback(&inner, &AGENT_ID.to_string(), &now.to_string(), &msg_id.to_string());
            requests.push((
                format!(
                    "{base}/wecom/callback?msg_signature={}&timestamp={}&nonce={}",
                    sealed.msg_signature, sealed.timestamp, sealed.nonce
                ),
                sealed.body,
            ));
        }
    }
    let total = requests.len();
    let started = Instant::now();
    let start_ms = wecom_scrm::db::now_ms();
    // At once, or (BENCH_RATE) one request every 1/rate s, reps taking turns: an open loop, as
    // WeCom sends whatever the answers.
    let spacing = (rate > 0).then(|| Duration::from_secs_f64(1.0 / rate as f64));
    let sent: Vec<_> = requests
        .into_iter()
        .enumerate()
        .map(|(i, (url, body))| {
            let client = client.clone();
            let due = started + spacing.map_or(Duration::ZERO, |gap| gap * i as u32);
            tokio::spawn(async move {
                tokio::time::sleep_until(due.into()).await;
                let sent_at = Instant::now();
                let response = client
                    .post(url)
                    .header("content-type", "application/xml")
                    .body(body)
                    .send()
                    .await
                    .expect("the callback is answered");
                assert!(response.status().is_success(), "{}", response.status());
                let passive = !response.text().await.expect("a body").is_empty();
                (passive, started.elapsed(), sent_at.elapsed())
            })
        })
        .collect();
    let mut passive = 0usize;
    let mut last_passive = Duration::ZERO;
    let mut passive_latencies = Vec::new();
    for task in sent {
        let (answered, at, took) = task.await.expect("a request task");
        if answered {
            passive += 1;
            last_passive = last_passive.max(at);
            passive_latencies.push(took);
        }
    }
    // The rest comes through the message API: wait until every note has its answer.
    let answers_sent = || {
        let messages: Vec<_> = reps.iter().flat_map(|rep| fake.messages_to(rep)).collect();
        let count: usize = messages.iter().map(|m| answers_in(&m.body.display_text())).sum();
        let last = messages.iter().map(|m| m.at).max();
        (count, last)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let (by_message, last_message_ms) = loop {
        let (count, last) = answers_sent();
        if passive + count >= total || Instant::now() > deadline {
            break (count, last);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let messages_sent: usize = reps.iter().map(|rep| fake.messages_to(rep).len()).sum();
    let last_message = last_message_ms.map_or(Duration::ZERO, |at| {
        Duration::from_millis(u64::try_from(at - start_ms).unwrap_or(0))
    });
    let last = last_passive.max(last_message);
    passive_latencies.sort();
    let percentile = |p: f64| {
        let at = ((passive_latencies.len() as f64 * p).ceil() as usize).saturating_sub(1);
        passive_latencies.get(at).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let pace = if rate > 0 {
        format!("{rate} notes/s")
    } else {
        "at once".to_owned()
    };
    println!();
    println!(
        "| backend | reps × notes | sent | in the response | answer in the response p50 / p99 | through the message API (messages) | last answer |"
    );
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {} | {} × {notes} | {pace} | {passive} ({:.0} %) | {:.0} / {:.0} ms | {by_message} ({messages_sent}) | {:.2} s |",
        common::stack(&bench_db),
        reps.len(),
        passive as f64 * 100.0 / total as f64,
        percentile(0.5),
        percentile(0.99),
        last.as_secs_f64()
    );
    let answered = passive + by_message;
    service.0.kill().ok();
    assert_eq!(answered, total, "every note answered exactly once");
}

/// How many answers a message carries: merged answers are numbered `1. …`, `2. …` at the start of
/// a paragraph.
fn answers_in(text: &str) -> usize {
    // An answer may hold paragraphs of its own: count the numbers as they follow each other.
    let mut next = 1;
    for part in text.split("\n\n") {
        if part.starts_with(&format!("{next}. ")) {
            next += 1;
        }
    }
    Ord::max(next - 1, 1)
}
