//! Test harness: starts the real app on a random port against a fresh database (a temp SQLite file,
//! or a fresh PostgreSQL schema when `SCRM_TEST_DATABASE_URL` is set) and a fresh cache key prefix
//! (in-process, or Redis when `SCRM_TEST_REDIS_URL` is set), and speaks to it as WeCom does.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};
use wecom_scrm::db::entity::inbox::InboxStatus;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryOrder, Statement};
use secrecy::SecretString;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wecom_scrm::app::{App, StartError};
use wecom_scrm::cache::Cache;
use wecom_scrm::config::Config;
use wecom_scrm::db::entity::inbox;
use wecom_scrm::inbox::{InboxHandler, UnhandledKinds};
use wecom_scrm::wecom::api::types::{Department, ExternalContact, ExternalContactDetail, FollowUser};
use wecom_scrm::wecom::crypto::{SealedCallback, WecomCrypto};
use wecom_scrm::wecom::fake::fixture::FixtureMember;
use wecom_scrm::wecom::fake::{FakeWecom, Fixture};

pub const CORP_ID: &str = "ww1436e0e65a779aee";
pub const TOKEN: &str = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo";
pub const AES_KEY: &str = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt";
pub const AGENT_ID: i64 = 1000002;

static INIT: LazyLock<()> = LazyLock::new(|| {
    wecom_scrm::install_crypto_provider();
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info,sqlx=warn")
            .with_test_writer()
            .try_init();
    }
});

/// One-time process set-up: TLS provider, and test logging when `TEST_LOG` is set.
pub fn init_test_process() {
    LazyLock::force(&INIT);
}

/// An HTTP client for talking to the app (process set-up done first).
pub fn http_client() -> reqwest::Client {
    init_test_process();
    reqwest::Client::new()
}

fn unique_suffix() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}_{}_{:04x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        rand::random::<u16>()
    )
}

/// A database of one test's own: a temp SQLite file, or a PostgreSQL schema dropped at the end.
pub struct TestDb {
    pub url: String,
    pub schema: String,
    _dir: Option<tempfile::TempDir>,
    /// Only the owner drops the schema at the end.
    owned: bool,
}

impl TestDb {
    pub fn new() -> Self {
        match std::env::var("SCRM_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) {
            Some(url) => Self {
                url,
                schema: format!("t_{}", unique_suffix()),
                _dir: None,
                owned: true,
            },
            None => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}/test.db?mode=rwc", dir.path().display());
                Self {
                    url,
                    schema: String::new(),
                    _dir: Some(dir),
                    owned: true,
                }
            }
        }
    }

    /// Like [`TestDb::new`], but a SQLite file goes on a memory file system when there is one:
    /// for tests that commit thousands of times and prove logic, not durability.
    pub fn scratch() -> Self {
        let mut db = Self::new();
        if !db.is_postgres() && std::path::Path::new("/dev/shm").is_dir() {
            let dir = tempfile::tempdir_in("/dev/shm").expect("temp dir in /dev/shm");
            db.url = format!("sqlite://{}/test.db?mode=rwc", dir.path().display());
            db._dir = Some(dir);
        }
        db
    }

    /// A fresh schema on a PostgreSQL server of the test's own, which goes away with its data.
    pub fn on_server(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            schema: format!("t_{}", unique_suffix()),
            _dir: None,
            owned: false,
        }
    }

    pub fn is_postgres(&self) -> bool {
        !self.schema.is_empty()
    }

    /// The same database for a second instance; the original keeps ownership (and cleans up).
    pub fn share(&self) -> Self {
        Self {
            url: self.url.clone(),
            schema: self.schema.clone(),
            _dir: None,
            owned: false,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if !self.is_postgres() || !self.owned {
            return;
        }
        let (url, schema) = (self.url.clone(), self.schema.clone());
        // Drop runs outside any runtime we could borrow; a short-lived one does the cleanup.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                // One connection, so that the session setting below applies to the drop.
                let mut options = sea_orm::ConnectOptions::new(url);
                options.max_connections(1).min_connections(1);
                let db = sea_orm::Database::connect(options).await.ok()?;
                let run = |sql: String| db.execute_raw(Statement::from_string(DbBackend::Postgres, sql));
                // This blocks the test's runtime: an app stopped in the middle of a transaction
                // cannot roll it back meanwhile, and its locks would hold the drop forever. Wait
                // a little, then end sessions stuck idle in a transaction and drop again.
                run("SET lock_timeout = '3s'".into()).await.ok()?;
                let drop = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
                if run(drop.clone()).await.is_ok() {
                    return Some(());
                }
                run(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() \
                     AND state = 'idle in transaction' AND state_change < now() - interval '2 seconds'"
                        .into(),
                )
                .await
                .ok()?;
                run(drop).await.ok().map(|_| ())
            })
        })
        .join();
    }
}

