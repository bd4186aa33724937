//! Load: the nightly score pass (`jobs::leads::score_pass`, i.e. `crm::score::refresh_all`) over
//! 1,000,000 customers with 10,000,000 follow-ups, 200,000 customer events and 100,000 open deals.
//! Target: under 60 s on PostgreSQL. Times a first pass (every customer gets a score and a
//! segment) and a second one (nothing changed: what a quiet night costs).
//!
//! cargo bench --bench score_pass
//! Environment: SCRM_BENCH_DATABASE_URL (PostgreSQL; default a SQLite file), BENCH_CUSTOMERS
//! (1000000), BENCH_FOLLOW_UPS (10 per customer), BENCH_DEPARTMENTS (50),
//! BENCH_REPS_PER_DEPARTMENT (20).

mod common;

use std::time::Instant;

use wecom_scrm::crm::score;

use common::*;

const DAY: i64 = 86_400_000;

fn main() {
    run_bench(run());
}

async fn run() {
    let customers = env_number("BENCH_CUSTOMERS", 1_000_000);
    let follow_ups = env_number("BENCH_FOLLOW_UPS", customers * 10);
    let departments = env_number("BENCH_DEPARTMENTS", 50);
    let per_department = env_number("BENCH_REPS_PER_DEPARTMENT", 20);
    let bench_db = BenchDb::from_env();
    println!(
        "score_pass: {customers} customers, {follow_ups} follow-ups on {}",
        bench_db.backend()
    );
    let (_fake, s) = synced_services(&bench_db, departments, per_department).await;
    let db = s.db.clone();
    let now = wecom_scrm::db::now_ms();
    // Computed here: PostgreSQL would do `200 * DAY` in 32 bits.
    let created = now - 200 * DAY;
    let rep = |i: &str| rep_of(i, departments, per_department);
    let stages = STAGE_OF_ROW;
    let ratings = "CASE i % 4 WHEN 0 THEN 'A' WHEN 1 THEN 'B' WHEN 2 THEN 'C' END";
    seed(
        &db,
        "customers",
        format!(
            "{} INSERT INTO customers (external_userid, name, corp_name, owner_userid, stage, rating, at_risk, \
             last_follow_up_at, created_at, updated_at) \
             SELECT 'wmScore' || i, '客户' || i, '公司' || (i % 5000), {}, {stages}, {ratings}, false, \
             {now} - (i % 45) * {DAY}, {created}, {created} FROM s",
            series(customers),
            rep("i")
        ),
    )
    .await;
    seed_follow_ups(&db, follow_ups, customers, departments, per_department, now).await;
    seed(
        &db,
        "customer events",
        format!(
            "{} INSERT INTO audit_log (at, actor, action, customer_id, member_userid, detail) \
             SELECT {now} - (i % 40) * {DAY}, 'wecom', 'customer.added', (i * 5) % {customers} + 1, NULL, '{{}}' FROM s",
            series(customers / 5)
        ),
    )
    .await;
    seed(
        &db,
        "open deals",
        format!(
            "{} INSERT INTO deals (customer_id, owner_userid, title, amount_fen, stage, status, created_at, updated_at) \
             SELECT (i * 10) % {customers} + 1, {}, '商机' || i, (i % 50) * 1000000, '方案报价', 'open', {now}, {now} FROM s",
            series(customers / 10),
            rep("i")
        ),
    )
    .await;

    let stages = wecom_scrm::crm::stages::current(&db, &s.config).await.unwrap();
    let cfg = &s.config.scoring;
    let mut timings = Vec::new();
    for pass in ["first (all scored)", "second (nothing changed)"] {
        let started = Instant::now();
        let report = score::refresh_all(&db, cfg, &stages, now, &mut |done| {
            if done % 200_000 == 0 {
                eprintln!("  {done} customers scored");
            }
        })
        .await
        .expect("the pass runs");
        let secs = started.elapsed().as_secs_f64();
        println!(
            "  {pass}: {} customers, {} changed, {secs:.1} s ({:.0} customers/s)",
            report.customers,
            report.changed,
            report.customers as f64 / secs
        );
        timings.push((pass, report, secs));
    }
    let counts = score::segment_counts(&db, &reps(departments, per_department))
        .await
        .unwrap();
    println!("  segments: {counts:?}");
    println!("\n| stack | customers | follow-ups | pass | seconds |\n|---|---|---|---|---|");
    for (pass, _, secs) in &timings {
        println!(
            "| {} | {customers} | {follow_ups} | {pass} | {secs:.1} |",
            stack(&bench_db)
        );
    }
    assert_eq!(timings[0].1.customers, customers);
    bench_db.cleanup(&db).await;
}
