//! The sales facts on a customer: deal stage, lead status, purchase-time rating and tags. Every
//! change is recorded with its previous value (which is what `undo` restores).

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use serde_json::json;

use super::audit::{self, Actor};
use crate::config::LeadStatus;
use crate::db::entity::customer;

/// The stored key of the lead status `text` names, in any accepted spelling.
pub fn parse_status(text: &str) -> Option<&'static str> {
    LeadStatus::parse(text).map(LeadStatus::key)
}

/// A stored status as people read it; an unknown key as it is.
pub fn status_label(key: &str, english: bool) -> String {
    match LeadStatus::from_key(key) {
        Some(status) if english => status.key().replace('_', " "),
        Some(status) => status.label().to_owned(),
        None => key.to_owned(),
    }
}

/// Purchase-time ratings: A within a month, B in 2–3 months, C eventually.
pub fn parse_rating(text: &str) -> Option<&'static str> {
    match text.trim().to_uppercase().as_str() {
        "A" => Some("A"),
        "B" => Some("B"),
        "C" => Some("C"),
        _ => None,
    }
}

pub fn rating_meaning(rating: &str, english: bool) -> &'static str {
    match (rating, english) {
        ("A", false) => "一个月内购买",
        ("B", false) => "2–3 个月内购买",
        ("C", false) => "以后可能购买",
        ("A", true) => "buys within a month",
        ("B", true) => "buys in 2–3 months",
        ("C", true) => "may buy eventually",
        _ => "",
    }
}

/// English names accepted for the default stages, by position.
const DEFAULT_STAGE_ALIASES: [&[&str]; 6] = [
    &["initial", "contact", "first contact"],
    &["needs", "qualification", "discovery"],
    &["proposal", "quote", "quotation"],
    &["negotiation", "negotiating"],
    &["won", "win", "closed won"],
    &["lost", "lose", "closed lost"],
];

/// A stage by name, English alias (for the default six) or number (1-based).
pub fn parse_stage<'a>(stages: &'a [String], text: &str) -> Option<&'a str> {
    let t = text.trim();
    if let Ok(n) = t.parse::<usize>() {
        return stages.get(n.checked_sub(1)?).map(String::as_str);
    }
    if let Some(found) = stages.iter().find(|s| s.eq_ignore_ascii_case(t)) {
        return Some(found);
    }
    let lower = t.to_lowercase();
    let default = crate::config::SalesConfig::default().stages;
    if stages == default.as_slice() {
        return DEFAULT_STAGE_ALIASES
            .iter()
            .position(|aliases| aliases.contains(&lower.as_str()))
            .map(|i| stages[i].as_str());
    }
    None
}

/// The won stage is the second to last, the lost one the last.
pub fn is_won(stages: &[String], stage: &str) -> bool {
    stages.len() >= 2 && stages[stages.len() - 2] == stage
}

/// Which field a change touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Stage,
    Status,
    Rating,
    Tags,
}

impl Field {
    /// How people name the field: `阶段` / `stage`.
    pub fn label(self, english: bool) -> &'static str {
        match (self, english) {
            (Self::Stage, false) => "阶段",
            (Self::Status, false) => "状态",
            (Self::Rating, false) => "评级",
            (Self::Tags, false) => "标签",
            (Self::Stage, true) => "stage",
            (Self::Status, true) => "status",
            (Self::Rating, true) => "rating",
            (Self::Tags, true) => "tags",
        }
    }

    pub fn action(self) -> &'static str {
        match self {
            Self::Stage => "customer.stage",
            Self::Status => "customer.status",
            Self::Rating => "customer.rating",
            Self::Tags => "customer.tags",
        }
    }

    fn column(self) -> customer::Column {
        match self {
            Self::Stage => customer::Column::Stage,
            Self::Status => customer::Column::LeadStatus,
            Self::Rating => customer::Column::Rating,
            Self::Tags => customer::Column::Tags,
        }
    }

    pub fn get(self, c: &customer::Model) -> Option<String> {
        match self {
            Self::Stage => c.stage.clone(),
            Self::Status => c.lead_status.clone(),
            Self::Rating => c.rating.clone(),
            Self::Tags => Some(c.tags.clone()),
        }
    }
}

/// Sets a field (None clears it) and records the change with its previous value.
pub async fn set(
    db: &impl ConnectionTrait,
    customer: &customer::Model,
    field: Field,
    value: Option<String>,
    actor: &Actor,
    now: i64,
) -> Result<(), DbErr> {
    let before = field.get(customer);
    customer::Entity::update_many()
        .col_expr(field.column(), Expr::val(value.clone()))
        .col_expr(customer::Column::UpdatedAt, Expr::val(now))
        .filter(customer::Column::Id.eq(customer.id))
        .exec(db)
        .await?;
    let member = match actor {
        Actor::Member(userid) => Some(userid.as_str()),
        _ => None,
    };
    audit::record(
        db,
        actor,
        field.action(),
        Some(customer.id),
        member,
        json!({ "from": before, "to": value }),
    )
    .await
}

pub fn tags_of(c: &customer::Model) -> Vec<String> {
    serde_json::from_str(&c.tags).unwrap_or_default()
}

pub fn tags_json(tags: &[String]) -> String {
    serde_json::to_string(tags).unwrap_or_else(|_| "[]".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_ratings_and_stages_in_both_languages() {
        assert_eq!(parse_status("Hot"), Some("hot"));
        assert_eq!(parse_status("观望"), Some("on_hold"));
        assert_eq!(parse_status("on_hold"), Some("on_hold"));
        assert_eq!(parse_status("maybe"), None);
        assert_eq!(status_label("on_hold", false), "观望");
        assert_eq!(parse_rating("b"), Some("B"));
        assert_eq!(parse_rating("D"), None);
        let stages = crate::config::SalesConfig::default().stages;
        assert_eq!(parse_stage(&stages, "方案报价"), Some("方案报价"));
        assert_eq!(parse_stage(&stages, "proposal"), Some("方案报价"));
        assert_eq!(parse_stage(&stages, "3"), Some("方案报价"));
        assert_eq!(parse_stage(&stages, "9"), None);
        assert!(is_won(&stages, "赢单") && !is_won(&stages, "输单"));
    }
}