pub fn redis_url() -> String {
    std::env::var("SCRM_TEST_REDIS_URL").unwrap_or_default()
}

/// A configuration for one test: its own database and cache prefix, the test WeCom credentials.
pub fn test_config(db: &TestDb) -> Config {
    let mut config = Config::default();
    config.server.addr = "127.0.0.1:0".into();
    config.server.shutdown_grace_secs = 5;
    config.database.url = SecretString::from(db.url.clone());
    config.database.schema = db.schema.clone();
    config.database.max_connections = 5;
    config.redis.url = SecretString::from(redis_url());
    config.redis.key_prefix = format!("test:{}:", unique_suffix());
    config.wecom.corp_id = CORP_ID.into();
    config.wecom.agent_id = AGENT_ID;
    config.wecom.secret = SecretString::from("test-app-secret");
    config.wecom.token = SecretString::from(TOKEN);
    config.wecom.encoding_aes_key = SecretString::from(AES_KEY);
    config.wecom.api_base = "http://127.0.0.1:9".into();
    config.inbox.poll_interval_ms = 200;
    config.inbox.retry_base_ms = 50;
    config.outbox.poll_interval_ms = 200;
    config.outbox.retry_base_ms = 50;
    // Answers that miss their response go out at once; the gathering has a test of its own.
    config.outbox.answer_gather_ms = 0;
    config.wecom.retry_base_ms = 10;
    // Tests that exercise the schedule or reminder pushes turn them on.
    config.jobs.enabled = false;
    config.jobs.push_reminders = false;
    config
}

/// A small org for customer tests: 测试公司 (boss) with 销售一部 (lead1: rep1, rep2) and 销售二部
/// (lead2: rep3); customers wmC1 (张伟, 华为; rep1), wmC2 (刘洋; rep1 and rep2), wmC3 (陈静; rep3).
pub fn test_fixture() -> Fixture {
    let mut f = Fixture::empty(CORP_ID, AGENT_ID, "test-app-secret", TOKEN, AES_KEY);
    let dept = |id: i64, name: &str, parent: i64, leader: &str| Department {
        id,
        name: name.into(),
        parentid: parent,
        department_leader: vec![leader.into()],
        ..Default::default()
    };
    f.departments = vec![
        dept(1, "测试公司", 0, "boss"),
        dept(2, "销售一部", 1, "lead1"),
        dept(3, "销售二部", 1, "lead2"),
    ];
    let member = FixtureMember::new;
    f.members = vec![
        member("boss", "王总", 1, true),
        member("lead1", "李经理", 2, true),
        member("rep1", "张三", 2, false),
        member("rep2", "李四", 2, false),
        member("lead2", "赵经理", 3, true),
        member("rep3", "王五", 3, false),
    ];
    f.external_contacts = vec![
        contact("wmC1", "张伟", "华为", &[("rep1", "张总-华为采购 13800000001", "expo")]),
        contact("wmC2", "刘洋", "", &[("rep1", "刘先生", ""), ("rep2", "刘哥", "")]),
        contact("wmC3", "陈静", "阿里巴巴", &[("rep3", "陈经理", "website")]),
    ];
    f
}

