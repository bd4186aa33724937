//! How leads find an owner and when they go back to the pool (公海): the assignment rules, the pool's
//! rules, and the weights of the customer score with its segments. The pool and assignment rules
//! are defaults an admin may replace through the admin API (`/api/v1/rules`); the scoring weights
//! are configuration only.

use serde::{Deserialize, Serialize};

/// Who gets a lead that has no owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignRule {
    /// Nobody: it waits in the pool for a rep to claim it.
    Pool,
    /// The department's active members in turn.
    RoundRobin,
    /// The active member holding the fewest open leads.
    LeastLoaded,
    /// These members in turn (the inactive skipped).
    List(Vec<String>),
}

impl AssignRule {
    /// How it is written in the configuration and the API.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Pool => "pool",
            Self::RoundRobin => "round_robin",
            Self::LeastLoaded => "least_loaded",
            Self::List(_) => "list",
        }
    }

    /// A rule written as `"pool" | "round_robin" | "least_loaded"` or a JSON list of userids.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.starts_with('[') {
            let list: Vec<String> =
                serde_json::from_str(text).map_err(|_| format!("{text:?} is not a list of userids"))?;
            return Self::from_raw(RawRule::List(list));
        }
        Self::from_raw(RawRule::Name(text.to_owned()))
    }

    fn from_raw(raw: RawRule) -> Result<Self, String> {
        match raw {
            RawRule::Name(name) => match name.as_str() {
                "pool" => Ok(Self::Pool),
                "round_robin" => Ok(Self::RoundRobin),
                "least_loaded" => Ok(Self::LeastLoaded),
                other => Err(format!(
                    "{other:?} is not a rule: pool, round_robin, least_loaded or a list of userids"
                )),
            },
            RawRule::List(list) => {
                let list: Vec<String> = list.into_iter().map(|u| u.trim().to_owned()).collect();
                if list.is_empty() || list.iter().any(String::is_empty) {
                    return Err("a list of userids must name at least one member".into());
                }
                Ok(Self::List(list))
            }
        }
    }

    /// As stored and shown: the name, or the list as JSON.
    pub fn to_text(&self) -> String {
        match self {
            Self::List(list) => serde_json::to_string(list).unwrap_or_default(),
            other => other.name().to_owned(),
        }
    }
}

#[derive(Deserialize, Serialize)]
#[serde(untagged)]
enum RawRule {
    Name(String),
    List(Vec<String>),
}

impl<'de> Deserialize<'de> for AssignRule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::from_raw(RawRule::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl Serialize for AssignRule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::List(list) => RawRule::List(list.clone()).serialize(serializer),
            other => RawRule::Name(other.name().to_owned()).serialize(serializer),
        }
    }
}

impl utoipa::PartialSchema for AssignRule {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::String).enum_values(Some([
                "pool",
                "round_robin",
                "least_loaded",
            ])))
            .item(ArrayBuilder::new().items(ObjectBuilder::new().schema_type(Type::String)))
            .description(Some(
                "`pool`, `round_robin`, `least_loaded`, or a list of userids taking turns",
            ))
            .into()
    }
}

impl utoipa::ToSchema for AssignRule {}

/// Where a departing rep's customers go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DepartureRule {
    /// To their department leader (or `customers.handover_fallback`), as always.
    Leader,
    /// By an assignment rule among their department (a list: among its members).
    Assign(AssignRule),
}

impl<'de> Deserialize<'de> for DepartureRule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match RawRule::deserialize(d)? {
            RawRule::Name(name) if name == "leader" => Ok(Self::Leader),
            raw => AssignRule::from_raw(raw)
                .map(Self::Assign)
                .map_err(|e| serde::de::Error::custom(format!("{e}, or leader"))),
        }
    }
}

impl Serialize for DepartureRule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Leader => serializer.serialize_str("leader"),
            Self::Assign(rule) => rule.serialize(serializer),
        }
    }
}

impl utoipa::PartialSchema for DepartureRule {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::String).enum_values(Some([
                "leader",
                "pool",
                "round_robin",
                "least_loaded",
            ])))
            .item(ArrayBuilder::new().items(ObjectBuilder::new().schema_type(Type::String)))
            .description(Some(
                "`leader` (the departing rep's leader), `pool`, `round_robin`, `least_loaded`, or a list of userids",
            ))
            .into()
    }
}

impl utoipa::ToSchema for DepartureRule {}

/// How leads without an owner find one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AssignmentRules {
    /// Leads imported or created without an owner.
    pub leads: AssignRule,
    /// The department whose members share `round_robin` and `least_loaded` (its sub-departments
    /// included); 0: every active member.
    pub department: i64,
    /// A rep holding this many open leads (not won, not lost) gets no more by the rules; 0: no cap.
    pub max_open_leads: u32,
    /// A departing rep's customers.
    pub departed: DepartureRule,
}

