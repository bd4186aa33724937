//! Load: the forecast and the managers' dashboard at 1,000 reps, 100,000 deals and 1,000,000
//! follow-ups. Seeds an org of 50 departments of 20 reps (synced from a fake WeCom), 100,000
//! customers with followers, 1,000,000 follow-ups over 30 days and 100,000 deals spread over the
//! stages, four close months and the three lives (open, won, lost); then times, against the real
//! app on a random port, `GET /api/v1/forecast` for the whole org (admin token), for one department
//! and for one rep, and the dashboard's figures for a department leader and for the whole org.
//!
//! cargo bench --bench forecast_load
//! Environment: SCRM_BENCH_DATABASE_URL (PostgreSQL; default a SQLite file), BENCH_DEALS (100000),
//! BENCH_FOLLOW_UPS (1000000), BENCH_DEPARTMENTS (50), BENCH_REPS_PER_DEPARTMENT (20), BENCH_ROUNDS (5).

mod common;

use sea_orm::{ConnectionTrait, Statement};
use wecom_scrm::app::App;
use wecom_scrm::crm::activity;
use wecom_scrm::crm::audit::Actor;
use wecom_scrm::crm::dashboard::{self, Viewer};
use wecom_scrm::crm::forecast::month_key;
use wecom_scrm::sync;
use wecom_scrm::texts::local_date;

use common::*;

const DAY: i64 = 86_400_000;

fn main() {
    run_bench(run());
}

