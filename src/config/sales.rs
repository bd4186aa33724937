//! The sales rules an org tunes: stages and lead statuses, follow-up plans, stale-lead rules, the
//! managers' summary, customers' welcome and hand-over, and the lead channels to seed.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::AssignRule;

/// A lead status: what follow-up plans and channels name in the configuration, and what a customer
/// carries. Stored and configured by its key; chat accepts every spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeadStatus {
    Qualified,
    Interested,
    Hot,
    OnHold,
    Inactive,
}

impl LeadStatus {
    pub const ALL: [Self; 5] = [
        Self::Qualified,
        Self::Interested,
        Self::Hot,
        Self::OnHold,
        Self::Inactive,
    ];

    /// How it is stored and configured.
    pub fn key(self) -> &'static str {
        match self {
            Self::Qualified => "qualified",
            Self::Interested => "interested",
            Self::Hot => "hot",
            Self::OnHold => "on_hold",
            Self::Inactive => "inactive",
        }
    }

    /// Its Chinese name.
    pub fn label(self) -> &'static str {
        match self {
            Self::Qualified => "确定",
            Self::Interested => "有兴趣",
            Self::Hot => "热",
            Self::OnHold => "观望",
            Self::Inactive => "停止",
        }
    }

    fn spellings(self) -> &'static [&'static str] {
        match self {
            Self::Qualified => &["qualified", "确定", "已确定"],
            Self::Interested => &["interested", "有兴趣", "感兴趣"],
            Self::Hot => &["hot", "热", "热门"],
            Self::OnHold => &["on_hold", "on-hold", "onhold", "hold", "观望"],
            Self::Inactive => &["inactive", "停止", "无效"],
        }
    }

    /// The status a stored or configured key names.
    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.key() == key)
    }

    /// The status `text` names, in any accepted spelling (either language, any case).
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim().to_lowercase();
        Self::ALL.into_iter().find(|s| s.spellings().contains(&t.as_str()))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CustomersConfig {
    /// The welcome message for customers whose channel has none; `{name}` and `{rep}` are filled in.
    pub welcome_message: String,
    /// Receives a departed rep's customers when no department leader can.
    pub handover_fallback: String,
    /// Also start WeCom's resigned transfer (离职继承) to the successor when a rep leaves.
    pub resigned_transfer: bool,
    /// A rep losing more customers than this in one day alerts their leader (once that day).
    pub mass_deletion_threshold: u32,
}

impl Default for CustomersConfig {
    fn default() -> Self {
        Self {
            welcome_message: "您好{name}，我是{rep}，很高兴为您服务！有任何问题随时在这里找我。".into(),
            handover_fallback: String::new(),
            resigned_transfer: false,
            mass_deletion_threshold: 10,
        }
    }
}

/// One step of a follow-up plan: a reminder this many hours after the customer entered the status.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PlanStep {
    pub after_hours: u32,
    pub text: String,
}

/// A follow-up plan ("sales playbook"): the reminders a customer entering `status` gets.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// A lead status key: qualified, interested, hot, on_hold, inactive.
    pub status: String,
    pub steps: Vec<PlanStep>,
}

/// When a customer in an open stage without follow-ups is nudged: the owner after
/// `remind_after_days`, their leader too after `escalate_after_days`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StaleRule {
    /// The stage this applies to; empty for every open stage without its own rule.
    #[serde(default)]
    pub stage: String,
    pub remind_after_days: u32,
    pub escalate_after_days: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SummaryConfig {
    /// Members who get the summary of the whole org besides the department leaders.
    pub extra_recipients: Vec<String>,
    /// Customers without follow-up for this many days in an open stage are listed as at risk.
    pub at_risk_after_days: u32,
}

impl Default for SummaryConfig {
    fn default() -> Self {
        Self {
            extra_recipients: Vec::new(),
            at_risk_after_days: 7,
        }
    }
}

pub(super) fn default_plans() -> Vec<Plan> {
    let step = |after_hours, text: &str| PlanStep {
        after_hours,
        text: text.into(),
    };
    vec![
        Plan {
            status: "hot".into(),
            steps: vec![
                step(24, "电话跟进"),
                step(48, "发送产品资料"),
                step(168, "再次电话跟进"),
            ],
        },
        Plan {
            status: "interested".into(),
            steps: vec![step(72, "了解需求进展"), step(336, "回访")],
        },
        Plan {
            status: "qualified".into(),
            steps: vec![step(24, "确认报价和合同细节")],
        },
    ]
}

pub(super) fn default_stale_rules() -> Vec<StaleRule> {
    vec![StaleRule {
        stage: String::new(),
        remind_after_days: 7,
        escalate_after_days: 14,
    }]
}

#[derive(Debug, Clone, Deserialize)]
#[serde(from = "RawSales")]
pub struct SalesConfig {
    /// Deal stages in order; the last two are the closed ones (won, lost).
    pub stages: Vec<String>,
    /// Win probabilities (percent) configured for stages, by name; a stage without one gets the
    /// default of its place (see `crm::stages::probability`).
    pub probabilities: BTreeMap<String, u8>,
    /// An open deal of at least this many yuan that passes its expected close date alerts the
    /// owner's leaders (0: never).
    pub large_deal_amount: i64,
}

/// `sales.stages` as written: names, or tables with a name and a win probability.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawSales {
    stages: Vec<StageEntry>,
    large_deal_amount: i64,
}

impl Default for RawSales {
    fn default() -> Self {
        Self {
            stages: DEFAULT_STAGES
                .iter()
                .map(|(name, probability)| StageEntry::Full {
                    name: (*name).into(),
                    probability: *probability,
                })
                .collect(),
            large_deal_amount: 500_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum StageEntry {
    Name(String),
    Full { name: String, probability: u8 },
}

impl From<RawSales> for SalesConfig {
    fn from(raw: RawSales) -> Self {
        let mut probabilities = BTreeMap::new();
        let stages = raw
            .stages
            .into_iter()
            .map(|entry| match entry {
                StageEntry::Name(name) => name,
                StageEntry::Full { name, probability } => {
                    probabilities.insert(name.clone(), probability);
                    name
                }
            })
            .collect();
        Self {
            stages,
            probabilities,
            large_deal_amount: raw.large_deal_amount,
        }
    }
}

/// The default stages and their win probabilities (percent).
const DEFAULT_STAGES: [(&str, u8); 6] = [
    ("初步接触", 10),
    ("需求确认", 25),
    ("方案报价", 50),
    ("商务谈判", 75),
    ("赢单", 100),
    ("输单", 0),
];

impl Default for SalesConfig {
    fn default() -> Self {
        RawSales::default().into()
    }
}

/// A lead channel as written: in the configuration, or to the admin API.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ChannelInput)]
pub struct ChannelSeed {
    pub state: String,
    pub name: String,
    #[serde(default)]
    pub welcome: Option<String>,
    /// A lead status whose follow-up plan the channel's customers get: hot, interested,
    /// qualified, on_hold or inactive (or their Chinese names).
    #[serde(default)]
    pub plan: Option<String>,
    /// Who owns the channel's new customers: `round_robin` or `least_loaded` (among the department
    /// of the rep they added), or a list of userids taking turns; absent: the rep they added.
    #[serde(default)]
    #[schema(value_type = Option<AssignRule>)]
    pub assign: Option<AssignRule>,
}
