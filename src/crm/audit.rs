//! The audit log: every change to a customer or member, with who made it.

use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, Set};
use serde_json::Value;

use crate::db::entity::audit;
use crate::db::now_ms;

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A member, through a chat command.
    Member(String),
    /// A WeCom callback.
    Wecom,
    /// The periodic org sync, reconciliation or `wecom-scrm sync`.
    Sync,
    /// The service itself (handovers, alarms).
    System,
    /// An admin API token, by name.
    Token(String),
    /// An operator at the command line (`wecom-scrm import`).
    Cli,
}

impl Actor {
    pub fn name(&self) -> String {
        match self {
            Self::Member(userid) => userid.clone(),
            Self::Wecom => "wecom".into(),
            Self::Sync => "sync".into(),
            Self::System => "system".into(),
            Self::Token(name) => format!("token:{name}"),
            Self::Cli => "cli".into(),
        }
    }
}

pub async fn record(
    db: &impl ConnectionTrait,
    actor: &Actor,
    action: &str,
    customer_id: Option<i64>,
    member: Option<&str>,
    detail: Value,
) -> Result<(), DbErr> {
    audit::ActiveModel {
        at: Set(now_ms()),
        actor: Set(actor.name()),
        action: Set(action.to_owned()),
        customer_id: Set(customer_id),
        member_userid: Set(member.map(str::to_owned)),
        detail: Set(detail.to_string()),
        ..Default::default()
    }
    .insert(db)
    .await
    .map(|_| ())
}
