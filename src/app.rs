//! Start-up and shutdown. [`App::build`] validates the configuration, connects the database (and
//! migrates it), connects the cache, binds the listener and starts the inbox writer; [`App::run`]
//! serves until the shutdown future resolves, then finishes in-flight requests and stops the worker
//! after its current row. Binding before running lets tests use port 0 and read the real address.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::bot::session::Sessions;
use crate::cache::{Cache, CacheError};
use crate::clock::Clock;
use crate::config::{Config, ConfigError, Needs};
use crate::crm::channels;
use crate::db::{self, DbSetupError};
use crate::events::EventHandler;
use crate::http::{self, AppContext, AppState};
use crate::inbox::{InboxHandler, InboxWorker, InboxWriter};
use crate::jobs::reminder_push::{Dispatcher, ReminderDeliveries};
use crate::metrics::Metrics;
use crate::services::{Parts, Services};
use crate::web::WebContext;
use crate::wecom::crypto::WecomCrypto;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Database(#[from] DbSetupError),
    #[error("{0} (check redis.url / SCRM_REDIS__URL, or leave it empty for the in-process cache)")]
    Cache(#[from] CacheError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("server error: {0}")]
    Serve(std::io::Error),
}

pub struct App {
    listener: TcpListener,
    state: AppState,
    worker: InboxWorker,
    writer_task: JoinHandle<()>,
    grace: Duration,
    services: Arc<Services>,
    web: Arc<WebContext>,
}

impl App {
    /// Builds the service: callbacks are handled by the [`EventHandler`].
    pub async fn build(config: Config) -> Result<Self, StartError> {
        Self::build_inner(config, None).await
    }

    /// Builds the service with another inbox handler (tests of the inbox itself).
    pub async fn build_with_handler(config: Config, handler: Arc<dyn InboxHandler>) -> Result<Self, StartError> {
        Self::build_inner(config, Some(handler)).await
    }

    async fn build_inner(config: Config, handler: Option<Arc<dyn InboxHandler>>) -> Result<Self, StartError> {
        crate::install_crypto_provider();
        config.validate(Needs::Service)?;
        let crypto = WecomCrypto::from_settings(&config.wecom)?;
        let addr = config.server_addr()?;

        let (db, applied) = db::connect_migrated(&config.database, config.database.auto_migrate).await?;
        if applied > 0 {
            tracing::info!(applied, "database migrations applied");
        }
        let now = db::now_ms();
        for seed in &config.channels {
            channels::upsert(
                &db,
                seed.state.trim(),
                &seed.name,
                seed.welcome.as_deref(),
                seed.plan.as_deref(),
                seed.assign.as_ref().map(|a| a.to_text()).as_deref(),
                now,
            )
            .await
            .map_err(|e| StartError::Database(DbSetupError::Migrate(e)))?;
        }
        if let Some(made) = crate::crm::pipeline::backfill_once(&db, &config, now)
            .await
            .map_err(|e| StartError::Database(DbSetupError::Migrate(e)))?
        {
            tracing::info!(made, "customers' stages became deals");
        }
        if let Some(days) = crate::crm::activity::rebuild_once(&db, config.org.tz())
            .await
            .map_err(|e| StartError::Database(DbSetupError::Migrate(e)))?
        {
            tracing::info!(days, "follow-ups counted per member and day");
        }
        let cache = Cache::connect(&config.redis).await?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;

        let instance = instance_id();
        let config = Arc::new(config);
        let services = build_services(config.clone(), db.clone(), cache.clone(), instance.clone());
        let answers = services.answers.clone();
        let handler = handler.unwrap_or_else(|| Arc::new(EventHandler::new(services.clone())));

        let stored = Arc::new(Notify::new());
        let (inbox, writer_task) = InboxWriter::spawn(db.clone(), config.inbox.write_batch, stored.clone());
        let worker = InboxWorker::new(db.clone(), config.inbox_worker(), handler, stored, instance, answers)
            .with_lanes_gauge(services.metrics.inbox_lanes_in_flight.clone());
        let grace = config.shutdown_grace();
        let web = WebContext::build(&db, &config, now)
            .await
            .map_err(|e| StartError::Database(DbSetupError::Migrate(e)))?;
        let state = AppState::new(AppContext {
            config,
            db,
            cache,
            crypto,
            inbox,
            services: services.clone(),
        });
        Ok(Self {
            listener,
            state,
            worker,
            writer_task,
            grace,
            services,
            web: Arc::new(web),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then drains: in-flight requests finish (bounded by
    /// `server.shutdown_grace_secs`), the worker completes its current row, and every stored
    /// callback is committed before this returns.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), StartError> {
        let Self {
            listener,
            state,
            worker,
            writer_task,
            grace,
            services,
            web,
        } = self;
        let addr = listener.local_addr().map_err(StartError::Serve)?;
        let config = state.config.clone();
        tracing::info!(
            %addr,
            database = %crate::config::redact_url(secrecy::ExposeSecret::expose_secret(&config.database.url)),
            cache = %state.cache.backend_name(),
            "wecom-scrm listening"
        );

        let stop = CancellationToken::new();
        if !config.inbox.process {
            tracing::info!("inbox.process = false: callbacks are stored here and processed by other instances");
        }
        let worker_task = config
            .inbox
            .process
            .then(|| tokio::spawn(worker.run(stop.child_token())));
        let notifier_task = config
            .outbox
            .send
            .then(|| tokio::spawn(services.notifier.clone().run(stop.child_token())));
        let mut job_tasks = if config.jobs.enabled {
            crate::jobs::scheduler::spawn(services.clone(), stop.child_token())
        } else {
            Vec::new()
        };
        let dispatcher_task = config.jobs.push_reminders.then(|| {
            let dispatcher = Dispatcher::new(services.clone(), instance_id());
            tokio::spawn(dispatcher.run(stop.child_token()))
        });
        let signalled = stop.clone();
        let router = http::router(state, crate::web::router(web));
        let server = axum::serve(listener, router).with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
            signalled.cancel();
        });
        let deadline = {
            let stop = stop.clone();
            async move {
                stop.cancelled().await;
                tokio::time::sleep(grace).await;
            }
        };
        let served = tokio::select! {
            result = server => result.map_err(StartError::Serve),
            () = deadline => {
                tracing::warn!(grace_secs = grace.as_secs(), "requests still running after the grace period; stopping anyway");
                Ok(())
            }
        };
        stop.cancel();
        // The router (and with it every writer handle) is gone now, so the writer drains its queue
        // and ends.
        if tokio::time::timeout(grace, writer_task).await.is_err() {
            tracing::warn!("inbox writer did not finish within the grace period");
        }
        if let Some(task) = worker_task
            && tokio::time::timeout(grace, task).await.is_err()
        {
            tracing::warn!("inbox worker did not finish its current row within the grace period");
        }
        if let Some(task) = notifier_task
            && tokio::time::timeout(grace, task).await.is_err()
        {
            tracing::warn!("notification sender did not finish within the grace period");
        }
        if let Some(task) = dispatcher_task
            && tokio::time::timeout(grace, task).await.is_err()
        {
            tracing::warn!("reminder dispatcher did not finish within the grace period");
        }
        for task in job_tasks.drain(..) {
            // A long sync is safe to stop anywhere: it resumes from its last committed page.
            task.abort();
        }
        tracing::info!("stopped");
        served
    }
}

/// The services a command-line tool works with (no HTTP listener): database (migrated), cache,
/// WeCom client and notification sender.
pub async fn cli_services(config: Config) -> Result<Arc<Services>, StartError> {
    crate::install_crypto_provider();
    config.validate(Needs::Service)?;
    let (db, _) = db::connect_migrated(&config.database, config.database.auto_migrate).await?;
    let cache = Cache::connect(&config.redis).await?;
    Ok(build_services(Arc::new(config), db, cache, instance_id()))
}

/// The services of one process, as `serve` and the command line both run them: reminder pushes
/// settle with their messages, on the system clock.
pub fn build_services(config: Arc<Config>, db: DatabaseConnection, cache: Cache, instance: String) -> Arc<Services> {
    let metrics: Arc<Metrics> = Default::default();
    let sessions = Sessions::new(&cache, Services::session_idle(&config));
    let hooks = Arc::new(ReminderDeliveries::new(metrics.clone(), sessions));
    let parts = Parts {
        instance,
        hooks,
        metrics,
        clock: Clock::system(),
        wecom: None,
    };
    Arc::new(Services::build(config, db, cache, parts))
}

/// Identifies this process in row leases: host, pid and a random suffix (a restarted process with
/// the same pid is still a different holder).
pub fn instance_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().chars().take(32).collect::<String>())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    format!("{host}-{}-{:04x}", std::process::id(), rand::random::<u16>())
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
