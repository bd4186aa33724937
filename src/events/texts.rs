//! What the service tells members about their customers, in Chinese.

use chrono_tz::Tz;

use crate::db::entity::follow_up;
use crate::texts::{preview, short_day};

/// To the rep a new customer added; `page` is the customer's page, when the web pages are on.
pub fn new_customer(customer: &str, source: &str, short_name: &str, page: Option<&str>) -> String {
    let mut text = format!(
        "🆕 新客户：{customer}\n来源：{source}\n回复「记 @{short_name} 内容」记录第一条跟进，例如：记 @{short_name} 已加微信，约下周拜访"
    );
    if let Some(page) = page {
        text.push_str(&format!("\n<a href=\"{page}\">打开客户资料</a>"));
    }
    text
}

pub fn pending_customer(customer: &str, source: &str) -> String {
    format!("🆕 {customer} 申请添加你为联系人（来源：{source}），通过后会自动建档。")
}

fn situation(stage: Option<&str>, last: Option<&follow_up::Model>, tz: Tz) -> String {
    let stage = stage.filter(|s| !s.is_empty()).unwrap_or("未设置");
    let last = last.map_or_else(
        || "暂无跟进记录".to_owned(),
        |f| format!("{} {}", short_day(f.created_at, tz), preview(&f.content, 40)),
    );
    format!("阶段：{stage}\n最近跟进：{last}")
}

/// To the rep whom a customer deleted.
pub fn customer_left_rep(customer: &str, stage: Option<&str>, last: Option<&follow_up::Model>, tz: Tz) -> String {
    format!(
        "⚠️ 客户删除了你：{customer}\n{}\n客户已标记为流失风险，可以请同事协助挽回。",
        situation(stage, last, tz)
    )
}

/// To the rep's leaders when a customer deleted the rep.
pub fn customer_left_leader(
    customer: &str,
    rep: &str,
    stage: Option<&str>,
    last: Option<&follow_up::Model>,
    tz: Tz,
) -> String {
    format!("⚠️ 客户流失：{customer} 删除了 {rep}\n{}", situation(stage, last, tz))
}

pub fn transfer_failed(customer: &str, reason: Option<&str>) -> String {
    let why = match reason {
        Some("customer_refused") => "客户拒绝了接替",
        Some("customer_limit_exceed") => "你的客户数已达上限，请先清理后再接替",
        Some(other) if !other.is_empty() => other,
        _ => "原因未知",
    };
    format!("⚠️ 客户接替失败：{customer}\n原因：{why}")
}

pub fn handover_received(departed: &str, customers: u64, reminders: u64) -> String {
    let reminders = if reminders > 0 {
        format!("，{reminders} 条待办提醒也已转给你")
    } else {
        String::new()
    };
    format!(
        "📥 {departed} 已离职，其 {customers} 位客户已转交给你{reminders}。\n所有跟进记录都保留在客户名下，发送「待办」查看提醒。"
    )
}

pub fn mass_deletion(rep: &str, lost: u64) -> String {
    format!("🚨 {rep} 今天已失去 {lost} 位客户（客户删除或员工删除），请及时关注。")
}
