//! The whole service under callback load: the release binary (`wecom-scrm serve`) on a random
//! port, `wrk` posting pre-generated, individually encrypted and signed callbacks over loopback.
//!
//! Scenarios (`BENCH_SCENARIOS`, default all):
//! - `text`: chat commands (`记 @客户 …`, a follow-up note) from 100 reps, every request a new message;
//! - `add`: `add_external_contact` events, every request a new customer;
//! - `retries`: text commands, each delivered three times (blocks of 2,000 messages sent, then
//!   sent again twice), as WeCom retries.
//!
//! After each run every request `wrk` issued is sent once more: each must be answered 200, the
//! service must report it as already stored unless it was still in flight when `wrk` stopped, and
//! the inbox must hold exactly one row per distinct message. The process exits non-zero otherwise.
//! The service's resident set is read from `/proc` idle and every 100 ms under load.
//!
//! Needs `wrk` on the PATH (Debian: `apt-get install wrk`). Knobs: `BENCH_SECONDS` (10),
//! `BENCH_CONNECTIONS` (64), `BENCH_MESSAGES` (distinct messages generated per scenario, 250,000),
//! `BENCH_SERVICE__<KEY>` (passed to the service as `SCRM_<KEY>`).
//! `cargo bench --bench callback_load`; results in docs/performance.md.

mod common;

use std::collections::HashSet;
use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{AGENT_ID, BenchDb, CORP_ID, free_port, service_env, wait_ready};
use futures::StreamExt as _;
use sea_orm::{ConnectionTrait, Statement};
use wecom_scrm::wecom::api::types::{ExternalContact, ExternalContactDetail, FollowUser};
use wecom_scrm::wecom::compose::{ExternalContactExtras, external_contact_event, text_message};
use wecom_scrm::wecom::crypto::WecomCrypto;

const DEPARTMENTS: u64 = 10;
const REPS_PER_DEPARTMENT: u64 = 10;
/// Customers each rep follows (imported by `sync` before the load), the targets of the notes.
const CUSTOMERS_PER_REP: u64 = 10;
const RETRY_BLOCK: usize = 2_000;
const WRK_THREADS: usize = 2;
/// How long the worker is watched working off the backlog after a run.
const DRAIN_SECONDS: u64 = 5;

fn main() {
    if Command::new("wrk").arg("-v").output().is_err() {
        eprintln!("callback_load needs wrk on the PATH (Debian: apt-get install wrk)");
        std::process::exit(2);
    }
    common::run_bench(run());
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Text,
    Add,
    Retries,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Text => "text",
            Scenario::Add => "add",
            Scenario::Retries => "retries",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Scenario::Text => "text commands (note), each a new message",
            Scenario::Add => "add_external_contact events, each a new customer",
            Scenario::Retries => "text commands, each delivered 3 times",
        }
    }
}

