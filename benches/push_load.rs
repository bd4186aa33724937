//! Load: 100,000 reminders fall due in the same minute for 1,000 reps; two service instances
//! (each with its own database pool, cache connection, dispatcher and sender) push them through a
//! fake WeCom. Reports the time until every reminder is pushed, pushes per second, and checks the
//! delivered messages: duplicates and misses (both must be 0), and the most messages any rep got
//! in one minute (WeCom drops beyond 30).
//!
//! cargo bench --bench push_load
//! Environment: SCRM_BENCH_DATABASE_URL (PostgreSQL; default a SQLite file), SCRM_BENCH_REDIS_URL
//! (default the in-process cache), BENCH_REMINDERS (100000), BENCH_DEPARTMENTS (50),
//! BENCH_REPS_PER_DEPARTMENT (20), BENCH_API_CALLS_PER_MINUTE (the configured default),
//! BENCH_WECOM_LATENCY_MS (0: how long the fake takes to answer each call), BENCH_TIMEOUT_SECS (1800).

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use tokio::sync::oneshot;
use wecom_scrm::app::App;
use wecom_scrm::crm::audit::Actor;
use wecom_scrm::crm::sync;
use wecom_scrm::db::entity::reminder;

use common::*;

fn main() {
    run_bench(run());
}

/// Every `任务<n>` in the delivered texts, counted.
fn count_tasks(texts: &[String]) -> HashMap<u64, u32> {
    let mut seen = HashMap::new();
    for text in texts {
        for piece in text.split("任务").skip(1) {
            let digits: String = piece.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(n) = digits.parse() {
                *seen.entry(n).or_insert(0) += 1;
            }
        }
    }
    seen
}

/// The most messages any member received within 60 seconds.
fn busiest_minute(times_by_user: &HashMap<String, Vec<i64>>) -> usize {
    let mut most = 0;
    for times in times_by_user.values() {
        let mut times = times.clone();
        times.sort_unstable();
        let mut start = 0;
        for end in 0..times.len() {
            while times[end] - times[start] >= 60_000 {
                start += 1;
            }
            most = most.max(end - start + 1);
        }
    }
    most
}

async fn run() {
    let reminders = env_number("BENCH_REMINDERS", 100_000);
    let departments = env_number("BENCH_DEPARTMENTS", 50);
    let per_department = env_number("BENCH_REPS_PER_DEPARTMENT", 20);
    let timeout = Duration::from_secs(env_number("BENCH_TIMEOUT_SECS", 1800));
    let reps = departments * per_department;
    let customers = reps * 10;
    let bench_db = BenchDb::from_env();
    let cache = if redis_url().is_empty() {
        "in-process caches"
    } else {
        "Redis"
    };
    println!(
        "push_load: {reminders} reminders due in one minute, {reps} reps, two instances, {} + {cache}",
        bench_db.backend()
    );

    let (fake, prefix) = start_org(departments, per_department).await;
    let latency = env_number("BENCH_WECOM_LATENCY_MS", 0);
    fake.set_delay(Duration::from_millis(latency));
    let mut config = config(&bench_db, &fake.url(), &prefix);
    config.jobs.push_reminders = true;
    config.database.max_connections = 10;
    if let Some(budget) = std::env::var("BENCH_API_CALLS_PER_MINUTE")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.wecom.api_calls_per_minute = budget;
    }
    println!(
        "  merge_max {}, claim_batch {}, message/send budget {}/min, {} calls in flight per instance, WeCom answers in {latency} ms",
        config.jobs.merge_max, config.jobs.claim_batch, config.wecom.api_calls_per_minute, config.wecom.max_concurrency
    );

    let first = App::build(config.clone()).await.expect("the first instance starts");
    let s = first.state().services.clone();
    let db = s.db.clone();
    sync::sync_org(&s, &Actor::Sync, &mut |_| {})
        .await
        .expect("the org syncs");
    let now = wecom_scrm::db::now_ms();
    let minute = now - now % 60_000 - 60_000;
    seed(
        &db,
        "customers",
        format!(
            "{} INSERT INTO customers (external_userid, name, owner_userid, stage, created_at, updated_at) \
             SELECT 'wmBench' || i, '客户' || i, {}, '需求确认', {now}, {now} FROM s",
            series(customers),
            rep_of("i", departments, per_department)
        ),
    )
    .await;
    seed(
        &db,
        "reminders",
        format!(
            "{} INSERT INTO reminders (customer_id, owner_userid, created_by, text, due_at, created_at, updated_at) \
             SELECT (i - 1) % {customers} + 1, {}, 'bench', '任务' || i, {minute} + i % 60000, {now}, {now} FROM s",
            series(reminders),
            rep_of(&format!("((i - 1) % {customers} + 1)"), departments, per_department)
        ),
    )
    .await;
    let second = App::build(config).await.expect("the second instance starts");

    let started = Instant::now();
    let mut stops = Vec::new();
    let mut handles = Vec::new();
    for app in [first, second] {
        let (tx, rx) = oneshot::channel::<()>();
        stops.push(tx);
        handles.push(tokio::spawn(app.run(async move {
            let _ = rx.await;
        })));
    }
    let sent_count = || async {
        reminder::Entity::find()
            .filter(reminder::Column::DeliveryState.eq("sent"))
            .count(&db)
            .await
            .expect("the database answers")
    };
    let mut last_report = Instant::now();
    let finished = loop {
        let sent = sent_count().await;
        if sent >= reminders {
            break true;
        }
        if started.elapsed() > timeout {
            break false;
        }
        if last_report.elapsed() >= Duration::from_secs(10) {
            last_report = Instant::now();
            println!(
                "  {:>5.0}s: {sent}/{reminders} pushed in {} messages",
                started.elapsed().as_secs_f64(),
                fake.messages().len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let elapsed = started.elapsed();
    // Anything still in flight would show up as a duplicate now: give it a moment.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for stop in stops {
        let _ = stop.send(());
    }
    for handle in handles {
        let _ = handle.await;
    }

    let delivered = fake.messages();
    let texts: Vec<String> = delivered.iter().map(|m| m.body.display_text()).collect();
    let seen = count_tasks(&texts);
    let duplicates: u64 = seen.values().map(|n| u64::from(n.saturating_sub(1))).sum();
    let misses = (1..=reminders).filter(|i| !seen.contains_key(i)).count();
    let mut times_by_user: HashMap<String, Vec<i64>> = HashMap::new();
    for m in &delivered {
        for user in &m.to_users {
            times_by_user.entry(user.clone()).or_default().push(m.at);
        }
    }
    let secs = elapsed.as_secs_f64();
    println!();
    println!(
        "| backend | reminders | reps | messages | all pushed after | reminders/s | messages/s | duplicates | misses | most to one rep in a minute |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {} + {cache} | {reminders} | {reps} | {} | {secs:.1} s{} | {:.0} | {:.1} | {duplicates} | {misses} | {} |",
        bench_db.backend(),
        delivered.len(),
        if finished { "" } else { " (timed out)" },
        seen.len() as f64 / secs,
        delivered.len() as f64 / secs,
        busiest_minute(&times_by_user),
    );
    println!(
        "duplicate requests WeCom would have suppressed: {}",
        fake.suppressed_duplicates()
    );
    bench_db.cleanup(&db).await;
    if !finished || duplicates > 0 || misses > 0 {
        eprintln!("push_load FAILED: every reminder must be pushed exactly once");
        std::process::exit(1);
    }
}
