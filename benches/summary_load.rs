//! Load: the managers' daily summary at 1,000 reps and 1,000,000 follow-ups. Seeds an org of 50
//! departments of 20 reps (synced from a fake WeCom), 100,000 customers, 1,000,000 follow-ups over
//! 30 days, 200,000 reminders and 100,000 stage moves; then times the org's figures for a day, the
//! summaries of every leader (what the 18:00 job computes), and one leader's `日报` in chat.
//!
//! cargo bench --bench summary_load
//! Environment: SCRM_BENCH_DATABASE_URL (PostgreSQL; default a SQLite file), BENCH_FOLLOW_UPS
//! (1000000), BENCH_DEPARTMENTS (50), BENCH_REPS_PER_DEPARTMENT (20), BENCH_ROUNDS (5).

mod common;

use sea_orm::{ConnectionTrait, Statement};
use wecom_scrm::bot::command::Lang;
use wecom_scrm::report as summary;
use wecom_scrm::texts::local_date;

use common::*;

const DAY: i64 = 86_400_000;

fn main() {
    run_bench(run());
}

async fn run() {
    let follow_ups = env_number("BENCH_FOLLOW_UPS", 1_000_000);
    let departments = env_number("BENCH_DEPARTMENTS", 50);
    let per_department = env_number("BENCH_REPS_PER_DEPARTMENT", 20);
    let rounds = env_number("BENCH_ROUNDS", 5);
    let reps = departments * per_department;
    let customers = reps * 100;
    let reminders = customers * 2;
    let moves = customers;
    let bench_db = BenchDb::from_env();
    println!(
        "summary_load: {reps} reps, {customers} customers, {follow_ups} follow-ups on {}",
        bench_db.backend()
    );

    let (_fake, s) = synced_services(&bench_db, departments, per_department).await;
    let db = s.db.clone();
    let now = wecom_scrm::db::now_ms();
    let long_ago = now - 90 * DAY;
    let rep = |i: &str| rep_of(i, departments, per_department);
    let owner_of = |i: &str| rep(&format!("(({i} - 1) % {customers} + 1)"));
    let stages = STAGE_OF_ROW;
    seed(
        &db,
        "customers",
        format!(
            "{} INSERT INTO customers (external_userid, name, corp_name, owner_userid, stage, at_risk, at_risk_reason, \
             at_risk_since, last_follow_up_at, created_at, updated_at) \
             SELECT 'wmBench' || i, '客户' || i, '公司' || (i % 5000), {}, {stages}, i % 97 = 0, \
             CASE WHEN i % 97 = 0 THEN '客户删除了负责人' END, CASE WHEN i % 97 = 0 THEN {now} - (i % 30) * {DAY} END, \
             {now} - (i % 40) * {DAY}, {long_ago}, {now} FROM s",
            series(customers),
            rep("i")
        ),
    )
    .await;
    seed(
        &db,
        "followers",
        format!(
            "{} INSERT INTO followers (customer_id, userid, added_at, removed_at, removed_by, created_at, updated_at) \
             SELECT i, {}, {now} - (i % 60) * {DAY} - (i % 1000) * 1000, \
             CASE WHEN i % 211 = 0 THEN {now} - (i % 3) * {DAY} END, CASE WHEN i % 211 = 0 THEN 'customer' END, \
             {now}, {now} FROM s",
            series(customers),
            rep("i")
        ),
    )
    .await;
    seed_follow_ups(&db, follow_ups, customers, departments, per_department, now).await;
    seed(
        &db,
        "reminders",
        format!(
            "{} INSERT INTO reminders (customer_id, owner_userid, created_by, text, due_at, status, done_at, created_at, updated_at) \
             SELECT (i - 1) % {customers} + 1, {}, 'bench', '回访', {now} + (i % 14 - 7) * {DAY}, \
             CASE WHEN i % 3 = 0 THEN 'done' ELSE 'open' END, CASE WHEN i % 3 = 0 THEN {now} - (i % 7) * {DAY} END, \
             {now}, {now} FROM s",
            series(reminders),
            owner_of("i")
        ),
    )
    .await;
    seed(
        &db,
        "stage moves",
        format!(
            "{} INSERT INTO audit_log (at, actor, action, customer_id, member_userid, detail) \
             SELECT {now} - (i % 43200) * 60000, 'member:bench', 'customer.stage', (i - 1) % {customers} + 1, {}, \
             CASE WHEN i % 5 = 0 THEN '{{\"from\":\"商务谈判\",\"to\":\"赢单\"}}' ELSE '{{\"from\":\"需求确认\",\"to\":\"方案报价\"}}' END FROM s",
            series(moves),
            owner_of("i")
        ),
    )
    .await;
    db.execute_raw(Statement::from_string(db.get_database_backend(), "ANALYZE"))
        .await
        .expect("statistics gathered");

    let today = local_date(now, s.tz());
    let (org_fast, org_median, _) = time(rounds, || async {
        summary::org_figures(&s, today, now, None).await.expect("figures")
    })
    .await;
    let (all_fast, all_median, rendered) = time(rounds, || async {
        summary::render(&s, today, None, now).await.expect("summaries")
    })
    .await;
    let (chat_fast, chat_median, chat) = time(rounds, || async {
        summary::for_chat(&s, "lead1", Lang::Zh, now)
            .await
            .expect("chat summary")
    })
    .await;
    let parts: usize = rendered.iter().map(|r| r.parts.len()).sum();
    println!();
    println!("| backend | reps | follow-ups | what | fastest | median of {rounds} |");
    println!("|---|---|---|---|---|---|");
    let backend = bench_db.backend();
    for (what, fast, median) in [
        (
            "the org's figures for a day (3 windows)".to_owned(),
            org_fast,
            org_median,
        ),
        (
            format!(
                "every leader's summary ({} recipients, {parts} messages)",
                rendered.len()
            ),
            all_fast,
            all_median,
        ),
        ("one leader's `日报` in chat".to_owned(), chat_fast, chat_median),
    ] {
        println!(
            "| {backend} | {reps} | {follow_ups} | {what} | {} | {} |",
            ms(fast),
            ms(median)
        );
    }
    if let Some(first) = rendered.iter().find(|r| r.userid == "lead1") {
        println!("\nlead1's summary:\n{}", first.parts.join("\n"));
    }
    assert!(chat.is_some_and(|text| text.contains("团队合计")));
    bench_db.cleanup(&db).await;
}