async fn run() {
    let seconds = common::env_number("BENCH_SECONDS", 10);
    let connections = common::env_number("BENCH_CONNECTIONS", 64);
    let messages = common::env_number("BENCH_MESSAGES", 250_000) as usize;
    let wanted = std::env::var("BENCH_SCENARIOS").unwrap_or_else(|_| "text,add,retries".into());
    let scenarios: Vec<Scenario> = [Scenario::Text, Scenario::Add, Scenario::Retries]
        .into_iter()
        .filter(|s| wanted.split(',').any(|w| w.trim() == s.name()))
        .collect();

    let bench_db = BenchDb::from_env();
    let reps = common::reps(DEPARTMENTS, REPS_PER_DEPARTMENT);
    let mut org = common::org(DEPARTMENTS, REPS_PER_DEPARTMENT);
    for (r, rep) in reps.iter().enumerate() {
        for c in 0..CUSTOMERS_PER_REP {
            org.external_contacts.push(contact(
                &format!("wmfollowed{r}x{c}"),
                &format!("客户{r}x{c}"),
                Some(rep),
            ));
        }
    }
    // The customers the add events are about: known to WeCom, followed by nobody yet.
    if scenarios.contains(&Scenario::Add) {
        for i in 0..messages {
            org.external_contacts
                .push(contact(&format!("wmnew{i}"), &format!("新客户{i}"), None));
        }
    }
    let (fake, prefix) = common::start_fixture(org).await;
    let crypto = fake.crypto().clone();

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let env = service_env(&bench_db, &fake.url(), &prefix, port);
    println!(
        "callback load on {}: {seconds} s per scenario, {connections} connections, {WRK_THREADS} wrk threads",
        common::stack(&bench_db)
    );
    let mut service = common::synced_service(&env);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .expect("a client");
    wait_ready(&client, &base, &mut service.0).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss = rss_kib(service.0.id());
    println!("  resident set, idle: {:.1} MiB", idle_rss as f64 / 1024.0);

    let dir = tempfile::tempdir().expect("a temporary directory");
    let script = dir.path().join("load.lua");
    std::fs::write(&script, WRK_SCRIPT).expect("the wrk script is written");
    let db = wecom_scrm::db::connect(&common::config(&bench_db, &fake.url(), &prefix).database)
        .await
        .expect("the benchmark connects to the database");

    let mut failed = false;
    let mut next_msg_id = 7_400_000_000_000_000_000u64;
    for scenario in scenarios {
        let started = Instant::now();
        let lines = generate(scenario, messages, &mut next_msg_id, &crypto, &reps);
        let requests = dir.path().join(format!("{}.txt", scenario.name()));
        write_requests(&requests, &lines);
        println!(
            "\n{}: {} requests ({} distinct messages) generated in {:.1}s",
            scenario.describe(),
            lines.len(),
            lines.iter().map(|l| l.message).collect::<HashSet<_>>().len(),
            started.elapsed().as_secs_f64()
        );
        let rows_before = inbox_rows(&db).await;
        let handled_before = handled_rows(&db).await;
        let stored_before = metric(&client, &base, "scrm_callbacks_stored_total").await;

        let peak = Arc::new(AtomicU64::new(0));
        let sampling = Arc::new(AtomicBool::new(true));
        let sampler = tokio::spawn(sample_rss(service.0.id(), peak.clone(), sampling.clone()));
        let wrk = run_wrk(&script, &requests, &base, seconds, connections).await;
        sampling.store(false, Ordering::Relaxed);
        let _ = sampler.await;
        let stored_by_wrk = metric(&client, &base, "scrm_callbacks_stored_total").await - stored_before;
        let handled = handled_rows(&db).await - handled_before;

        // Every issued request once more: each must be answered, and (unless it was cut off in
        // flight when wrk stopped) already be stored.
        let issued: Vec<&Line> = issued_lines(&lines, &wrk.issued_per_thread);
        let replay_failures = replay(&client, &base, &issued).await;
        let stored_by_replay =
            metric(&client, &base, "scrm_callbacks_stored_total").await - stored_before - stored_by_wrk;
        let distinct: HashSet<u64> = issued.iter().map(|l| l.message).collect();
        let rows = inbox_rows(&db).await - rows_before;
        // The backlog the burst left, worked off with no load besides.
        let backlog_before = handled_rows(&db).await;
        tokio::time::sleep(Duration::from_secs(DRAIN_SECONDS)).await;
        let drained = handled_rows(&db).await - backlog_before;
        let in_flight = wrk.issued().saturating_sub(wrk.completed);

        println!(
            "  {:.0} requests/s ({} in {:.1}s), latency p50 {} p99 {}; non-2xx {}, socket errors {}",
            wrk.requests_per_sec, wrk.completed, wrk.seconds, wrk.p50, wrk.p99, wrk.non_2xx, wrk.socket_errors
        );
        println!(
            "  stored {stored_by_wrk} new callbacks ({:.0}/s); inbox rows {rows} for {} distinct messages issued; \
             stored only by the replay {stored_by_replay} (in flight at the stop: {in_flight}); replay failures {replay_failures}",
            stored_by_wrk as f64 / wrk.seconds,
            distinct.len(),
        );
        println!(
            "  handled by the worker meanwhile: {handled} ({:.0}/s); afterwards, without load: {:.0}/s",
            handled as f64 / wrk.seconds,
            drained as f64 / DRAIN_SECONDS as f64
        );
        println!(
            "  resident set under load: peak {:.1} MiB",
            peak.load(Ordering::Relaxed) as f64 / 1024.0
        );
        if wrk
            .issued_per_thread
            .iter()
            .zip(lines_per_thread(lines.len()))
            .any(|(i, n)| *i > n)
        {
            println!("  note: wrk ran out of generated requests and sent some again; raise BENCH_MESSAGES");
        }
        let lost = rows as usize != distinct.len() || stored_by_replay > in_flight as u64;
        if lost || replay_failures > 0 || wrk.non_2xx > 0 {
            println!("  FAILED: every issued message must be stored exactly once");
            failed = true;
        }
    }

    let _ = Command::new("kill").arg(service.0.id().to_string()).status();
    let _ = service.0.wait();
    bench_db.cleanup(&db).await;
    fake.stop().await;
    if failed {
        std::process::exit(1);
    }
}