/// An external contact followed by (member, remark, state) relations.
pub fn contact(external_userid: &str, name: &str, corp: &str, follows: &[(&str, &str, &str)]) -> ExternalContactDetail {
    ExternalContactDetail {
        external_contact: ExternalContact {
            external_userid: external_userid.into(),
            name: name.into(),
            contact_type: if corp.is_empty() { 1 } else { 2 },
            corp_name: corp.into(),
            ..Default::default()
        },
        follow_user: follows
            .iter()
            .map(|(userid, remark, state)| FollowUser {
                userid: (*userid).into(),
                remark: (*remark).into(),
                state: (*state).into(),
                createtime: 1_790_000_000,
                ..Default::default()
            })
            .collect(),
    }
}

/// A cache for one test on the configured backend, under its own prefix.
pub async fn test_cache() -> Cache {
    let db = TestDb::new();
    let config = test_config(&db);
    Cache::connect(&config.redis).await.expect("test cache")
}

pub fn crypto() -> WecomCrypto {
    WecomCrypto::new(SecretString::from(TOKEN), AES_KEY, CORP_ID).unwrap()
}

pub fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Unique message ids across tests sharing a database server.
pub fn next_msg_id() -> u64 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    (u64::from(rand::random::<u32>()) << 24) | u64::from(NEXT.fetch_add(1, Ordering::Relaxed))
}

pub struct TestApp {
    pub base_url: String,
    pub client: reqwest::Client,
    /// A connection of the test's own, for assertions.
    pub db: DatabaseConnection,
    /// The app's own pool (to simulate its database going away).
    pub app_db: DatabaseConnection,
    pub config: Config,
    pub crypto: WecomCrypto,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), StartError>>>,
    pub test_db: TestDb,
    /// The fake WeCom the app talks to, when started with one.
    pub fake: Option<FakeWecom>,
    services: Option<Arc<wecom_scrm::services::Services>>,
}

/// The real app against the fake serving [`test_fixture`], with the org and every customer
/// imported (as the first start does).
pub async fn spawn_imported(configure: impl FnOnce(&mut Config)) -> TestApp {
    let app = TestApp::spawn_with_fake(test_fixture(), configure).await;
    let s = app.services();
    let actor = wecom_scrm::crm::audit::Actor::Sync;
    wecom_scrm::sync::sync_org(&s, &actor, &mut |_| {}).await.unwrap();
    wecom_scrm::sync::sync_customers(&s, &mut |_| {}).await.unwrap();
    app
}

/// A reminder `owner` sets for themselves (on `customer`, when given), due at `due_at`.
pub async fn remind(
    app: &TestApp,
    owner: &str,
    customer: Option<i64>,
    text: &str,
    due_at: i64,
) -> wecom_scrm::db::entity::reminder::Model {
    let actor = wecom_scrm::crm::audit::Actor::Member(owner.into());
    let now = wecom_scrm::db::now_ms();
    wecom_scrm::crm::reminders::create(&app.db, owner, &actor, customer, text, due_at, "manual", now)
        .await
        .unwrap()
}

