//! Customers out as CSV: UTF-8 with a BOM, so Excel shows Chinese correctly, written a page at a
//! time by the caller. The import ([`super::transfer`]) reads the same columns back.

use std::collections::HashMap;

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect};

use crate::crm::deals;
use crate::crm::money::Amount;
use crate::crm::risk::Risk;
use crate::crm::transfer::LEAD_PREFIX;
use crate::db::entity::customer;
use crate::db::entity::deal::{self, DealStatus};
use crate::texts::minute_stamp;

/// The byte-order mark that tells Excel the file is UTF-8.
pub const BOM: &str = "\u{feff}";

/// The export's columns. The import reads the same file back (matching on 客户ID or the
/// natural key), so an exported sheet can be corrected and imported again.
pub const EXPORT_HEADER: [&str; 20] = [
    "客户ID",
    "姓名",
    "公司",
    "职位",
    "电话",
    "负责人",
    "阶段",
    "状态",
    "评级",
    "标签",
    "渠道",
    "流失风险",
    "最近跟进",
    "创建时间",
    "更新时间",
    "external_userid",
    "进行中商机",
    "商机金额",
    "最近预计成交",
    "赢单金额",
];

/// A customer's deals, summed for the export: open ones (count, known amount, the soonest expected
/// close) and the amount won.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DealTotals {
    pub open: i64,
    pub open_fen: i64,
    pub next_close: Option<String>,
    pub won_fen: i64,
}

/// A customer's deals of one status: customer, status, count, known amount, soonest close.
type DealGroup = (i64, DealStatus, i64, Option<i64>, Option<String>);

/// The deal totals of the customers `ids`: one grouped query.
pub async fn deal_totals(db: &impl ConnectionTrait, ids: &[i64]) -> Result<HashMap<i64, DealTotals>, DbErr> {
    let rows: Vec<DealGroup> = deal::Entity::find()
        .filter(deal::Column::CustomerId.is_in(ids.to_vec()))
        .filter(deal::Column::Status.is_in([DealStatus::Open, DealStatus::Won]))
        .select_only()
        .column(deal::Column::CustomerId)
        .column(deal::Column::Status)
        .column_as(Expr::col(deal::Column::Id).count(), "n")
        .column_as(Expr::cust("CAST(SUM(amount_fen) AS BIGINT)"), "amount")
        .column_as(Expr::col(deal::Column::ExpectedClose).min(), "next_close")
        .group_by(deal::Column::CustomerId)
        .group_by(deal::Column::Status)
        .into_tuple()
        .all(db)
        .await?;
    let mut totals: HashMap<i64, DealTotals> = HashMap::new();
    for (customer_id, status, n, amount, next_close) in rows {
        let t = totals.entry(customer_id).or_default();
        if status == DealStatus::Open {
            t.open = n;
            t.open_fen = amount.unwrap_or(0);
            t.next_close = next_close;
        } else {
            t.won_fen = amount.unwrap_or(0);
        }
    }
    Ok(totals)
}

/// The header line of an export, BOM first.
pub fn export_header() -> Vec<u8> {
    let mut out = BOM.as_bytes().to_vec();
    let mut writer = csv::Writer::from_writer(&mut out);
    writer.write_record(EXPORT_HEADER).expect("writing to memory");
    drop(writer);
    out
}