fn contact(external_userid: &str, name: &str, follower: Option<&str>) -> ExternalContactDetail {
    ExternalContactDetail {
        external_contact: ExternalContact {
            external_userid: external_userid.into(),
            name: name.into(),
            contact_type: 1,
            ..Default::default()
        },
        follow_user: follower
            .map(|userid| FollowUser {
                userid: userid.into(),
                createtime: 1_700_000_000,
                add_way: 1,
                ..Default::default()
            })
            .into_iter()
            .collect(),
    }
}

/// One request: which message it carries, its path with the signature, and its body.
struct Line {
    message: u64,
    path: String,
    body: String,
}

fn generate(
    scenario: Scenario,
    messages: usize,
    next_msg_id: &mut u64,
    crypto: &WecomCrypto,
    reps: &[String],
) -> Vec<Line> {
    let now = chrono::Utc::now().timestamp();
    let seal = |message: u64, inner: String| {
        let timestamp = now.to_string();
        let nonce = format!("{}", message % 1_000_000_007);
        let sealed = crypto.seal_callback(&inner, &AGENT_ID.to_string(), &timestamp, &nonce);
        Line {
            message,
            path: format!(
                "/wecom/callback?msg_signature={}&timestamp={}&nonce={}",
                sealed.msg_signature, sealed.timestamp, sealed.nonce
            ),
            body: sealed.body,
        }
    };
    let text = |i: usize, msg_id: u64| {
        let r = i % reps.len();
        let c = (i / reps.len()) as u64 % CUSTOMERS_PER_REP;
        let content = format!("记 @客户{r}x{c} 电话沟通，已发报价 #{i}");
        seal(msg_id, text_message(CORP_ID, &reps[r], &content, msg_id, AGENT_ID, now))
    };
    match scenario {
        Scenario::Text => (0..messages)
            .map(|i| {
                *next_msg_id += 1;
                text(i, *next_msg_id)
            })
            .collect(),
        Scenario::Add => (0..messages)
            .map(|i| {
                let extras = ExternalContactExtras {
                    state: Some("expo2026_booth3"),
                    ..Default::default()
                };
                let rep = &reps[i % reps.len()];
                let inner =
                    external_contact_event(CORP_ID, "add_external_contact", rep, &format!("wmnew{i}"), &extras, now);
                seal(i as u64, inner)
            })
            .collect(),
        Scenario::Retries => {
            let mut lines = Vec::with_capacity(messages);
            let distinct = messages / 3;
            for block in (0..distinct).collect::<Vec<_>>().chunks(RETRY_BLOCK) {
                let first = *next_msg_id;
                *next_msg_id += block.len() as u64;
                for _ in 0..3 {
                    for (k, i) in block.iter().enumerate() {
                        lines.push(text(*i, first + 1 + k as u64));
                    }
                }
            }
            lines
        }
    }
}

fn write_requests(path: &Path, lines: &[Line]) {
    let file = std::fs::File::create(path).expect("the requests file is created");
    let mut out = std::io::BufWriter::new(file);
    for line in lines {
        writeln!(out, "{}\t{}", line.path, line.body).expect("the requests file is written");
    }
    out.flush().expect("the requests file is written");
}

/// How many lines each wrk thread takes (thread t takes lines t, t + threads, …).
fn lines_per_thread(total: usize) -> Vec<usize> {
    (0..WRK_THREADS)
        .map(|t| total / WRK_THREADS + usize::from(t < total % WRK_THREADS))
        .collect()
}

/// The lines each thread sent, in the order it sent them (wrapping around if it ran out).
fn issued_lines<'a>(lines: &'a [Line], issued_per_thread: &[usize]) -> Vec<&'a Line> {
    let per_thread = lines_per_thread(lines.len());
    let mut out = Vec::new();
    for (t, &issued) in issued_per_thread.iter().enumerate() {
        let count = per_thread[t];
        if count == 0 {
            continue;
        }
        for k in 0..issued.min(count) {
            out.push(&lines[t + k * WRK_THREADS]);
        }
    }
    out
}

async fn replay(client: &reqwest::Client, base: &str, lines: &[&Line]) -> usize {
    futures::stream::iter(lines.iter())
        .map(|line| async move {
            let response = client
                .post(format!("{base}{}", line.path))
                .header("content-type", "application/xml")
                .body(line.body.clone())
                .send()
                .await;
            match response {
                Ok(r) if r.status().is_success() => 0,
                Ok(r) => {
                    eprintln!("  replay answered {}", r.status());
                    1
                }
                Err(e) => {
                    eprintln!("  replay failed: {e}");
                    1
                }
            }
        })
        .buffer_unordered(32)
        .fold(0, |sum, n| async move { sum + n })
        .await
}

