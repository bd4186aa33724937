//! What the load benchmarks share: the backend they run on (chosen like the tests', by
//! environment), an org of a given size for the fake WeCom, and bulk seeding with one statement.

#![allow(dead_code)]

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use secrecy::SecretString;
use wecom_scrm::config::Config;
use wecom_scrm::wecom::api::types::Department;
use wecom_scrm::wecom::fake::fixture::FixtureMember;
use wecom_scrm::wecom::fake::{FakeWecom, Fixture};

pub const CORP_ID: &str = "wwbench0000000001";
pub const AGENT_ID: i64 = 1000002;
const TOKEN: &str = "benchTokenbenchTokenbenchToken12";
const AES_KEY: &str = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt";

/// The database a benchmark runs on: PostgreSQL (a fresh schema, dropped afterwards) when
/// `SCRM_BENCH_DATABASE_URL` is set, else a SQLite file in a temporary directory.
pub struct BenchDb {
    pub url: String,
    pub schema: String,
    _dir: Option<tempfile::TempDir>,
}

impl BenchDb {
    pub fn from_env() -> Self {
        match std::env::var("SCRM_BENCH_DATABASE_URL").ok().filter(|u| !u.is_empty()) {
            Some(url) => Self {
                url,
                schema: format!("bench_{}", rand::random::<u32>()),
                _dir: None,
            },
            None => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                Self {
                    url: format!("sqlite://{}/bench.db?mode=rwc", dir.path().display()),
                    schema: String::new(),
                    _dir: Some(dir),
                }
            }
        }
    }

    pub fn backend(&self) -> &'static str {
        if self.schema.is_empty() { "SQLite" } else { "PostgreSQL" }
    }

    /// Drops the PostgreSQL schema (the SQLite directory goes with `self`).
    pub async fn cleanup(&self, db: &DatabaseConnection) {
        if !self.schema.is_empty() {
            let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema);
            let _ = db.execute_raw(Statement::from_string(DbBackend::Postgres, sql)).await;
        }
    }
}

pub fn redis_url() -> String {
    std::env::var("SCRM_BENCH_REDIS_URL").unwrap_or_default()
}

/// A number from the environment, or the default.
pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// The configuration of one instance against `db`, the fake WeCom at `api_base` and the cache.
pub fn config(db: &BenchDb, api_base: &str, key_prefix: &str) -> Config {
    let mut config = Config::default();
    config.server.addr = "127.0.0.1:0".into();
    config.database.url = SecretString::from(db.url.clone());
    config.database.schema = db.schema.clone();
    config.redis.url = SecretString::from(redis_url());
    config.redis.key_prefix = key_prefix.to_owned();
    config.wecom.corp_id = CORP_ID.into();
    config.wecom.agent_id = AGENT_ID;
    config.wecom.secret = SecretString::from("bench-app-secret");
    config.wecom.token = SecretString::from(TOKEN);
    config.wecom.encoding_aes_key = SecretString::from(AES_KEY);
    config.wecom.api_base = api_base.to_owned();
    config.log.level = "warn".into();
    // Only what the benchmark measures runs.
    config.jobs.enabled = false;
    config.jobs.push_reminders = false;
    config
}

/// Runs a benchmark's body on a multi-threaded runtime, as `serve` does.
pub fn run_bench<F: std::future::Future<Output = ()>>(body: F) {
    wecom_scrm::install_crypto_provider();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(body);
}

/// A fake WeCom serving [`org`], and a cache key prefix of the run's own.
pub async fn start_org(departments: u64, reps_per_department: u64) -> (FakeWecom, String) {
    start_fixture(org(departments, reps_per_department)).await
}

/// A fake WeCom serving `fixture`, and a cache key prefix of the run's own.
pub async fn start_fixture(fixture: Fixture) -> (FakeWecom, String) {
    let fake = FakeWecom::start_local(fixture).await.expect("the fake WeCom starts");
    (fake, format!("bench:{}:", rand::random::<u32>()))
}

