//! Database connection set-up for both backends and the migration entry point.

pub mod claim;
pub mod entity;
pub mod runs;

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};
use secrecy::ExposeSecret;

use crate::config::{DatabaseConfig, redact_url, sqlite_path};

#[derive(Debug, thiserror::Error)]
pub enum DbSetupError {
    #[error("cannot create the directory {path} for the SQLite database: {source}")]
    CreateDir { path: String, source: std::io::Error },
    #[error("cannot connect to the database at {url}: {source}")]
    Connect { url: String, source: DbErr },
    #[error("cannot prepare schema {schema}: {source}")]
    Schema { schema: String, source: DbErr },
    #[error("migrations failed: {0}")]
    Migrate(DbErr),
}

/// How long a pooled connection may sit idle before it is checked with a round trip on checkout.
/// Short: a connection that lay in the pool through a database restart (which takes longer) is
/// checked and replaced rather than failing the statement it was taken for. One in steady use, as
/// under load, is not.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

/// Connects to the configured database. SQLite: creates the file's directory, WAL journal and
/// `synchronous = FULL` on every connection, so an acknowledged commit survives power loss.
/// PostgreSQL: when `database.schema` is set, creates it and uses it as the search path.
pub async fn connect(config: &DatabaseConfig) -> Result<DatabaseConnection, DbSetupError> {
    let url = config.url.expose_secret().trim().to_owned();
    let shown = redact_url(&url);
    let mut options = ConnectOptions::new(url.clone());
    options
        .max_connections(config.max_connections)
        .connect_timeout(Duration::from_secs(config.connect_timeout_secs.max(1)))
        .acquire_timeout(Duration::from_secs(config.connect_timeout_secs.max(1)))
        // Not a round trip before every statement outside a transaction and every transaction:
        // under a callback burst those took CPU from storing callbacks. (The pool still tests each
        // connection as it is returned, and closes a broken one.)
        .test_before_acquire_if_idle_for(IDLE_BEFORE_PING)
        .sqlx_logging(false);
    if url.starts_with("sqlite:") {
        if let Some(parent) = sqlite_path(&url).and_then(|p| p.parent().map(|p| p.to_path_buf()))
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(&parent).map_err(|source| DbSetupError::CreateDir {
                path: parent.display().to_string(),
                source,
            })?;
        }
        options.map_sqlx_sqlite_opts(|o| {
            o.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10))
        });
    } else if !config.schema.is_empty() {
        options.set_schema_search_path(config.schema.clone());
    }
    let db = Database::connect(options)
        .await
        .map_err(|source| DbSetupError::Connect { url: shown, source })?;
    if db.get_database_backend() == DbBackend::Postgres && !config.schema.is_empty() {
        let sql = format!("CREATE SCHEMA IF NOT EXISTS \"{}\"", config.schema);
        db.execute_raw(Statement::from_string(DbBackend::Postgres, sql))
            .await
            .map_err(|source| DbSetupError::Schema {
                schema: config.schema.clone(),
                source,
            })?;
    }
    Ok(db)
}

/// Migrates (when asked) on a connection of its own, then opens the pool the service uses.
///
/// SQLite connections cache the schema: a pooled connection opened before a migration can keep
/// preparing statements against the old schema (e.g. an upsert whose unique index it has not seen
/// yet). Opening the service pool only after migrating rules that out on every backend.
pub async fn connect_migrated(
    config: &DatabaseConfig,
    run_migrations: bool,
) -> Result<(DatabaseConnection, usize), DbSetupError> {
    let mut applied = 0;
    if run_migrations {
        let migrator = connect(config).await?;
        applied = migrate(&migrator).await?;
        let _ = migrator.close().await;
    }
    Ok((connect(config).await?, applied))
}

/// Applies every pending migration; returns how many were applied.
pub async fn migrate(db: &DatabaseConnection) -> Result<usize, DbSetupError> {
    let pending = Migrator::get_pending_migrations(db)
        .await
        .map_err(DbSetupError::Migrate)?
        .len();
    Migrator::up(db, None).await.map_err(DbSetupError::Migrate)?;
    Ok(pending)
}

/// Whether the database answers, for `/readyz`.
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.ping().await
}

/// Begins a transaction that will write. On SQLite it takes the write lock at once (`BEGIN
/// IMMEDIATE`): a transaction that reads first and writes later would otherwise fail with "database
/// is locked" when another writer committed in between, instead of waiting its turn.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

/// Sets a small piece of state kept by key (a heartbeat, a resume point), replacing what was there.
pub async fn put_state(db: &impl ConnectionTrait, key: &str, value: &str, now: i64) -> Result<(), DbErr> {
    use sea_orm::{EntityTrait, Set};
    entity::kv_state::Entity::insert(entity::kv_state::ActiveModel {
        key: Set(key.to_owned()),
        value: Set(value.to_owned()),
        updated_at: Set(now),
    })
    .on_conflict(
        sea_orm::sea_query::OnConflict::column(entity::kv_state::Column::Key)
            .update_columns([entity::kv_state::Column::Value, entity::kv_state::Column::UpdatedAt])
            .to_owned(),
    )
    .exec(db)
    .await?;
    Ok(())
}

/// Milliseconds since the Unix epoch, the unit of every stored instant.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
