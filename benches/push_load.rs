//! Load with faults: 100,000 reminders fall due in the same minute for 1,000 reps; two instances of
//! the release binary (`serve`, each its own process) push them through a fake WeCom. 1 % of the
//! reps have just left — WeCom refuses them (81013) before the org sync has run — and their
//! customers are their leaders', so their reminders are re-routed; one instance is killed with
//! SIGKILL once 30 % are pushed, and the other carries on (taking over the dead one's leases).
//! Reports the time until every reminder is pushed and checks what WeCom delivered: every reminder
//! exactly once (duplicates and misses must both be 0), to its owner or, re-routed, to the
//! customer's owner, and the most messages any rep got in one minute (WeCom drops beyond 30).
//!
//! cargo bench --bench push_load
//! Environment: SCRM_BENCH_DATABASE_URL (PostgreSQL; default a SQLite file), SCRM_BENCH_REDIS_URL
//! (default the in-process cache), BENCH_REMINDERS (100000), BENCH_DEPARTMENTS (50),
//! BENCH_REPS_PER_DEPARTMENT (20), BENCH_REFUSED_PERMILLE (10: reps WeCom refuses),
//! BENCH_KILL_AT_PERCENT (30: pushed when one instance is killed; 0 = none),
//! BENCH_API_CALLS_PER_MINUTE (the configured default), BENCH_WECOM_LATENCY_MS (0: how long the
//! fake takes to answer each call), BENCH_TIMEOUT_SECS (1800).

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};
use secrecy::SecretString;
use wecom_scrm::db::entity::audit;
use wecom_scrm::db::entity::reminder::{self, DeliveryState};

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
    let refused_permille = env_number("BENCH_REFUSED_PERMILLE", 10);
    let kill_at = env_number("BENCH_KILL_AT_PERCENT", 30);
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
        "push_load: {reminders} reminders due in one minute, {reps} reps, two `serve` processes, {} + {cache}",
        bench_db.backend()
    );

    let (fake, prefix) = start_org(departments, per_department).await;
    let latency = env_number("BENCH_WECOM_LATENCY_MS", 0);
    fake.set_delay(Duration::from_millis(latency));
    let mut extra = vec![("SCRM_JOBS__PUSH_REMINDERS".to_owned(), "true".to_owned())];
    if let Ok(budget) = std::env::var("BENCH_API_CALLS_PER_MINUTE") {
        extra.push(("SCRM_WECOM__API_CALLS_PER_MINUTE".into(), budget));
    }
    let env_for = |port: u16| {
        let mut env = service_env(&bench_db, &fake.url(), &prefix, port);
        env.extend(extra.iter().cloned());
        env
    };
    // Migrate and import the org once, with the binary itself.
    let status = service_command("sync", &env_for(free_port()))
        .stdout(std::process::Stdio::null())
        .status()
        .expect("the binary runs");
    assert!(status.success(), "wecom-scrm sync failed: {status}");
    let mut db_config = config(&bench_db, &fake.url(), &prefix).database;
    db_config.url = SecretString::from(bench_db.url.clone());
    let db = wecom_scrm::db::connect(&db_config).await.expect("the database answers");

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
    // The refused reps: the first of every so many; they follow their customers, whom their leader
    // owns, and WeCom no longer takes messages for them.
    let every = (1000 / refused_permille.max(1)).max(1);
    let refused: Vec<String> = common::reps(departments, per_department)
        .into_iter()
        .step_by(every as usize)
        .collect();
    for rep in &refused {
        let department = rep.trim_start_matches("rep").split('_').next().unwrap_or_default();
        let sql = format!("UPDATE customers SET owner_userid = 'lead{department}' WHERE owner_userid = '{rep}'");
        db.execute_raw(sea_orm::Statement::from_string(db.get_database_backend(), sql))
            .await
            .expect("customers re-owned");
        fake.set_member_status(rep, 5);
    }
    println!(
        "  {} reps refused by WeCom; one instance killed at {kill_at} % pushed",
        refused.len()
    );

    let client = reqwest::Client::new();
    let mut instances = Vec::new();
    for _ in 0..2 {
        let port = free_port();
        let mut process = ServiceProcess(
            service_command("serve", &env_for(port))
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("the service starts"),
        );
        wait_ready(&client, &format!("http://127.0.0.1:{port}"), &mut process.0).await;
        instances.push(process);
    }
    let started = Instant::now();
    let sent_count = || async {
        reminder::Entity::find()
            .filter(reminder::Column::DeliveryState.eq(DeliveryState::Sent))
            .count(&db)
            .await
            .expect("the database answers")
    };
    let mut last_report = Instant::now();
    let mut killed_at = None;
    let finished = loop {
        let sent = sent_count().await;
        if sent >= reminders {
            break true;
        }
        if started.elapsed() > timeout {
            break false;
        }
        if killed_at.is_none() && kill_at > 0 && sent * 100 >= reminders * kill_at {
            // SIGKILL: no shutdown, its claims and leases left as they are.
            instances[1].0.kill().expect("the instance is killed");
            let _ = instances[1].0.wait();
            killed_at = Some(started.elapsed());
            println!(
                "  {:>5.0}s: {sent}/{reminders} pushed; instance 2 killed (SIGKILL)",
                started.elapsed().as_secs_f64()
            );
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
    drop(instances);

    let delivered = fake.messages();
    let texts: Vec<String> = delivered.iter().map(|m| m.body.display_text()).collect();
    let seen = count_tasks(&texts);
    let duplicates: u64 = seen.values().map(|n| u64::from(n.saturating_sub(1))).sum();
    let misses = (1..=reminders).filter(|i| !seen.contains_key(i)).count();
    let to_refused = delivered
        .iter()
        .filter(|m| m.to_users.iter().any(|u| refused.contains(u)))
        .count();
    let rerouted = audit::Entity::find()
        .filter(audit::Column::Action.eq("reminder.rerouted"))
        .count(&db)
        .await
        .expect("the audit log answers");
    let mut times_by_user: HashMap<String, Vec<i64>> = HashMap::new();
    for m in &delivered {
        for user in &m.to_users {
            times_by_user.entry(user.clone()).or_default().push(m.at);
        }
    }
    let secs = elapsed.as_secs_f64();
    println!();
    println!(
        "| backend | reminders | reps | refused reps | re-routed | killed | messages | all pushed after | reminders/s | duplicates | misses | most to one rep in a minute |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {} + {cache} | {reminders} | {reps} | {} | {rerouted} | {} | {} | {secs:.1} s{} | {:.0} | {duplicates} | {misses} | {} |",
        bench_db.backend(),
        refused.len(),
        killed_at.map_or("no".to_owned(), |t| format!("at {:.0} s", t.as_secs_f64())),
        delivered.len(),
        if finished { "" } else { " (timed out)" },
        seen.len() as f64 / secs,
        busiest_minute(&times_by_user),
    );
    println!(
        "duplicate requests WeCom suppressed (resends after the kill): {}",
        fake.suppressed_duplicates()
    );
    bench_db.cleanup(&db).await;
    if !finished || duplicates > 0 || misses > 0 || to_refused > 0 {
        eprintln!("push_load FAILED: every reminder must be pushed exactly once, and never to a refused rep");
        std::process::exit(1);
    }
}
