//! Claiming rows of a work table with a lease, so that several workers (in one process or many)
//! never take the same row: on PostgreSQL the due rows are picked with `FOR UPDATE SKIP LOCKED`, on
//! SQLite the single conditional `UPDATE … RETURNING` is atomic by itself. A row whose lease ran out
//! (its worker died) is due again.

use sea_orm::sea_query::{Alias, Expr, ExprTrait, LockBehavior, LockType, Order, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter,
    QuerySelect, TransactionTrait,
};

/// The columns and status values a work table uses for claiming (`S`: the status type).
#[derive(Debug, Clone, Copy)]
pub struct ClaimColumns<C: 'static, S> {
    pub id: C,
    pub status: C,
    pub next_attempt_at: C,
    pub locked_by: C,
    pub locked_until: C,
    pub attempts: C,
    /// The status of a row waiting for its next attempt.
    pub ready: S,
    /// The status of a claimed row.
    pub claimed: S,
    /// Claim order before the id (e.g. by recipient, so that rows to merge are claimed together).
    pub order: &'static [C],
}

/// Who claims, for how long, how many.
#[derive(Debug, Clone, Copy)]
pub struct Lease<'a> {
    pub owner: &'a str,
    pub duration_ms: i64,
    pub batch: u64,
}

/// Claims up to `lease.batch` due rows, oldest first, counting an attempt on each.
pub async fn claim<E, S>(
    db: &DatabaseConnection,
    cols: &ClaimColumns<E::Column, S>,
    lease: Lease<'_>,
    now: i64,
) -> Result<Vec<E::Model>, DbErr>
where
    E: EntityTrait,
    E::Column: ColumnTrait + Copy,
    S: Into<sea_orm::Value> + Copy,
{
    claim_where::<E, S>(db, cols, lease, now, Condition::all()).await
}

/// Like [`claim`], for rows that also satisfy `only` (in the caller's transaction, if one).
pub async fn claim_where<E, S>(
    db: &impl ConnectionTrait,
    cols: &ClaimColumns<E::Column, S>,
    lease: Lease<'_>,
    now: i64,
    only: Condition,
) -> Result<Vec<E::Model>, DbErr>
where
    E: EntityTrait,
    E::Column: ColumnTrait + Copy,
    S: Into<sea_orm::Value> + Copy,
{
    let mut claimed = claim_statement::<E, S>(db.get_database_backend(), cols, lease, now, only)
        .exec_with_returning(db)
        .await?;
    claimed.sort_by_key(|model| id_of::<E>(model, cols.id));
    Ok(claimed)
}

/// How long a lane claim waits for its turn, or may sit idle holding it, on PostgreSQL.
const TURN_TIMEOUT: &str = "10s";