impl Default for AssignmentRules {
    fn default() -> Self {
        Self {
            leads: AssignRule::Pool,
            department: 0,
            max_open_leads: 0,
            departed: DepartureRule::Leader,
        }
    }
}

/// When a lead goes back to the pool and how reps take from it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PoolRules {
    /// A lead goes back to the pool after this many days without a follow-up; 0: never.
    pub recycle_after_days_without_follow_up: u32,
    /// … or this many days without its stage moving; 0: never.
    pub recycle_after_days_without_stage_move: u32,
    /// Customers in the won stage stay with their owner.
    pub exempt_won: bool,
    /// Customers with these ratings stay with their owner.
    pub exempt_ratings: Vec<String>,
    /// Leads a rep may claim from the pool per day; 0: no cap.
    pub claims_per_day: u32,
    /// A rep holding this many open leads (not won, not lost) may claim no more; 0: no cap.
    pub max_held: u32,
    /// Days before the rep a lead came back from may claim it again.
    pub reclaim_cooldown_days: u32,
}

impl Default for PoolRules {
    fn default() -> Self {
        Self {
            recycle_after_days_without_follow_up: 30,
            recycle_after_days_without_stage_move: 0,
            exempt_won: true,
            exempt_ratings: vec!["A".into()],
            claims_per_day: 10,
            max_held: 0,
            reclaim_cooldown_days: 7,
        }
    }
}

impl PoolRules {
    /// What is wrong with these rules, if anything.
    pub fn check(&self) -> Result<(), String> {
        if let Some(r) = self
            .exempt_ratings
            .iter()
            .find(|r| !matches!(r.as_str(), "A" | "B" | "C"))
        {
            return Err(format!("exempt_ratings: {r:?} is not a rating (A, B or C)"));
        }
        Ok(())
    }
}

/// The weights of the customer score (points; they add up to the most a customer can score) and
/// the thresholds of its segments. See `crm::score` for the formula.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScoringConfig {
    /// Follow-ups in the last 90 days: `follow_up_points` each, up to `follow_ups` points.
    pub follow_ups: u32,
    pub follow_up_points: u32,
    /// The latest follow-up: all points within `fresh_days`, none after `stale_days`, linear between.
    pub recency: u32,
    pub fresh_days: u32,
    pub stale_days: u32,
    /// The customer's own doing seen through WeCom's callbacks in the last 30 days (adding a rep,
    /// joining a group …): `event_points` each, up to `engagement` points.
    pub engagement: u32,
    pub event_points: u32,
    /// The deal stage: evenly from the first open stage to all points when won; none when lost.
    pub stage: u32,
    /// Rating A all points, B two thirds, C one third.
    pub rating: u32,
    /// Open deals: all points from `deal_amount_full` yuan, proportionally below.
    pub deals: u32,
    pub deal_amount_full: i64,
    /// 重要 (important) from this score.
    pub important_from: u32,
    /// 主要 (main) from this score.
    pub main_from: u32,
    /// 风险 (at risk): a customer scoring at least `main_from` without a follow-up for this many days.
    pub at_risk_after_days: u32,
}

impl Default for ScoringConfig {
    fn default() -> Self {
        Self {
            follow_ups: 20,
            follow_up_points: 4,
            recency: 20,
            fresh_days: 3,
            stale_days: 30,
            engagement: 10,
            event_points: 5,
            stage: 25,
            rating: 15,
            deals: 10,
            deal_amount_full: 100_000,
            important_from: 70,
            main_from: 40,
            at_risk_after_days: 21,
        }
    }
}

impl ScoringConfig {
    /// What is wrong with these settings, if anything.
    pub fn check(&self) -> Result<(), String> {
        if self.fresh_days >= self.stale_days {
            return Err("fresh_days must be below stale_days".into());
        }
        if self.main_from > self.important_from {
            return Err("main_from must not be above important_from".into());
        }
        if self.deal_amount_full <= 0 {
            return Err("deal_amount_full must be above 0".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_read_as_names_or_lists() {
        assert_eq!(AssignRule::parse("round_robin"), Ok(AssignRule::RoundRobin));
        assert_eq!(
            AssignRule::parse(r#"["rep1", " rep2"]"#),
            Ok(AssignRule::List(vec!["rep1".into(), "rep2".into()]))
        );
        assert!(AssignRule::parse("everyone").unwrap_err().contains("not a rule"));
        assert!(AssignRule::parse("[]").is_err());
        let rules: AssignmentRules = serde_json::from_str(r#"{"leads": ["a", "b"], "departed": "pool"}"#).unwrap();
        assert_eq!(rules.leads, AssignRule::List(vec!["a".into(), "b".into()]));
        assert_eq!(rules.departed, DepartureRule::Assign(AssignRule::Pool));
        let back = serde_json::to_value(&rules).unwrap();
        assert_eq!(back["leads"], serde_json::json!(["a", "b"]));
        assert_eq!(back["departed"], "pool");
        assert!(serde_json::from_str::<AssignmentRules>(r#"{"departed": "boss"}"#).is_err());
    }
}
