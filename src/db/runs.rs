//! Run records: a job that must happen once per period (per recipient) inserts its record first;
//! the unique (job, scope, period) lets exactly one instance through.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

use crate::db::entity::job_run::{self, RunStatus};
use crate::db::now_ms;

/// Records the start of a run; false when this (job, scope, period) already ran or is running.
pub async fn try_start(db: &impl ConnectionTrait, job: &str, scope: &str, period: &str) -> Result<bool, DbErr> {
    let inserted = job_run::Entity::insert(job_run::ActiveModel {
        job: Set(job.to_owned()),
        scope: Set(scope.to_owned()),
        period: Set(period.to_owned()),
        status: Set(RunStatus::Running),
        detail: Set(None),
        created_at: Set(now_ms()),
        finished_at: Set(None),
        ..Default::default()
    })
    .on_conflict_do_nothing_on([job_run::Column::Job, job_run::Column::Scope, job_run::Column::Period])
    .exec(db)
    .await?;
    Ok(matches!(inserted, sea_orm::TryInsertResult::Inserted(_)))
}

/// Records how a run ended and what it did.
pub async fn finish(
    db: &impl ConnectionTrait,
    job: &str,
    scope: &str,
    period: &str,
    status: RunStatus,
    detail: &str,
) -> Result<(), DbErr> {
    job_run::Entity::update_many()
        .col_expr(job_run::Column::Status, Expr::val(status))
        .col_expr(job_run::Column::Detail, Expr::val(detail))
        .col_expr(job_run::Column::FinishedAt, Expr::val(now_ms()))
        .filter(job_run::Column::Job.eq(job))
        .filter(job_run::Column::Scope.eq(scope))
        .filter(job_run::Column::Period.eq(period))
        .exec(db)
        .await?;
    Ok(())
}

/// Whether this (job, scope, period) ran or is running.
pub async fn exists(db: &impl ConnectionTrait, job: &str, scope: &str, period: &str) -> Result<bool, DbErr> {
    use sea_orm::PaginatorTrait;
    Ok(job_run::Entity::find()
        .filter(job_run::Column::Job.eq(job))
        .filter(job_run::Column::Scope.eq(scope))
        .filter(job_run::Column::Period.eq(period))
        .count(db)
        .await?
        > 0)
}

/// The (job, scope, period) of every run of `jobs` recorded since `since`.
pub async fn recent(
    db: &impl ConnectionTrait,
    jobs: &[&str],
    since: i64,
) -> Result<std::collections::HashSet<(String, String, String)>, DbErr> {
    use sea_orm::QuerySelect;
    Ok(job_run::Entity::find()
        .filter(job_run::Column::Job.is_in(jobs.iter().copied()))
        .filter(job_run::Column::CreatedAt.gte(since))
        .select_only()
        .column(job_run::Column::Job)
        .column(job_run::Column::Scope)
        .column(job_run::Column::Period)
        .into_tuple::<(String, String, String)>()
        .all(db)
        .await?
        .into_iter()
        .collect())
}