/// Like [`claim`], keeping the order within lanes: a row is taken only while no row of its lane
/// (the value of `lane`; rows without one are in none) is claimed by anyone under a live lease, so
/// a lane's rows are handled by one worker at a time, oldest first. Each lane taken brings up to
/// `run` more of its due rows along ([`with_runs`]). On PostgreSQL claims take turns (a transaction-scoped advisory lock on
/// `turn` within the current schema, so deployments or tests sharing a database in schemas of
/// their own do not wait on each other): two claimers could otherwise both see a lane free and
/// take different rows of it.
pub async fn claim_in_lanes<E, S>(
    db: &DatabaseConnection,
    cols: &ClaimColumns<E::Column, S>,
    lane: E::Column,
    lease: Lease<'_>,
    run: u64,
    now: i64,
    turn: i32,
) -> Result<Vec<E::Model>, DbErr>
where
    E: EntityTrait,
    E::Column: ColumnTrait + Copy,
    S: Into<sea_orm::Value> + Copy,
{
    if db.get_database_backend() != DbBackend::Postgres {
        // SQLite's single writer: one statement, the busy lanes looked up within it. The lanes
        // it took are then busy to everyone else, so their runs are taken in a statement of their own.
        let free = Condition::all().add(lane_free::<E, S>(cols, lane, now));
        let claimed = claim_where::<E, S>(db, cols, lease, now, free).await?;
        return with_runs::<E, S>(db, cols, lane, lease, now, run, claimed).await;
    }
    let txn = db.begin().await?;
    // One round trip. The timeouts keep one stuck claimer (a frozen instance holding the turn)
    // from stopping every other: a waiter gives up and tries again later, and a holder idle in
    // its claim is disconnected by the server, which frees the turn.
    //
    // The plan settings hold for this transaction only. The claim walks the open rows in id order
    // (a partial index) and stops at the batch; the planner, trusting statistics taken before a
    // burst (a few rows), preferred fetching every due row and sorting them — 25 ms with 9,000
    // rows waiting, 200 ms with 80,000 — and a generic plan of the prepared statement cannot use
    // the partial index at all.
    txn.execute_unprepared(&format!(
        "SET LOCAL lock_timeout = '{TURN_TIMEOUT}'; \
         SET LOCAL idle_in_transaction_session_timeout = '{TURN_TIMEOUT}'; \
         SET LOCAL plan_cache_mode = force_custom_plan; \
         SET LOCAL enable_sort = off; \
         SELECT pg_advisory_xact_lock({turn}, hashtext(current_schema()))"
    ))
    .await?;
    // The busy lanes first (a handful: the rows claimed now), then rows of any other lane: looked
    // up per candidate row, the planner chose a scan of every open row for each.
    let busy: Vec<Option<String>> = E::find()
        .select_only()
        .column(lane)
        .distinct()
        .filter(cols.status.eq(cols.claimed))
        .filter(cols.locked_until.gte(now))
        .into_tuple()
        .all(&txn)
        .await?;
    let busy: Vec<String> = busy.into_iter().flatten().collect();
    let free = if busy.is_empty() {
        Condition::all()
    } else {
        Condition::any().add(lane.is_null()).add(lane.is_not_in(busy))
    };
    let claimed = claim_where::<E, S>(&txn, cols, lease, now, free).await?;
    let claimed = with_runs::<E, S>(&txn, cols, lane, lease, now, run, claimed).await?;
    txn.commit().await?;
    Ok(claimed)
}

/// `claimed` with up to `run` more due rows of each of its lanes (the lanes just claimed, which no
/// one else may take now), all in id order, so that a lane's backlog is handled in runs rather than
/// a row per claim. Each lane's rows are found through an index of the open rows by lane and id.
async fn with_runs<E, S>(
    db: &impl ConnectionTrait,
    cols: &ClaimColumns<E::Column, S>,
    lane: E::Column,
    lease: Lease<'_>,
    now: i64,
    run: u64,
    mut claimed: Vec<E::Model>,
) -> Result<Vec<E::Model>, DbErr>
where
    E: EntityTrait,
    E::Column: ColumnTrait + Copy,
    S: Into<sea_orm::Value> + Copy,
{
    use sea_orm::ModelTrait;
    let mut lanes: Vec<String> = claimed
        .iter()
        .filter_map(|model| match model.get(lane) {
            sea_orm::Value::String(Some(name)) => Some(name),
            _ => None,
        })
        .collect();
    lanes.sort_unstable();
    lanes.dedup();
    if run == 0 || lanes.is_empty() {
        return Ok(claimed);
    }
    let backend = db.get_database_backend();
    let statement = runs_statement::<E, S>(backend, cols, lane, lease, now, run, lanes);
    claimed.extend(E::find().from_raw_sql(statement).all(db).await?);
    claimed.sort_by_key(|model| id_of::<E>(model, cols.id));
    Ok(claimed)
}