/// An org: the company (led by `boss`) with `departments` sales departments, each led by
/// `lead{d}` with `reps_per_department` reps `rep{d}_{i}`.
pub fn org(departments: u64, reps_per_department: u64) -> Fixture {
    let mut f = Fixture::empty(CORP_ID, AGENT_ID, "bench-app-secret", TOKEN, AES_KEY);
    let department = |id: i64, name: String, parent: i64, leader: &str| Department {
        id,
        name,
        parentid: parent,
        department_leader: vec![leader.into()],
        ..Default::default()
    };
    let member = FixtureMember::new;
    f.departments.push(department(1, "公司".into(), 0, "boss"));
    f.members.push(member("boss".into(), "老板".into(), 1, true));
    for d in 1..=departments {
        let id = d as i64 + 1;
        let lead = format!("lead{d}");
        f.departments.push(department(id, format!("销售{d}部"), 1, &lead));
        f.members.push(member(lead.clone(), format!("经理{d}"), id, true));
        for i in 1..=reps_per_department {
            f.members
                .push(member(format!("rep{d}_{i}"), format!("销售{d}-{i}"), id, false));
        }
    }
    f
}

/// The reps of [`org`], in order.
pub fn reps(departments: u64, reps_per_department: u64) -> Vec<String> {
    (1..=departments)
        .flat_map(|d| (1..=reps_per_department).map(move |i| format!("rep{d}_{i}")))
        .collect()
}

/// `WITH RECURSIVE s(i) …` numbering 1..=n: one statement seeds n rows on either backend.
pub fn series(n: u64) -> String {
    // BIGINT: PostgreSQL would overflow 32-bit arithmetic on millisecond offsets.
    format!("WITH RECURSIVE s(i) AS (SELECT CAST(1 AS BIGINT) UNION ALL SELECT i + 1 FROM s WHERE i < {n})")
}

/// Runs one seeding statement, saying what it did and how long it took.
pub async fn seed(db: &DatabaseConnection, what: &str, sql: String) {
    let started = Instant::now();
    let done = db
        .execute_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap_or_else(|e| panic!("seeding {what}: {e}"));
    println!(
        "  seeded {} {what} in {:.1}s",
        done.rows_affected(),
        started.elapsed().as_secs_f64()
    );
}

/// `n` follow-ups over the 30 days before `now` (one a minute, round and round), the i-th on
/// customer `(i - 1) % customers + 1` by that customer's rep as [`rep_of`] spreads them.
pub async fn seed_follow_ups(
    db: &DatabaseConnection,
    n: u64,
    customers: u64,
    departments: u64,
    reps_per_department: u64,
    now: i64,
) {
    let author = rep_of(
        &format!("((i - 1) % {customers} + 1)"),
        departments,
        reps_per_department,
    );
    seed(
        db,
        "follow-ups",
        format!(
            "{} INSERT INTO follow_ups (customer_id, author_userid, content, created_at) \
             SELECT (i - 1) % {customers} + 1, {author}, '电话沟通，客户关心价格和交付周期', {now} - (i % 43200) * 60000 FROM s",
            series(n)
        ),
    )
    .await;
}

/// The default stages spread over seeded rows, row `i` in stage `i % 6`, as an SQL expression.
pub const STAGE_OF_ROW: &str = "CASE i % 6 WHEN 0 THEN '初步接触' WHEN 1 THEN '需求确认' WHEN 2 THEN '方案报价' \
                                WHEN 3 THEN '商务谈判' WHEN 4 THEN '赢单' ELSE '输单' END";

/// The fake WeCom serving [`org`] and the services on `bench_db`, with the org synced.
pub async fn synced_services(
    bench_db: &BenchDb,
    departments: u64,
    reps_per_department: u64,
) -> (FakeWecom, std::sync::Arc<wecom_scrm::services::Services>) {
    let (fake, prefix) = start_org(departments, reps_per_department).await;
    let s = wecom_scrm::app::cli_services(config(bench_db, &fake.url(), &prefix))
        .await
        .expect("the services start");
    wecom_scrm::sync::sync_org(&s, &wecom_scrm::crm::audit::Actor::Sync, &mut |_| {})
        .await
        .expect("the org syncs");
    (fake, s)
}

