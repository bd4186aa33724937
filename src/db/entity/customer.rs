use sea_orm::entity::prelude::*;

/// A customer: a WeCom external contact, and the CRM facts about them. `owner_userid` is the rep
/// responsible in the CRM; `first_state` the lead source (the 「联系我」 state of the first add).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "customers")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub external_userid: String,
    pub name: String,
    /// 1 a WeChat user, 2 a WeCom user of another corp, 0 unknown.
    pub contact_type: i32,
    #[sea_orm(column_type = "Text")]
    pub avatar: String,
    pub gender: i32,
    pub unionid: String,
    pub corp_name: String,
    pub corp_full_name: String,
    pub position: String,
    /// A phone number given on import (WeCom does not share customers' numbers).
    pub phone: String,
    /// The natural key of an imported lead (`phone:…` or `name:…|company:…`).
    #[sea_orm(unique)]
    pub import_key: Option<String>,
    pub owner_userid: Option<String>,
    pub first_state: Option<String>,
    pub first_added_by: Option<String>,
    pub first_added_at: Option<i64>,
    pub stage: Option<String>,
    pub lead_status: Option<String>,
    pub rating: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub tags: String,
    pub score: i32,
    /// Added through add_half_external_contact and not confirmed yet.
    pub pending: bool,
    pub at_risk: bool,
    #[sea_orm(column_type = "Text", nullable)]
    pub at_risk_reason: Option<String>,
    pub at_risk_since: Option<i64>,
    #[sea_orm(column_type = "Text")]
    pub search_text: String,
    pub last_follow_up_at: Option<i64>,
    /// In the pool (公海) since then; `None` when not in the pool. A pooled customer has no owner.
    pub pooled_at: Option<i64>,
    /// Why it went to the pool (the rep's words, or the recycle rule).
    #[sea_orm(column_type = "Text", nullable)]
    pub pool_reason: Option<String>,
    /// Who owned it before it went to the pool (their claim waits out the cooldown).
    pub previous_owner: Option<String>,
    /// Since when the current owner has it (a claim or an assignment); the recycle rules count
    /// from here at the earliest.
    pub owner_since: Option<i64>,
    /// When its stage last moved.
    pub stage_moved_at: Option<i64>,
    /// When its owner was last warned that the recycle rules will send it back to the pool; a
    /// follow-up, stage move or new owner after it calls for a new warning.
    pub recycle_warned_at: Option<i64>,
    /// 重要 / 主要 / 一般 / 风险 as their keys (important, main, normal, at_risk).
    pub segment: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