/// CSV lines for `rows`, in the export's columns.
pub fn export_rows(
    rows: &[customer::Model],
    risk: &Risk,
    totals: &HashMap<i64, DealTotals>,
    tz: chrono_tz::Tz,
) -> Vec<u8> {
    let time = |ms: i64| minute_stamp(ms, tz);
    let mut out = Vec::with_capacity(rows.len() * 160);
    let mut writer = csv::Writer::from_writer(&mut out);
    let yuan = |fen: i64| {
        if fen == 0 {
            String::new()
        } else {
            Amount(fen).yuan_string()
        }
    };
    for c in rows {
        let t = totals.get(&c.id).cloned().unwrap_or_default();
        let record = [
            c.id.to_string(),
            c.name.clone(),
            c.corp_name.clone(),
            c.position.clone(),
            c.phone.clone(),
            c.owner_userid.clone().unwrap_or_default(),
            c.stage.clone().unwrap_or_default(),
            c.lead_status.clone().unwrap_or_default(),
            c.rating.clone().unwrap_or_default(),
            deals::tags_of(c).join(";"),
            c.first_state.clone().unwrap_or_default(),
            if risk.reason(c).is_some() {
                "是".into()
            } else {
                String::new()
            },
            c.last_follow_up_at.map(time).unwrap_or_default(),
            time(c.created_at),
            time(c.updated_at),
            if c.external_userid.starts_with(LEAD_PREFIX) {
                String::new()
            } else {
                c.external_userid.clone()
            },
            if t.open == 0 { String::new() } else { t.open.to_string() },
            yuan(t.open_fen),
            t.next_close.unwrap_or_default(),
            yuan(t.won_fen),
        ];
        writer.write_record(&record).expect("writing to memory");
    }
    drop(writer);
    out
}

/// A customer with nothing set, for tests to fill in.
#[cfg(test)]
pub(crate) fn sample_customer() -> customer::Model {
    customer::Model {
        id: 1,
        external_userid: String::new(),
        name: String::new(),
        contact_type: 0,
        avatar: String::new(),
        gender: 0,
        unionid: String::new(),
        corp_name: String::new(),
        corp_full_name: String::new(),
        position: String::new(),
        phone: String::new(),
        import_key: None,
        owner_userid: None,
        first_state: None,
        first_added_by: None,
        first_added_at: None,
        stage: None,
        lead_status: None,
        rating: None,
        tags: "[]".into(),
        score: 0,
        pending: false,
        at_risk: false,
        at_risk_reason: None,
        at_risk_since: None,
        search_text: String::new(),
        last_follow_up_at: None,
        pooled_at: None,
        pool_reason: None,
        previous_owner: None,
        owner_since: None,
        stage_moved_at: None,
        recycle_warned_at: None,
        segment: None,
        created_at: 0,
        updated_at: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_export_starts_with_a_bom_and_quotes_what_needs_it() {
        let header = export_header();
        assert!(header.starts_with("\u{feff}客户ID,姓名,".as_bytes()));
        let mut c = customer::Model {
            id: 7,
            external_userid: "wmX".into(),
            name: "张伟, \"老张\"".into(),
            corp_name: "华为".into(),
            owner_userid: Some("rep1".into()),
            tags: "[\"重点\",\"VIP\"]".into(),
            at_risk: true,
            ..sample_customer()
        };
        let totals = HashMap::from([(
            7,
            DealTotals {
                open: 2,
                open_fen: 58_000_050,
                next_close: Some("2026-12-31".into()),
                won_fen: 9_000_000,
            },
        )]);
        let line = String::from_utf8(export_rows(
            std::slice::from_ref(&c),
            &Risk::new(Vec::new(), 7, 0),
            &totals,
            chrono_tz::Asia::Shanghai,
        ))
        .unwrap();
        assert_eq!(
            line,
            "7,\"张伟, \"\"老张\"\"\",华为,,,rep1,,,,重点;VIP,,是,,1970-01-01 08:00,1970-01-01 08:00,wmX,2,580000.50,2026-12-31,90000.00\n"
        );
        c.external_userid = format!("{LEAD_PREFIX}0a1b");
        let line = String::from_utf8(export_rows(
            &[c],
            &Risk::new(Vec::new(), 7, 0),
            &HashMap::new(),
            chrono_tz::Asia::Shanghai,
        ))
        .unwrap();
        assert!(
            line.ends_with("08:00,,,,,\n"),
            "an imported lead has no WeCom id, no deals: {line}"
        );
    }
}
