//! The summary's customer segments: how many of the team's customers are in each, who moved
//! between segments that day, and the top customers at risk (high score, no follow-up lately).

use std::collections::HashMap;

use chrono::NaiveDate;
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::Recipient;
use super::compose::{heading_line, item_line};
use crate::crm::customers;
use crate::crm::score::{self, SEGMENT_MOVE, Segment};
use crate::db::entity::{audit, customer};
use crate::services::Services;
use crate::texts::{Lang, date_start};

/// Customers at risk listed by name.
const TOP_RISKS: u64 = 5;
const DAY_MS: i64 = 86_400_000;

/// The segment lines for `recipient` on `date` (markdown or text); empty when no customer of the
/// team has been scored yet.
pub async fn lines(
    s: &Services,
    recipient: &Recipient,
    date: NaiveDate,
    markdown: bool,
    names: &HashMap<String, String>,
    lang: Lang,
) -> Result<Vec<String>, DbErr> {
    let counts = score::segment_counts(&s.db, &recipient.team).await?;
    if counts.values().all(|n| *n == 0) {
        return Ok(Vec::new());
    }
    let en = lang.en();
    let (start, end) = (
        date_start(date, s.tz()),
        date_start(date.succ_opt().unwrap_or(date), s.tz()),
    );
    let moves = audit::Entity::find()
        .filter(audit::Column::Action.eq(SEGMENT_MOVE))
        .filter(audit::Column::At.gte(start))
        .filter(audit::Column::At.lt(end))
        .filter(audit::Column::MemberUserid.is_in(recipient.team.iter().cloned()))
        .all(&s.db)
        .await?;
    let mut into: HashMap<Segment, u64> = HashMap::new();
    for m in &moves {
        let to = serde_json::from_str::<serde_json::Value>(&m.detail)
            .ok()
            .and_then(|d| d.get("to").and_then(|t| t.as_str()).and_then(Segment::from_key));
        if let Some(to) = to {
            *into.entry(to).or_default() += 1;
        }
    }
    let heading = if en { "Customer segments" } else { "客户分层" };
    let item = |text: String| item_line(&text, markdown);
    let mut out = vec![heading_line(heading, markdown)];
    let counted: Vec<String> = Segment::ALL
        .iter()
        .map(|seg| format!("{} {}", seg.label(en), counts.get(seg).copied().unwrap_or(0)))
        .collect();
    out.push(item(counted.join(" · ")));
    if !into.is_empty() {
        let moved: Vec<String> = Segment::ALL
            .iter()
            .filter_map(|seg| into.get(seg).map(|n| format!("→{} {n}", seg.label(en))))
            .collect();
        out.push(item(if en {
            format!("Moved today: {}", moved.join(" · "))
        } else {
            format!("今日变化：{}", moved.join(" · "))
        }));
    }
    let risks = customer::Entity::find()
        .filter(customer::Column::OwnerUserid.is_in(recipient.team.iter().cloned()))
        .filter(customer::Column::Segment.eq(Segment::AtRisk.key()))
        .order_by_desc(customer::Column::Score)
        .order_by_asc(customer::Column::Id)
        .limit(TOP_RISKS)
        .all(&s.db)
        .await?;
    if !risks.is_empty() {
        out.push(item(if en {
            "Top at risk:".into()
        } else {
            "重点风险客户：".to_owned()
        }));
        let now = s.clock.now_ms();
        for c in risks {
            let owner = c.owner_userid.clone().unwrap_or_default();
            let owner = names.get(&owner).cloned().unwrap_or(owner);
            let days = (now - c.last_follow_up_at.unwrap_or(c.created_at)).max(0) / DAY_MS;
            out.push(item(if en {
                format!(
                    "{} · {owner} · score {} · {days} d without follow-up",
                    customers::display(&c),
                    c.score
                )
            } else {
                format!(
                    "{} · {owner} · {} 分 · {days} 天未跟进",
                    customers::display(&c),
                    c.score
                )
            }));
        }
    }
    Ok(out)
}
