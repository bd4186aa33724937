//! Customers out as CSV: UTF-8 with a BOM, so Excel shows Chinese correctly, written a page at a
//! time by the caller. The import ([`super::transfer`]) reads the same columns back.

use crate::crm::deals;
use crate::crm::risk::Risk;
use crate::crm::transfer::LEAD_PREFIX;
use crate::db::entity::customer;
use crate::texts::minute_stamp;

/// The byte-order mark that tells Excel the file is UTF-8.
pub const BOM: &str = "\u{feff}";

/// The export's columns. The import reads the same file back (matching on 客户ID or the
/// natural key), so an exported sheet can be corrected and imported again.
pub const EXPORT_HEADER: [&str; 16] = [
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
];

/// The header line of an export, BOM first.
pub fn export_header() -> Vec<u8> {
    let mut out = BOM.as_bytes().to_vec();
    let mut writer = csv::Writer::from_writer(&mut out);
    writer.write_record(EXPORT_HEADER).expect("writing to memory");
    drop(writer);
    out
}

/// CSV lines for `rows`, in the export's columns.
pub fn export_rows(rows: &[customer::Model], risk: &Risk, tz: chrono_tz::Tz) -> Vec<u8> {
    let time = |ms: i64| minute_stamp(ms, tz);
    let mut out = Vec::with_capacity(rows.len() * 160);
    let mut writer = csv::Writer::from_writer(&mut out);
    for c in rows {
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
        let line = String::from_utf8(export_rows(
            std::slice::from_ref(&c),
            &Risk::new(Vec::new(), 7, 0),
            chrono_tz::Asia::Shanghai,
        ))
        .unwrap();
        assert_eq!(
            line,
            "7,\"张伟, \"\"老张\"\"\",华为,,,rep1,,,,重点;VIP,,是,,1970-01-01 08:00,1970-01-01 08:00,wmX\n"
        );
        c.external_userid = format!("{LEAD_PREFIX}0a1b");
        let line = String::from_utf8(export_rows(
            &[c],
            &Risk::new(Vec::new(), 7, 0),
            chrono_tz::Asia::Shanghai,
        ))
        .unwrap();
        assert!(line.ends_with("08:00,\n"), "an imported lead has no WeCom id: {line}");
    }
}
