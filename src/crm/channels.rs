//! Lead channels: the `state` of a 「联系我」 QR code, what people call it, and the welcome message
//! its customers get. Unknown states are kept as they are.

use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, Set};

use crate::crm::audit::{self, Actor};
use crate::db::entity::channel;

pub async fn find_by_state(db: &impl ConnectionTrait, state: &str) -> Result<Option<channel::Model>, DbErr> {
    if state.is_empty() {
        return Ok(None);
    }
    channel::Entity::find()
        .filter(channel::Column::State.eq(state))
        .one(db)
        .await
}

/// Creates or updates the channel for `state`.
pub async fn upsert(
    db: &impl ConnectionTrait,
    state: &str,
    name: &str,
    welcome_template: Option<&str>,
    plan: Option<&str>,
    assign: Option<&str>,
    now: i64,
) -> Result<(), DbErr> {
    channel::Entity::insert(channel::ActiveModel {
        state: Set(state.to_owned()),
        name: Set(name.to_owned()),
        welcome_template: Set(welcome_template.map(str::to_owned)),
        follow_up_plan: Set(plan.map(str::to_owned)),
        assign: Set(assign.map(str::to_owned)),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::column(channel::Column::State)
            .update_columns([
                channel::Column::Name,
                channel::Column::WelcomeTemplate,
                channel::Column::Assign,
                channel::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec(db)
    .await?;
    Ok(())
}

/// Every channel, by state.
pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<channel::Model>, DbErr> {
    channel::Entity::find()
        .order_by_asc(channel::Column::State)
        .all(db)
        .await
}

/// What an admin sets on a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelFields {
    pub state: String,
    pub name: String,
    pub welcome_template: Option<String>,
    pub plan: Option<String>,
    /// The assignment rule as stored ([`crate::config::AssignRule::to_text`]).
    pub assign: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("a channel with state {0:?} exists")]
    StateTaken(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Creates a channel, in the audit log.
pub async fn create(
    db: &impl ConnectionTrait,
    actor: &Actor,
    fields: &ChannelFields,
    now: i64,
) -> Result<channel::Model, ChannelError> {
    if find_by_state(db, &fields.state).await?.is_some() {
        return Err(ChannelError::StateTaken(fields.state.clone()));
    }
    let created = channel::ActiveModel {
        state: Set(fields.state.clone()),
        name: Set(fields.name.clone()),
        welcome_template: Set(fields.welcome_template.clone()),
        follow_up_plan: Set(fields.plan.clone()),
        assign: Set(fields.assign.clone()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    audit::record(db, actor, "channel.create", None, None, describe(&created)).await?;
    Ok(created)
}

/// Replaces a channel's fields, in the audit log (before and after). `None` when there is none.
pub async fn update(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: i64,
    fields: &ChannelFields,
    now: i64,
) -> Result<Option<channel::Model>, ChannelError> {
    let Some(before) = channel::Entity::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    if before.state != fields.state
        && let Some(other) = find_by_state(db, &fields.state).await?
        && other.id != id
    {
        return Err(ChannelError::StateTaken(fields.state.clone()));
    }
    let mut row: channel::ActiveModel = before.clone().into();
    row.state = Set(fields.state.clone());
    row.name = Set(fields.name.clone());
    row.welcome_template = Set(fields.welcome_template.clone());
    row.follow_up_plan = Set(fields.plan.clone());
    row.assign = Set(fields.assign.clone());
    row.updated_at = Set(now);
    let after = row.update(db).await?;
    let detail = serde_json::json!({ "before": describe(&before), "after": describe(&after) });
    audit::record(db, actor, "channel.update", None, None, detail).await?;
    Ok(Some(after))
}

/// Deletes a channel, in the audit log. Customers keep the state they came with.
pub async fn delete(db: &impl ConnectionTrait, actor: &Actor, id: i64) -> Result<bool, DbErr> {
    let Some(before) = channel::Entity::find_by_id(id).one(db).await? else {
        return Ok(false);
    };
    channel::Entity::delete_by_id(id).exec(db).await?;
    audit::record(db, actor, "channel.delete", None, None, describe(&before)).await?;
    Ok(true)
}

fn describe(c: &channel::Model) -> serde_json::Value {
    serde_json::json!({
        "id": c.id,
        "state": c.state,
        "name": c.name,
        "welcome": c.welcome_template,
        "plan": c.follow_up_plan,
    })
}

/// How a lead source is shown: the channel's name, else the raw state, else 未标记来源.
pub fn source_name(channel: Option<&channel::Model>, state: Option<&str>) -> String {
    match (channel, state.filter(|s| !s.is_empty())) {
        (Some(c), _) if !c.name.is_empty() => c.name.clone(),
        (_, Some(state)) => state.to_owned(),
        _ => "未标记来源".to_owned(),
    }
}

/// Fills `{name}` (the customer) and `{rep}` (the member) into a welcome template.
pub fn render_welcome(template: &str, customer_name: &str, rep_name: &str) -> String {
    template.replace("{name}", customer_name).replace("{rep}", rep_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welcome_placeholders() {
        let t = "您好{name}，我是{rep}，很高兴为您服务！";
        assert_eq!(
            render_welcome(t, "张伟", "张三"),
            "您好张伟，我是张三，很高兴为您服务！"
        );
        assert_eq!(render_welcome(t, "", "张三"), "您好，我是张三，很高兴为您服务！");
    }

    #[test]
    fn source_names() {
        assert_eq!(source_name(None, Some("expo")), "expo");
        assert_eq!(source_name(None, Some("")), "未标记来源");
        assert_eq!(source_name(None, None), "未标记来源");
    }
}