/// The `UPDATE … RETURNING` of [`with_runs`]. On PostgreSQL each lane's next rows are looked up by
/// themselves (`LATERAL … LIMIT`, locked, skipping locked rows); SQLite numbers the due rows of the
/// lanes and keeps the first `run` of each.
fn runs_statement<E, S>(
    backend: DbBackend,
    cols: &ClaimColumns<E::Column, S>,
    lane: E::Column,
    lease: Lease<'_>,
    now: i64,
    run: u64,
    lanes: Vec<String>,
) -> sea_orm::Statement
where
    E: EntityTrait,
    E::Column: ColumnTrait + Copy,
    S: Into<sea_orm::Value> + Copy,
{
    use sea_orm::sea_query::Iden;
    let table = E::default().table_name().to_owned();
    let [id, status, next_attempt_at, locked_by, locked_until, attempts, lane] = [
        cols.id,
        cols.status,
        cols.next_attempt_at,
        cols.locked_by,
        cols.locked_until,
        cols.attempts,
        lane,
    ]
    .map(|column| format!("\"{}\"", column.to_string()));
    let lane_count = lanes.len();
    let mut values: Vec<sea_orm::Value> = vec![
        cols.claimed.into(),
        lease.owner.into(),
        now.saturating_add(lease.duration_ms).into(),
        cols.ready.into(),
        cols.claimed.into(),
        now.into(),
        i64::try_from(run).unwrap_or(i64::MAX).into(),
    ];
    // Numbered parameters, each usable more than once: `$n` on PostgreSQL, `?n` on SQLite.
    let mark = if backend == DbBackend::Postgres { '$' } else { '?' };
    let p = |n: usize| format!("{mark}{n}");
    let set = format!(
        "UPDATE \"{table}\" SET {status} = {}, {locked_by} = {}, {locked_until} = {}, {attempts} = {attempts} + 1",
        p(1),
        p(2),
        p(3)
    );
    let due = format!(
        "(({status} = {ready} AND {next_attempt_at} <= {now}) OR ({status} = {claimed} AND {locked_until} < {now}))",
        ready = p(4),
        claimed = p(5),
        now = p(6)
    );
    let limit = p(7);
    let sql = if backend == DbBackend::Postgres {
        values.push(sea_orm::Value::Array(
            sea_orm::sea_query::ArrayType::String,
            Some(Box::new(lanes.into_iter().map(Into::into).collect())),
        ));
        format!(
            "{set} WHERE {id} = ANY(ARRAY(SELECT run.{id} FROM unnest($8::text[]) AS lanes(name) \
             CROSS JOIN LATERAL (SELECT {id} FROM \"{table}\" WHERE {lane} = lanes.name AND {due} \
             ORDER BY {id} LIMIT {limit} FOR UPDATE SKIP LOCKED) AS run)) AND {due} RETURNING *"
        )
    } else {
        let placeholders: Vec<String> = (0..lane_count).map(|i| p(i + 8)).collect();
        values.extend(lanes.into_iter().map(Into::into));
        format!(
            "{set} WHERE {id} IN (SELECT {id} FROM (SELECT {id}, row_number() OVER (PARTITION BY {lane} ORDER BY {id}) AS n \
             FROM \"{table}\" WHERE {lane} IN ({}) AND {due}) AS run WHERE n <= {limit}) RETURNING *",
            placeholders.join(", ")
        )
    };
    sea_orm::Statement::from_sql_and_values(backend, sql, values)
}

/// A row's lane has no row claimed under a live lease (a row without a lane: always).
fn lane_free<E, S>(cols: &ClaimColumns<E::Column, S>, lane: E::Column, now: i64) -> Expr
where
    E: EntityTrait,
    E::Column: ColumnTrait + Copy,
    S: Into<sea_orm::Value> + Copy,
{
    let busy = Alias::new("busy");
    let subquery = Query::select()
        .expr(Expr::val(1))
        .from_as(E::default().table_ref(), busy.clone())
        .and_where(Expr::col((busy.clone(), lane)).equals((E::default(), lane)))
        .and_where(Expr::col((busy.clone(), cols.status)).eq(cols.claimed))
        .and_where(Expr::col((busy, cols.locked_until)).gte(now))
        .to_owned();
    Expr::exists(subquery).not()
}