async fn run() {
    let deals = env_number("BENCH_DEALS", 100_000);
    let follow_ups = env_number("BENCH_FOLLOW_UPS", 1_000_000);
    let departments = env_number("BENCH_DEPARTMENTS", 50);
    let per_department = env_number("BENCH_REPS_PER_DEPARTMENT", 20);
    let rounds = env_number("BENCH_ROUNDS", 5);
    let reps = departments * per_department;
    let customers = reps * 100;
    let bench_db = BenchDb::from_env();
    println!(
        "forecast_load: {reps} reps, {customers} customers, {deals} deals, {follow_ups} follow-ups on {}",
        bench_db.backend()
    );
    let (fake, prefix) = start_org(departments, per_department).await;
    let mut settings = config(&bench_db, &fake.url(), &prefix);
    settings.web.dashboard_admins = vec!["boss".into()];
    // The pages are on (the address is only used in links).
    settings.web.public_url = "http://127.0.0.1".into();
    let app = App::build(settings).await.expect("the app starts");
    let s = app.state().services.clone();
    let db = s.db.clone();
    sync::sync_org(&s, &Actor::Sync, &mut |_| {})
        .await
        .expect("the org syncs");
    let now = wecom_scrm::db::now_ms();
    let today = local_date(now, s.tz());
    // Computed here: PostgreSQL would overflow 32-bit arithmetic on literal products.
    let (long_ago, made) = (now - 90 * DAY, now - 40 * DAY);
    let rep = |i: &str| rep_of(i, departments, per_department);
    let owner_of = |i: &str| rep(&format!("(({i} - 1) % {customers} + 1)"));
    seed(
        &db,
        "customers",
        format!(
            "{} INSERT INTO customers (external_userid, name, corp_name, owner_userid, stage, at_risk, at_risk_reason, \
             at_risk_since, last_follow_up_at, created_at, updated_at) \
             SELECT 'wmBench' || i, '客户' || i, '公司' || (i % 5000), {}, '需求确认', i % 97 = 0, \
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
            "{} INSERT INTO followers (customer_id, userid, added_at, created_at, updated_at) \
             SELECT i, {}, {now} - (i % 60) * {DAY}, {now}, {now} FROM s",
            series(customers),
            rep("i")
        ),
    )
    .await;
    seed_follow_ups(&db, follow_ups, customers, departments, per_department, now).await;
    // Close dates over this month and the next three; one in eight deals won, one in eight lost
    // (closed this month), the rest open over the four open stages.
    let months: Vec<String> = (0..4)
        .map(|m| format!("'{}-15'", month_key(today + chrono::Months::new(m))))
        .collect();
    seed(
        &db,
        "deals",
        format!(
            "{} INSERT INTO deals (customer_id, owner_userid, title, amount_fen, expected_close, stage, status, \
             created_at, updated_at, closed_at) \
             SELECT (i - 1) % {customers} + 1, {}, '商机' || i, (i % 50 + 1) * 1000000, \
             CASE i % 4 WHEN 0 THEN {} WHEN 1 THEN {} WHEN 2 THEN {} ELSE {} END, \
             CASE i % 8 WHEN 0 THEN '赢单' WHEN 1 THEN '输单' WHEN 2 THEN '初步接触' WHEN 3 THEN '需求确认' \
                        WHEN 4 THEN '方案报价' ELSE '商务谈判' END, \
             CASE i % 8 WHEN 0 THEN 'won' WHEN 1 THEN 'lost' ELSE 'open' END, \
             {made}, {now}, CASE WHEN i % 8 < 2 THEN {now} - (i % 3) * {DAY} END FROM s",
            series(deals),
            owner_of("i"),
            months[0],
            months[1],
            months[2],
            months[3]
        ),
    )
    .await;
    // The notes went in behind the app's back: count them per member and day as a first start does.
    let started = std::time::Instant::now();
    let days = activity::rebuild(&db, s.tz()).await.expect("the daily roll-up");
    let rebuilt = started.elapsed();
    println!(
        "follow-ups per member and day: {days} rows from {follow_ups} notes in {}",
        ms(rebuilt)
    );
    db.execute_raw(Statement::from_string(db.get_database_backend(), "ANALYZE"))
        .await
        .expect("statistics gathered");

    let token = wecom_scrm::tokens::create(&db, "bench", "admin", None, now)
        .await
        .expect("a token")
        .token;
    let app_addr = app.local_addr();
    let base = format!("http://{app_addr}/api/v1");
    let served = tokio::spawn(app.run(std::future::pending::<()>()));
    let http = reqwest::Client::new();
    let get = |query: &'static str| {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        async move {
            let response = http
                .get(format!("{base}/forecast{query}"))
                .bearer_auth(&token)
                .send()
                .await
                .expect("the forecast answers");
            assert!(response.status().is_success(), "{}", response.status());
            response.json::<serde_json::Value>().await.expect("JSON")
        }
    };
    let mut results = Vec::new();
    for (what, query) in [
        ("`GET /api/v1/forecast`, the whole org", ""),
        ("`GET /api/v1/forecast?department=2`, one department", "?department=2"),
        ("`GET /api/v1/forecast?owner=rep1_1`, one rep", "?owner=rep1_1"),
    ] {
        let (fast, median, answer) = time(rounds, || get(query)).await;
        results.push((what.to_owned(), fast, median));
        if query.is_empty() {
            assert!(answer["forecast"]["open_deals"].as_u64().unwrap_or(0) > 0, "{answer}");
        }
    }
    let leader = Viewer::of(&db, &s.config, "lead1")
        .await
        .expect("the leader")
        .expect("lead1 leads a department");
    let (fast, median, d) = time(rounds, || async {
        dashboard::build(&db, &s.config, &leader, now, s.tz())
            .await
            .expect("the dashboard")
    })
    .await;
    assert!(!d.reps.is_empty());
    results.push(("the dashboard's figures, a department leader".to_owned(), fast, median));
    let (fast, median, _) = time(rounds, || async {
        dashboard::build(&db, &s.config, &Viewer::Admin, now, s.tz())
            .await
            .expect("the dashboard")
    })
    .await;
    results.push(("the dashboard's figures, the whole org".to_owned(), fast, median));
    // The whole page as a signed-in browser gets it: session, figures, SVG and HTML.
    let sealer = wecom_scrm::web::session::load_key(&db, &s.config.web, now)
        .await
        .expect("the web key");
    for (who, what) in [
        ("lead1", "`GET /web/dashboard`, a department leader"),
        ("boss", "`GET /web/dashboard`, the whole org"),
    ] {
        let session = wecom_scrm::web::session::Session::new(who.into(), now / 1000, 3600).seal(&sealer);
        let url = format!("http://{}/web/dashboard", app_addr);
        let (fast, median, page) = time(rounds, || {
            let (http, url, session) = (http.clone(), url.clone(), session.clone());
            async move {
                let response = http
                    .get(url)
                    .header("cookie", format!("scrm_session={session}"))
                    .send()
                    .await
                    .expect("the dashboard answers");
                assert!(response.status().is_success(), "{}", response.status());
                response.text().await.expect("the page")
            }
        })
        .await;
        assert!(page.contains("<svg"), "the charts are drawn");
        results.push((what.to_owned(), fast, median));
    }
    println!();
    println!("| backend | reps | deals | follow-ups | what | fastest | median of {rounds} |");
    println!("|---|---|---|---|---|---|---|");
    let backend = bench_db.backend();
    for (what, fast, median) in results {
        println!(
            "| {backend} | {reps} | {deals} | {follow_ups} | {what} | {} | {} |",
            ms(fast),
            ms(median)
        );
    }
    served.abort();
    bench_db.cleanup(&db).await;
}
