//! Lead channels: the `state` of a 「联系我」 QR code, what people call it, and the welcome message
//! its customers get. Unknown states are kept as they are.

use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

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
    now: i64,
) -> Result<(), DbErr> {
    channel::Entity::insert(channel::ActiveModel {
        state: Set(state.to_owned()),
        name: Set(name.to_owned()),
        welcome_template: Set(welcome_template.map(str::to_owned)),
        follow_up_plan: Set(plan.map(str::to_owned)),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::column(channel::Column::State)
            .update_columns([
                channel::Column::Name,
                channel::Column::WelcomeTemplate,
                channel::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec(db)
    .await?;
    Ok(())
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
