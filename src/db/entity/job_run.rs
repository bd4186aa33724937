use sea_orm::entity::prelude::*;

/// One run of a periodic job for a scope (a recipient, or empty) and period (a date or an hour).
/// The unique (job, scope, period) makes it happen once, however many instances try.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "job_runs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub job: String,
    pub scope: String,
    pub period: String,
    pub status: RunStatus,
    #[sea_orm(column_type = "Text", nullable)]
    pub detail: Option<String>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Where a run is: started (and not finished, or its instance died), done, or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum RunStatus {
    #[sea_orm(string_value = "running")]
    Running,
    #[sea_orm(string_value = "done")]
    Done,
    #[sea_orm(string_value = "failed")]
    Failed,
}
