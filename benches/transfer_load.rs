//! CSV export and import through the admin API, against the real app on a random port.
//!
//! Exports every customer of a large CRM (default 1,000,000) while sampling the process's resident
//! set, to show the export streams in constant memory; then imports a trade fair's business cards
//! (default 3,000) twice — the second import must change nothing.
//!
//! `cargo bench --bench transfer_load`; PostgreSQL with `SCRM_BENCH_DATABASE_URL`. Sizes:
//! `BENCH_CUSTOMERS`, `BENCH_CARDS`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use wecom_scrm::app::App;
use wecom_scrm::crm::audit::Actor;
use wecom_scrm::sync;

use common::*;

fn main() {
    run_bench(run());
}

/// The resident set of this process now, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

async fn run() {
    let customers = env_number("BENCH_CUSTOMERS", 1_000_000);
    let cards = env_number("BENCH_CARDS", 3_000);
    let (departments, per_department) = (10, 10);
    let bench_db = BenchDb::from_env();
    println!(
        "transfer_load: export {customers} customers, import {cards} business cards, {}",
        bench_db.backend()
    );
    let (fake, prefix) = start_org(departments, per_department).await;
    let mut config = config(&bench_db, &fake.url(), &prefix);
    config.channels = vec![wecom_scrm::config::ChannelSeed {
        state: "expo".into(),
        name: "展会".into(),
        welcome: None,
        plan: None,
        assign: None,
    }];
    let app = App::build(config).await.expect("the app starts");
    let base = format!("http://{}/api/v1", app.local_addr());
    let s = app.state().services.clone();
    let db = s.db.clone();
    sync::sync_org(&s, &Actor::Sync, &mut |_| {})
        .await
        .expect("the org syncs");
    let now = wecom_scrm::db::now_ms();
    seed(
        &db,
        "customers",
        format!(
            "{} INSERT INTO customers (external_userid, name, corp_name, position, owner_userid, stage, tags, \
             first_state, created_at, updated_at) \
             SELECT 'wmBench' || i, '客户' || i, '深圳市某某科技有限公司' || (i % 5000), '采购经理', {}, '需求确认', \
             '[\"重点\",\"展会\"]', 'expo', {now}, {now} FROM s",
            series(customers),
            rep_of("i", departments, per_department)
        ),
    )
    .await;
    let token = wecom_scrm::tokens::create(&db, "bench", "admin", None, now)
        .await
        .expect("a token")
        .token;
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async move {
        let _ = stopped.await;
    }));

    let peak = Arc::new(AtomicU64::new(0));
    let sampling = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let client = reqwest::Client::new();
    let before = rss_kib();
    let started = Instant::now();
    let mut response = client
        .get(format!("{base}/export/customers.csv"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("the export answers");
    assert!(response.status().is_success(), "{}", response.status());
    let (mut bytes, mut lines) = (0u64, 0u64);
    while let Some(chunk) = response.chunk().await.expect("the export streams") {
        bytes += chunk.len() as u64;
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
    }
    let exported_in = started.elapsed();
    sampling.abort();
    let peak = peak.load(Ordering::Relaxed);
    assert_eq!(lines, customers + 1, "every customer once, after the header");

    let mut csv = String::from("姓名,公司,职位,电话,渠道,负责人\n");
    for i in 0..cards {
        let rep = format!("rep{}_{}", i % departments + 1, i % per_department + 1);
        csv.push_str(&format!("展会客户{i},参展公司{i},采购,139{i:08},expo,{rep}\n"));
    }
    let mut imports = Vec::new();
    for _ in 0..2 {
        let started = Instant::now();
        let report: serde_json::Value = client
            .post(format!("{base}/import/customers"))
            .bearer_auth(&token)
            .header("content-type", "text/csv")
            .body(csv.clone())
            .send()
            .await
            .expect("the import answers")
            .json()
            .await
            .expect("a report");
        imports.push((started.elapsed(), report));
    }
    let _ = stop.send(());
    let _ = server.await;
    bench_db.cleanup(&db).await;

    println!();
    println!("| backend | what | time | rate | resident set |");
    println!("|---|---|---|---|---|");
    println!(
        "| {} | export {customers} customers ({:.0} MiB of CSV) | {:.1} s | {:.0} rows/s | {} before, {} peak |",
        bench_db.backend(),
        bytes as f64 / 1_048_576.0,
        exported_in.as_secs_f64(),
        customers as f64 / exported_in.as_secs_f64(),
        mib(before),
        mib(peak)
    );
    for (i, (took, report)) in imports.iter().enumerate() {
        println!(
            "| {} | import {cards} cards ({}) | {:.2} s | {:.0} rows/s | created {}, unchanged {}, rejected {} |",
            bench_db.backend(),
            if i == 0 { "new" } else { "again" },
            took.as_secs_f64(),
            cards as f64 / took.as_secs_f64(),
            report["created"],
            report["unchanged"],
            report["rejected"].as_array().map_or(0, Vec::len)
        );
    }
    let (first, second) = (&imports[0].1, &imports[1].1);
    let ok = first["created"] == cards && second["unchanged"] == cards && second["created"] == 0;
    if !ok {
        let brief = |r: &serde_json::Value| {
            format!(
                "created {}, unchanged {}, first rejection {}",
                r["created"], r["unchanged"], r["rejected"][0]
            )
        };
        eprintln!("unexpected import reports: {} / {}", brief(first), brief(second));
        std::process::exit(1);
    }
}