struct WrkResult {
    completed: usize,
    seconds: f64,
    requests_per_sec: f64,
    p50: String,
    p99: String,
    non_2xx: usize,
    socket_errors: usize,
    issued_per_thread: Vec<usize>,
}

impl WrkResult {
    fn issued(&self) -> usize {
        self.issued_per_thread.iter().sum()
    }
}

async fn run_wrk(script: &Path, requests: &Path, base: &str, seconds: u64, connections: u64) -> WrkResult {
    let mut wrk = Command::new("wrk");
    wrk.args([
        &format!("-t{WRK_THREADS}"),
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--timeout",
        "10s",
        "--latency",
        "-s",
    ])
    .arg(script)
    .arg(base)
    .arg("--")
    .arg(requests)
    .arg(WRK_THREADS.to_string());
    let output = tokio::task::spawn_blocking(move || wrk.output())
        .await
        .expect("wrk's task")
        .expect("wrk runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        panic!("wrk failed: {text}\n{}", String::from_utf8_lossy(&output.stderr));
    }
    parse_wrk(&text)
}

fn parse_wrk(text: &str) -> WrkResult {
    let after = |prefix: &str| -> Option<&str> {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::trim)
    };
    let number = |s: &str| s.trim().trim_end_matches(',').parse::<f64>().unwrap_or(0.0);
    let summary = text
        .lines()
        .find(|l| l.contains("requests in"))
        .unwrap_or_else(|| panic!("no summary in wrk's output:\n{text}"));
    let mut words = summary.split_whitespace();
    let completed = words.next().map(number).unwrap_or(0.0) as usize;
    let seconds = words
        .nth(2)
        .map(|d| {
            d.trim_end_matches(',')
                .trim_end_matches('s')
                .parse::<f64>()
                .unwrap_or(0.0)
        })
        .unwrap_or(0.0);
    let socket_errors = after("Socket errors:")
        .map(|s| {
            s.split(',')
                .filter_map(|part| part.split_whitespace().last())
                .map(|n| n.parse::<usize>().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0);
    let issued_per_thread = after("issued")
        .map(|s| s.split_whitespace().map(|n| n.parse().unwrap_or(0)).collect())
        .unwrap_or_default();
    WrkResult {
        completed,
        seconds,
        requests_per_sec: after("Requests/sec:").map(number).unwrap_or(0.0),
        p50: after("50%").unwrap_or("?").to_owned(),
        p99: after("99%").unwrap_or("?").to_owned(),
        non_2xx: after("Non-2xx or 3xx responses:").map(number).unwrap_or(0.0) as usize,
        socket_errors,
        issued_per_thread,
    }
}

/// Each thread loads its share of the requests file (line n goes to thread n mod threads) and
/// sends its lines in order; `done` prints how many each thread issued.
const WRK_SCRIPT: &str = r#"
local threads = {}
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  local file, count = args[1], tonumber(args[2])
  reqs = {}
  local n = 0
  for line in io.lines(file) do
    if n % count == id then
      local tab = line:find("\t", 1, true)
      reqs[#reqs + 1] = wrk.format("POST", line:sub(1, tab - 1), {["Content-Type"] = "application/xml"}, line:sub(tab + 1))
    end
    n = n + 1
  end
  issued = 0
end
function request()
  issued = issued + 1
  return reqs[(issued - 1) % #reqs + 1]
end
function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    counts[#counts + 1] = tostring(thread:get("issued"))
  end
  io.write("issued " .. table.concat(counts, " ") .. "\n")
end
"#;

async fn metric(client: &reqwest::Client, base: &str, name: &str) -> u64 {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("/metrics answers")
        .text()
        .await
        .expect("/metrics has a body");
    text.lines()
        .find_map(|l| l.strip_prefix(name).map(str::trim))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics"))
}

async fn inbox_rows(db: &sea_orm::DatabaseConnection) -> u64 {
    count(db, "SELECT COUNT(*) AS n FROM inbox").await
}

/// Rows the worker has finished with (processed, ignored or failed).
async fn handled_rows(db: &sea_orm::DatabaseConnection) -> u64 {
    count(
        db,
        "SELECT COUNT(*) AS n FROM inbox WHERE status IN ('processed', 'ignored', 'failed')",
    )
    .await
}

async fn count(db: &sea_orm::DatabaseConnection, sql: &str) -> u64 {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("the inbox is counted")
        .expect("a count");
    row.try_get::<i64>("", "n").expect("a number") as u64
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

async fn sample_rss(pid: u32, peak: Arc<AtomicU64>, running: Arc<AtomicBool>) {
    while running.load(Ordering::Relaxed) {
        peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