/// The `UPDATE` that claims due rows (run with `RETURNING`).
fn claim_statement<E, S>(
    backend: DbBackend,
    cols: &ClaimColumns<E::Column, S>,
    lease: Lease<'_>,
    now: i64,
    only: Condition,
) -> sea_orm::UpdateMany<E>
where
    E: EntityTrait,
    E::Column: ColumnTrait + Copy,
    S: Into<sea_orm::Value> + Copy,
{
    let mut due = Query::select();
    due.column(cols.id)
        .from(E::default().table_ref())
        .cond_where(
            Condition::all().add(only).add(
                Condition::any()
                    .add(
                        Expr::col(cols.status)
                            .eq(cols.ready)
                            .and(Expr::col(cols.next_attempt_at).lte(now)),
                    )
                    .add(
                        Expr::col(cols.status)
                            .eq(cols.claimed)
                            .and(Expr::col(cols.locked_until).lt(now)),
                    ),
            ),
        )
        .limit(lease.batch);
    for column in cols.order {
        due.order_by(*column, Order::Asc);
    }
    due.order_by(cols.id, Order::Asc);
    let picked = if backend == DbBackend::Postgres {
        due.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        // Not `id IN (subquery)`: the statement is prepared, and its generic plan, not knowing the
        // LIMIT, expects thousands of ids and joins them with a scan of the whole table (tens of ms
        // once a burst has queued 100k rows). An array of ids is looked up by the primary key.
        Expr::cust_with_exprs(
            "$1 = ANY(ARRAY $2)",
            [Expr::col(cols.id), Expr::SubQuery(None, Box::new(due.into()))],
        )
    } else {
        Expr::col(cols.id).in_subquery(due)
    };
    E::update_many()
        .col_expr(cols.status, Expr::val(cols.claimed))
        .col_expr(cols.locked_by, Expr::val(lease.owner))
        .col_expr(cols.locked_until, Expr::val(now.saturating_add(lease.duration_ms)))
        .col_expr(cols.attempts, Expr::col(cols.attempts).add(1))
        .filter(picked)
}

/// Gives rows back untouched (shutdown before they were handled): ready at once, attempt uncounted.
pub async fn release<E, S>(
    db: &DatabaseConnection,
    cols: &ClaimColumns<E::Column, S>,
    owner: &str,
    ids: &[i64],
) -> Result<(), DbErr>
where
    E: EntityTrait,
    E::Column: ColumnTrait + Copy,
    S: Into<sea_orm::Value> + Copy,
{
    if ids.is_empty() {
        return Ok(());
    }
    release_where::<E, S>(
        db,
        cols,
        owner,
        Condition::all().add(cols.id.is_in(ids.iter().copied())),
    )
    .await?;
    Ok(())
}

/// Gives back every row `owner` holds, including claims whose answer was lost with the connection
/// (the database committed the claim, then went away before replying); returns how many.
pub async fn release_all<E, S>(
    db: &DatabaseConnection,
    cols: &ClaimColumns<E::Column, S>,
    owner: &str,
) -> Result<u64, DbErr>
where
    E: EntityTrait,
    E::Column: ColumnTrait + Copy,
    S: Into<sea_orm::Value> + Copy,
{
    release_where::<E, S>(db, cols, owner, Condition::all().add(cols.status.eq(cols.claimed))).await
}

async fn release_where<E, S>(
    db: &DatabaseConnection,
    cols: &ClaimColumns<E::Column, S>,
    owner: &str,
    only: Condition,
) -> Result<u64, DbErr>
where
    E: EntityTrait,
    E::Column: ColumnTrait + Copy,
    S: Into<sea_orm::Value> + Copy,
{
    let released = E::update_many()
        .col_expr(cols.status, Expr::val(cols.ready))
        .col_expr(cols.locked_by, Expr::val(Option::<String>::None))
        .col_expr(cols.locked_until, Expr::val(Option::<i64>::None))
        .col_expr(cols.attempts, Expr::col(cols.attempts).sub(1))
        .filter(only)
        .filter(cols.locked_by.eq(owner))
        .exec(db)
        .await?;
    Ok(released.rows_affected)
}