/// The userid for row number `i` (1-based) spread over `reps`, as an SQL expression.
pub fn rep_of(i: &str, departments: u64, reps_per_department: u64) -> String {
    let total = departments * reps_per_department;
    format!(
        "'rep' || ((({i} - 1) % {total}) / {reps_per_department} + 1) || '_' || ((({i} - 1) % {total}) % {reps_per_department} + 1)"
    )
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The service's configuration, as environment variables.
pub fn service_env(db: &BenchDb, api_base: &str, key_prefix: &str, port: u16) -> Vec<(String, String)> {
    let config = config(db, api_base, key_prefix);
    use secrecy::ExposeSecret as _;
    [
        ("SCRM_SERVER__ADDR", format!("127.0.0.1:{port}")),
        ("SCRM_DATABASE__URL", config.database.url.expose_secret().to_owned()),
        ("SCRM_DATABASE__SCHEMA", config.database.schema.clone()),
        ("SCRM_REDIS__URL", config.redis.url.expose_secret().to_owned()),
        ("SCRM_REDIS__KEY_PREFIX", config.redis.key_prefix.clone()),
        ("SCRM_WECOM__CORP_ID", config.wecom.corp_id.clone()),
        ("SCRM_WECOM__AGENT_ID", config.wecom.agent_id.to_string()),
        ("SCRM_WECOM__SECRET", config.wecom.secret.expose_secret().to_owned()),
        ("SCRM_WECOM__TOKEN", config.wecom.token.expose_secret().to_owned()),
        (
            "SCRM_WECOM__ENCODING_AES_KEY",
            config.wecom.encoding_aes_key.expose_secret().to_owned(),
        ),
        ("SCRM_WECOM__API_BASE", config.wecom.api_base.clone()),
        (
            "SCRM_LOG__LEVEL",
            std::env::var("BENCH_SERVICE_LOG").unwrap_or_else(|_| "warn".to_owned()),
        ),
        ("SCRM_JOBS__ENABLED", "false".to_owned()),
        (
            "SCRM_DATABASE__MAX_CONNECTIONS",
            std::env::var("BENCH_DB_CONNECTIONS").unwrap_or_else(|_| "10".to_owned()),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    // Any other setting for the service: `BENCH_SERVICE__BOT__REPLY_BUDGET_MS=500` is passed on as
    // `SCRM_BOT__REPLY_BUDGET_MS=500`.
    .chain(std::env::vars().filter_map(|(k, v)| Some((format!("SCRM_{}", k.strip_prefix("BENCH_SERVICE__")?), v))))
    .collect()
}

/// The release binary with exactly the given `SCRM_` settings (the benchmark's own `SCRM_BENCH_`
/// variables would be refused as unknown configuration keys).
/// The service under test. Stopped gracefully at the end of the run; killed if the benchmark stops
/// early (a panic), so that no instance outlives it.
pub struct ServiceProcess(pub Child);

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

pub fn service_command(subcommand: &str, env: &[(String, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wecom-scrm"));
    for (key, _) in std::env::vars() {
        if key.starts_with("SCRM_") {
            command.env_remove(key);
        }
    }
    command.arg(subcommand).envs(env.iter().cloned());
    command
}

/// The release binary serving with `env`, after a `sync` has imported the fake WeCom's org and
/// customers (as a first deployment does).
pub fn synced_service(env: &[(String, String)]) -> ServiceProcess {
    let synced = service_command("sync", env)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("wecom-scrm sync runs");
    assert!(synced.success(), "sync failed");
    ServiceProcess(
        service_command("serve", env)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("wecom-scrm serve starts"),
    )
}

/// What the benchmark runs on, e.g. `PostgreSQL + Redis`.
pub fn stack(db: &BenchDb) -> String {
    let cache = if redis_url().is_empty() {
        "in-process cache"
    } else {
        "Redis"
    };
    format!("{} + {cache}", db.backend())
}

pub async fn wait_ready(client: &reqwest::Client, base: &str, service: &mut Child) {
    for _ in 0..300 {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            return;
        }
        if let Ok(Some(status)) = service.try_wait() {
            panic!("the service exited at start-up: {status}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the service did not become ready in 30 s");
}

/// Runs `f` `rounds` times; the fastest and the median.
pub async fn time<F, Fut, T>(rounds: u64, mut f: F) -> (Duration, Duration, T)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..rounds.max(1) {
        let started = Instant::now();
        last = Some(f().await);
        times.push(started.elapsed());
    }
    times.sort();
    (times[0], times[times.len() / 2], last.expect("ran at least once"))
}

/// A duration in whole milliseconds, for the result tables.
pub fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}
