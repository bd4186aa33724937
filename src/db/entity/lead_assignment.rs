use sea_orm::entity::prelude::*;

/// Every change of a lead's owner through the pool and the assignment rules: who has it now
/// (`None`: the pool), who had it, how and why.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "lead_assignments")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub customer_id: i64,
    pub userid: Option<String>,
    pub previous_owner: Option<String>,
    pub action: LeadAction,
    /// For an assignment, the rule that chose the rep (`round_robin`, `least_loaded`, `list`).
    pub method: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub reason: Option<String>,
    pub actor: String,
    pub at: i64,
    /// Whether the rep it concerns has been told (a message queued); assignments and recycles
    /// start untold, the rest need no message.
    pub notified: bool,
}

/// How a lead changed hands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum, serde::Serialize, utoipa::ToSchema)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "snake_case")]
pub enum LeadAction {
    /// Given to a rep by a rule (an import, a channel, a departure) or by an admin.
    #[sea_orm(string_value = "assigned")]
    Assigned,
    /// Taken from the pool by a rep.
    #[sea_orm(string_value = "claimed")]
    Claimed,
    /// Given back to the pool by its rep.
    #[sea_orm(string_value = "returned")]
    Returned,
    /// Sent back to the pool by the recycle rules.
    #[sea_orm(string_value = "recycled")]
    Recycled,
    /// Put in the pool without an owner (an import, a departure, an admin).
    #[sea_orm(string_value = "pooled")]
    Pooled,
}

impl LeadAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Assigned => "assigned",
            Self::Claimed => "claimed",
            Self::Returned => "returned",
            Self::Recycled => "recycled",
            Self::Pooled => "pooled",
        }
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