fn id_of<E: EntityTrait>(model: &E::Model, column: E::Column) -> i64
where
    E::Column: ColumnTrait,
{
    use sea_orm::ModelTrait;
    match model.get(column) {
        sea_orm::Value::BigInt(Some(id)) => id,
        sea_orm::Value::Int(Some(id)) => i64::from(id),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::QueryTrait;

    use super::*;
    use crate::db::entity::inbox;
    use crate::inbox::CLAIM;

    fn sql(backend: DbBackend) -> String {
        let lease = Lease {
            owner: "w",
            duration_ms: 1000,
            batch: 32,
        };
        claim_statement::<inbox::Entity, crate::inbox::Status>(backend, &CLAIM, lease, 0, Condition::all())
            .build(backend)
            .sql
    }

    #[test]
    fn postgres_picks_an_array_of_ids_locked_and_skipping_locked_rows() {
        let sql = sql(DbBackend::Postgres);
        assert!(
            sql.contains(r#"WHERE "id" = ANY(ARRAY (SELECT "id" FROM "inbox""#),
            "{sql}"
        );
        assert!(sql.ends_with("FOR UPDATE SKIP LOCKED))"), "{sql}");
    }

    #[test]
    fn a_lane_claim_skips_lanes_being_handled() {
        for backend in [DbBackend::Postgres, DbBackend::Sqlite] {
            let lease = Lease {
                owner: "w",
                duration_ms: 1000,
                batch: 32,
            };
            let free = lane_free::<inbox::Entity, crate::inbox::Status>(&CLAIM, inbox::Column::Lane, 7);
            let sql = claim_statement::<inbox::Entity, crate::inbox::Status>(
                backend,
                &CLAIM,
                lease,
                7,
                Condition::all().add(free),
            )
            .build(backend)
            .to_string();
            assert!(
                sql.contains(r#"NOT EXISTS(SELECT 1 FROM "inbox" AS "busy" WHERE "busy"."lane" = "inbox"."lane""#),
                "{sql}"
            );
        }
    }

    #[test]
    fn a_run_takes_each_lanes_next_rows_by_themselves() {
        let lease = Lease {
            owner: "w",
            duration_ms: 1000,
            batch: 32,
        };
        let lanes = || vec!["u:a".to_owned(), "u:b".to_owned()];
        let runs = |backend| {
            runs_statement::<inbox::Entity, crate::inbox::Status>(
                backend,
                &CLAIM,
                inbox::Column::Lane,
                lease,
                7,
                4,
                lanes(),
            )
        };
        let postgres = runs(DbBackend::Postgres);
        assert!(
            postgres.sql.contains(r#"FROM unnest($8::text[]) AS lanes(name) CROSS JOIN LATERAL (SELECT "id" FROM "inbox" WHERE "lane" = lanes.name"#),
            "{}",
            postgres.sql
        );
        assert!(
            postgres.sql.contains("ORDER BY \"id\" LIMIT $7 FOR UPDATE SKIP LOCKED"),
            "{}",
            postgres.sql
        );
        assert_eq!(postgres.values.map(|v| v.0.len()), Some(8));
        let sqlite = runs(DbBackend::Sqlite);
        assert!(
            sqlite
                .sql
                .contains(r#"row_number() OVER (PARTITION BY "lane" ORDER BY "id")"#)
                && sqlite.sql.contains(r#""lane" IN (?8, ?9)"#)
                && sqlite.sql.contains("WHERE n <= ?7"),
            "{}",
            sqlite.sql
        );
        assert_eq!(sqlite.values.map(|v| v.0.len()), Some(9));
    }

    #[test]
    fn sqlite_picks_with_a_subquery() {
        let sql = sql(DbBackend::Sqlite);
        assert!(sql.contains(r#"WHERE "id" IN (SELECT "id" FROM "inbox""#), "{sql}");
        assert!(!sql.contains("FOR UPDATE"), "{sql}");
    }
}