/// A reminder as stored now.
pub async fn reminder(app: &TestApp, id: i64) -> wecom_scrm::db::entity::reminder::Model {
    use sea_orm::EntityTrait;
    wecom_scrm::db::entity::reminder::Entity::find_by_id(id)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}, Arc::new(UnhandledKinds)).await
    }

    pub async fn spawn_with(configure: impl FnOnce(&mut Config), handler: Arc<dyn InboxHandler>) -> Self {
        let test_db = TestDb::new();
        let mut config = test_config(&test_db);
        configure(&mut config);
        Self::start(test_db, config, handler).await
    }

    /// The real app (its event handler included) against a fake WeCom serving `fixture`.
    pub async fn spawn_with_fake(fixture: Fixture, configure: impl FnOnce(&mut Config)) -> Self {
        init_test_process();
        let fake = FakeWecom::start_local(fixture).await.expect("fake WeCom starts");
        let test_db = TestDb::new();
        let mut config = test_config(&test_db);
        config.wecom.api_base = fake.url();
        config.wecom.oauth_base = fake.url();
        config.web.jssdk_url = fake.jssdk_url();
        configure(&mut config);
        let mut app = Self::launch(test_db, config, None).await;
        app.fake = Some(fake);
        app
    }

    pub fn fake(&self) -> &FakeWecom {
        self.fake.as_ref().expect("started with a fake WeCom")
    }

    /// Starts the app on an existing test database (e.g. a second instance, or a restart).
    pub async fn start(test_db: TestDb, config: Config, handler: Arc<dyn InboxHandler>) -> Self {
        Self::launch(test_db, config, Some(handler)).await
    }

    /// Starts the real app (event handler included) on an existing test database.
    pub async fn start_real(test_db: TestDb, config: Config) -> Self {
        Self::launch(test_db, config, None).await
    }

    async fn launch(test_db: TestDb, config: Config, handler: Option<Arc<dyn InboxHandler>>) -> Self {
        LazyLock::force(&INIT);
        let app = match handler {
            Some(handler) => App::build_with_handler(config.clone(), handler).await,
            None => App::build(config.clone()).await,
        }
        .expect("app starts");
        let base_url = format!("http://{}", app.local_addr());
        let app_db = app.state().db.clone();
        let services = Some(app.state().services.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(app.run(async move {
            let _ = rx.await;
        }));
        let db = wecom_scrm::db::connect(&config.database)
            .await
            .expect("test connection");
        Self {
            base_url,
            client: http_client(),
            db,
            app_db,
            config,
            crypto: crypto(),
            shutdown: Some(tx),
            handle: Some(handle),
            test_db,
            fake: None,
            services,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Stops the app gracefully and returns its database for reuse.
    pub async fn stop(mut self) -> (TestDb, Config) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(15), handle)
                .await
                .expect("app stops in time")
                .expect("app task")
                .expect("app ran cleanly");
        }
        let config = self.config.clone();
        let test_db = std::mem::replace(
            &mut self.test_db,
            TestDb {
                url: String::new(),
                schema: String::new(),
                _dir: None,
                owned: false,
            },
        );
        (test_db, config)
    }

    pub fn seal(&self, inner_xml: &str) -> SealedCallback {
        self.crypto.seal_callback(
            inner_xml,
            &AGENT_ID.to_string(),
            &now_secs().to_string(),
            &rand::random::<u32>().to_string(),
        )
    }

    pub async fn post_sealed(&self, sealed: &SealedCallback) -> reqwest::Response {
        self.client
            .post(self.url("/wecom/callback"))
            .query(&[
                ("msg_signature", sealed.msg_signature.as_str()),
                ("timestamp", sealed.timestamp.as_str()),
                ("nonce", sealed.nonce.as_str()),
            ])
            .body(sealed.body.clone())
            .send()
            .await
            .expect("request sent")
    }

    /// Encrypts, signs and posts an inner message as WeCom would.
    pub async fn post_callback(&self, inner_xml: &str) -> reqwest::Response {
        self.post_sealed(&self.seal(inner_xml)).await
    }

    pub async fn inbox_rows(&self) -> Vec<inbox::Model> {
        inbox::Entity::find()
            .order_by_asc(inbox::Column::Id)
            .all(&self.db)
            .await
            .expect("inbox rows")
    }

    /// Has the fake WeCom send `inner_xml` to the app, as WeCom does, and waits until it is handled.
    pub async fn deliver(&self, inner_xml: &str) -> inbox::Model {
        let answer = self
            .fake()
            .send_callback(&self.url("/wecom/callback"), inner_xml)
            .await
            .expect("callback sent");
        assert_eq!(answer.status, 200, "{}", answer.body);
        let rows = self.wait_until_settled(Duration::from_secs(10)).await;
        let key = wecom_scrm::wecom::callback::parse_callback(inner_xml)
            .unwrap()
            .dedupe_key;
        rows.into_iter()
            .find(|r| r.dedupe_key == key)
            .expect("the callback's row")
    }

    /// `userid` sends `text` to the app through the fake WeCom; returns the bot's answer, whether it
    /// came back in the response (passive) or later through the message API.
    pub async fn say(&self, userid: &str, text: &str) -> String {
        let inner =
            wecom_scrm::wecom::compose::text_message(CORP_ID, userid, text, next_msg_id(), AGENT_ID, now_secs());
        self.say_raw(userid, &inner)
            .await
            .unwrap_or_else(|| panic!("no answer to {text:?}"))
    }

    /// Sends a prepared text message; the answer, or `None` when the service answered nothing.
    pub async fn say_raw(&self, userid: &str, inner_xml: &str) -> Option<String> {
        let before = self.fake().messages_to(userid).len();
        let answer = self
            .fake()
            .send_callback(&self.url("/wecom/callback"), inner_xml)
            .await
            .expect("callback sent");
        assert_eq!(answer.status, 200, "{}", answer.body);
        if let Some(reply) = answer.reply {
            let fields = wecom_scrm::wecom::xml::parse_fields(&reply).expect("reply XML");
            assert_eq!(fields.get("ToUserName"), Some(userid));
            assert_eq!(fields.get("MsgType"), Some("text"));
            return fields.get("Content").map(str::to_owned);
        }
        self.wait_until_settled(Duration::from_secs(10)).await;
        if self.config.outbox.send {
            self.wait_for_notifications().await;
        } else {
            // The test drives the sender: the answer goes out now.
            self.services()
                .notifier
                .deliver_due(&Default::default())
                .await
                .expect("outbox delivery");
        }
        let after = self.fake().messages_to(userid);
        after.get(before).map(|m| m.body.display_text())
    }

    /// Waits (bounded) until the outbox has nothing left to send.
    pub async fn wait_for_notifications(&self) {
        use wecom_scrm::db::entity::outbox;
        wait_for(Duration::from_secs(10), || async {
            let pending = outbox::Entity::find().all(&self.db).await.unwrap();
            pending.iter().all(|m| !m.status.is_live()).then_some(())
        })
        .await
        .expect("notifications delivered in time");
    }

    /// Runs everything that happens in the background until nothing is left to do — the inbox
    /// worker (stored callbacks), the reminder dispatcher and the outbox sender — for apps started
    /// with `inbox.process`, `jobs.push_reminders` and `outbox.send` off, so that the test decides
    /// when work happens instead of waiting for it. Returns how many rows and messages were handled.
    pub async fn settle(&self) -> usize {
        let s = self.services();
        let worker = wecom_scrm::inbox::InboxWorker::new(
            self.app_db.clone(),
            self.config.inbox_worker(),
            Arc::new(wecom_scrm::events::EventHandler::new(s.clone())),
            Arc::new(tokio::sync::Notify::new()),
            "test-driver".into(),
            s.answers.clone(),
        );
        let mut handled = 0;
        for _ in 0..100 {
            let rows = worker.drain(&Default::default()).await.expect("inbox worker");
            let messages = self.drive_deliveries().await;
            handled += rows + messages;
            if rows == 0 && messages == 0 {
                return handled;
            }
        }
        panic!("the background work did not come to rest after 100 rounds")
    }

    /// Runs this instance's reminder dispatcher (sweep included) and outbox sender until neither
    /// finds anything due — for apps started with `jobs.push_reminders` and `outbox.send` off, so
    /// that the test decides when deliveries happen. Returns how many messages were handled.
    pub async fn drive_deliveries(&self) -> usize {
        let s = self.services();
        let dispatcher = wecom_scrm::jobs::reminder_push::Dispatcher::new(s.clone(), "test-driver".into());
        let mut handled = 0;
        for _ in 0..100 {
            let queued = dispatcher.round().await.expect("dispatcher round");
            let sent = s
                .notifier
                .deliver_due(&Default::default())
                .await
                .expect("outbox delivery");
            handled += sent;
            if queued == 0 && sent == 0 {
                return handled;
            }
        }
        panic!("deliveries did not come to rest after 100 rounds")
    }

    /// The services (database, WeCom client, notifier) the app runs with, for calling jobs directly.
    pub fn services(&self) -> Arc<wecom_scrm::services::Services> {
        self.services.clone().expect("services")
    }

    /// Waits (bounded) until every inbox row has left pending/processing; returns the rows.
    pub async fn wait_until_settled(&self, limit: Duration) -> Vec<inbox::Model> {
        let unsettled = |r: &inbox::Model| r.status == InboxStatus::Pending || r.status == InboxStatus::Processing;
        let settled = wait_for(limit, || async {
            let rows = self.inbox_rows().await;
            (!rows.iter().any(unsettled)).then_some(rows)
        })
        .await;
        if let Some(rows) = settled {
            return rows;
        }
        let left: Vec<_> = self
            .inbox_rows()
            .await
            .into_iter()
            .filter(unsettled)
            .map(|r| {
                (
                    r.id,
                    r.status,
                    r.attempts,
                    r.locked_until,
                    r.next_attempt_at,
                    r.last_error,
                )
            })
            .collect();
        panic!("inbox did not settle within {limit:?}; left: {left:?}")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Polls `check` until it yields a value or `limit` passes.
pub async fn wait_for<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub const BIN: &str = env!("CARGO_BIN_EXE_wecom-scrm");

/// The binary with this test's database and cache, run from an empty directory so nothing but the
/// environment configures it.
pub fn binary_command(db: &TestDb, dir: &tempfile::TempDir) -> std::process::Command {
    let mut cmd = std::process::Command::new(BIN);
    cmd.current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SCRM_DATABASE__URL", &db.url)
        .env("SCRM_DATABASE__SCHEMA", &db.schema)
        .env("SCRM_REDIS__URL", redis_url())
        .env("SCRM_REDIS__KEY_PREFIX", format!("test:cli:{}:", rand::random::<u32>()))
        .env("SCRM_WECOM__CORP_ID", CORP_ID)
        .env("SCRM_WECOM__AGENT_ID", AGENT_ID.to_string())
        .env("SCRM_WECOM__SECRET", "test-app-secret")
        .env("SCRM_WECOM__TOKEN", TOKEN)
        .env("SCRM_WECOM__ENCODING_AES_KEY", AES_KEY)
        .env("SCRM_SERVER__ADDR", "127.0.0.1:0")
        .env("SCRM_LOG__FORMAT", "json")
        // No WeCom to talk to unless a test provides one.
        .env("SCRM_JOBS__ENABLED", "false");
    cmd
}

/// The real binary running in the background, its output collected line by line.
pub struct Running {
    child: std::process::Child,
    stdout: Arc<std::sync::Mutex<Vec<String>>>,
    stderr: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Running {
    pub fn spawn(cmd: &mut std::process::Command) -> Self {
        use std::io::{BufRead, BufReader};
        use std::process::Stdio;
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("binary starts");
        let collect = |pipe: Box<dyn std::io::Read + Send>| {
            let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
            let sink = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    sink.lock().unwrap().push(line);
                }
            });
            lines
        };
        let stdout = collect(Box::new(child.stdout.take().unwrap()));
        let stderr = collect(Box::new(child.stderr.take().unwrap()));
        Self { child, stdout, stderr }
    }

    fn wait_for(
        &self,
        lines: &Arc<std::sync::Mutex<Vec<String>>>,
        what: &str,
        matches: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(line) = lines.lock().unwrap().iter().find(|l| matches(l)) {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no {what} line matched; stdout: {:#?}\nstderr: {:#?}",
                self.stdout.lock().unwrap(),
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn wait_for_stdout(&self, matches: impl Fn(&str) -> bool) -> String {
        self.wait_for(&self.stdout, "stdout", matches)
    }

    pub fn wait_for_stderr(&self, matches: impl Fn(&str) -> bool) -> String {
        self.wait_for(&self.stderr, "stderr", matches)
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().join("\n")
    }

    /// Sends SIGTERM and waits (bounded) for the exit code.
    pub fn terminate(&mut self) -> i32 {
        let pid = self.child.id().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "the process did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The customer stored for a WeCom external contact.
pub async fn customer_by_external(app: &TestApp, external: &str) -> wecom_scrm::db::entity::customer::Model {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    use wecom_scrm::db::entity::customer;
    customer::Entity::find()
        .filter(customer::Column::ExternalUserid.eq(external))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("customer {external} exists"))
}

/// The id of the customer stored for a WeCom external contact.
pub async fn customer_id(app: &TestApp, external: &str) -> i64 {
    customer_by_external(app, external).await.id
}

/// The text of every message the fake WeCom delivered to `userid`, in order.
pub fn texts_to(app: &TestApp, userid: &str) -> Vec<String> {
    app.fake()
        .messages_to(userid)
        .iter()
        .map(|m| m.body.display_text())
        .collect()
}

/// An `add_external_contact` callback, as WeCom sends it when a customer adds `user`.
pub fn add_event(user: &str, external: &str, state: Option<&str>, welcome_code: Option<&str>) -> String {
    let extras = wecom_scrm::wecom::compose::ExternalContactExtras {
        state,
        welcome_code,
        ..Default::default()
    };
    wecom_scrm::wecom::compose::external_contact_event(
        CORP_ID,
        "add_external_contact",
        user,
        external,
        &extras,
        now_secs(),
    )
}

/// Any other external-contact change (`del_follow_user`, `edit_external_contact`, …).
pub fn contact_event(change: &str, user: &str, external: &str) -> String {
    wecom_scrm::wecom::compose::external_contact_event(CORP_ID, change, user, external, &Default::default(), now_secs())
}

/// Encrypts raw frame bytes (already padded by the caller) with the test key, as base64.
pub fn encrypt_frame(frame: &[u8]) -> String {
    use base64::Engine as _;
    use cbc::cipher::block_padding::NoPadding;
    use cbc::cipher::{BlockModeEncrypt, KeyIvInit};
    let key = wecom_scrm::wecom::crypto::decode_aes_key(AES_KEY).unwrap();
    let mut buf = frame.to_vec();
    let len = buf.len();
    let cipher = cbc::Encryptor::<aes::Aes256>::new_from_slices(&key, &key[..16])
        .unwrap()
        .encrypt_padded::<NoPadding>(&mut buf, len)
        .unwrap()
        .to_vec();
    base64::engine::general_purpose::STANDARD.encode(cipher)
}

/// `random(16) || u32_be(declared_len) || msg || corp_id`, then `pad` bytes of value `pad_value`.
pub fn frame(msg: &[u8], declared_len: u32, pad: usize, pad_value: u8) -> Vec<u8> {
    let mut f = b"0123456789abcdef".to_vec();
    f.extend_from_slice(&declared_len.to_be_bytes());
    f.extend_from_slice(msg);
    f.extend_from_slice(CORP_ID.as_bytes());
    f.extend(std::iter::repeat_n(pad_value, pad));
    f
}
