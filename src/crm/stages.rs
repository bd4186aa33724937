//! Deal stages: ordered, the last two closing a deal (won, then lost). `sales.stages` in the
//! configuration is the default; an admin may replace the list through the admin API, and that
//! list, stored in the database, then holds for every instance.

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter};

use crate::config::Config;
use crate::crm::audit::{self, Actor};
use crate::db::entity::{customer, kv_state};

const KEY: &str = "sales.stages";
pub const MAX_STAGES: usize = 20;
pub const MAX_STAGE_CHARS: usize = 16;

/// The stages in force: the stored list, else the configuration's.
pub async fn current(db: &impl ConnectionTrait, config: &Config) -> Result<Vec<String>, DbErr> {
    let stored = kv_state::Entity::find_by_id(KEY.to_owned()).one(db).await?;
    Ok(stored
        .and_then(|row| serde_json::from_str::<Vec<String>>(&row.value).ok())
        .filter(|stages| stages.len() >= 3)
        .unwrap_or_else(|| config.sales.stages.clone()))
}

/// The win probability (percent) of a deal in `stage` among `stages`: the configured one, else the
/// default of its place — open stages from 10 % rising evenly to 75 %, won 100 %, lost 0 % — and 0
/// for a stage no longer listed.
pub fn probability(config: &Config, stages: &[String], stage: &str) -> u8 {
    if let Some(p) = config.sales.probabilities.get(stage) {
        return *p;
    }
    let Some(i) = stages.iter().position(|s| s == stage) else {
        return 0;
    };
    let n = stages.len();
    if i + 2 == n {
        return 100;
    }
    if i + 1 == n {
        return 0;
    }
    let open = n.saturating_sub(2);
    if open <= 1 {
        10
    } else {
        (10 + 65 * i / (open - 1)) as u8
    }
}

/// The win probability of a deal in `stage` with its own override `own` (percent, kept to 0–100),
/// else the stage's ([`probability`]).
pub fn deal_probability(config: &Config, stages: &[String], stage: &str, own: Option<i16>) -> u8 {
    own.map_or_else(|| probability(config, stages, stage), |p| p.clamp(0, 100) as u8)
}

/// What is wrong with a proposed list, if anything.
pub fn check(stages: &[String]) -> Result<(), String> {
    if stages.len() < 3 || stages.len() > MAX_STAGES {
        return Err(format!(
            "must list 3 to {MAX_STAGES} stages: at least one open stage, then won, then lost"
        ));
    }
    for (i, stage) in stages.iter().enumerate() {
        if stage.trim().is_empty() || stage.trim() != stage || stage.chars().count() > MAX_STAGE_CHARS {
            return Err(format!(
                "stage {} must be 1 to {MAX_STAGE_CHARS} characters without surrounding spaces",
                i + 1
            ));
        }
        if stages[..i].contains(stage) {
            return Err(format!("{stage:?} is listed twice"));
        }
    }
    Ok(())
}

/// Replaces the stages (checked with [`check`] first), in the audit log. Customers keep the stage
/// they are in; returns how many are now in a stage no longer listed.
pub async fn replace(
    db: &impl ConnectionTrait,
    config: &Config,
    actor: &Actor,
    stages: &[String],
    now: i64,
) -> Result<u64, DbErr> {
    let before = current(db, config).await?;
    let value = serde_json::to_string(stages).expect("strings serialize");
    crate::db::put_state(db, KEY, &value, now).await?;
    let detail = serde_json::json!({ "before": before, "after": stages });
    audit::record(db, actor, "stages.update", None, None, detail).await?;
    customer::Entity::find()
        .filter(customer::Column::Stage.is_not_null())
        .filter(customer::Column::Stage.is_not_in(stages.iter().cloned()))
        .count(db)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(stages: &[&str]) -> Vec<String> {
        stages.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn probabilities_are_configured_or_follow_the_stage_s_place() {
        let config = Config::default();
        let defaults = config.sales.stages.clone();
        let got: Vec<u8> = defaults.iter().map(|s| probability(&config, &defaults, s)).collect();
        assert_eq!(got, [10, 25, 50, 75, 100, 0]);
        let custom = list(&["接触", "演示", "试用", "报价", "签约", "流失"]);
        let got: Vec<u8> = custom.iter().map(|s| probability(&config, &custom, s)).collect();
        assert_eq!(got, [10, 31, 53, 75, 100, 0]);
        assert_eq!(probability(&config, &custom, "旧阶段"), 0);
    }

    #[test]
    fn stages_are_configured_by_name_or_with_a_probability() {
        use figment::Figment;
        use figment::providers::{Format, Toml};
        let read =
            |toml: &str| -> crate::config::SalesConfig { Figment::new().merge(Toml::string(toml)).extract().unwrap() };
        let names = read(r#"stages = ["a", "b", "won", "lost"]"#);
        assert_eq!(names.stages, list(&["a", "b", "won", "lost"]));
        assert!(names.probabilities.is_empty());
        let mixed = read(r#"stages = [{ name = "a", probability = 20 }, "b", "won", "lost"]"#);
        assert_eq!(mixed.stages, list(&["a", "b", "won", "lost"]));
        assert_eq!(mixed.probabilities.get("a"), Some(&20));
    }

    #[test]
    fn a_list_needs_an_open_stage_then_won_then_lost_each_once() {
        assert!(check(&list(&["接触", "报价", "赢单", "输单"])).is_ok());
        assert!(check(&list(&["赢单", "输单"])).is_err());
        assert!(
            check(&list(&["接触", "接触", "赢单", "输单"]))
                .unwrap_err()
                .contains("twice")
        );
        assert!(check(&list(&["接触", " ", "赢单"])).is_err());
        assert!(check(&list(&["一个非常非常非常非常非常非常长的阶段名称", "赢单", "输单"])).is_err());
    }
}
