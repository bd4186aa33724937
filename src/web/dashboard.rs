//! `GET /web/dashboard`: the managers' dashboard — the funnel by stage, the weighted forecast per
//! month against the departments' targets, team activity over 30 days, the customers at risk and
//! a line per rep. Signed in through WeCom like every page; a department leader sees the
//! departments they lead, a member in `web.dashboard_admins` the whole org, anyone else is refused.
//! The charts are SVG drawn here (geometry computed on the server, written by the template): no
//! script, no library, nothing fetched from the internet.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::context;
use minijinja::value::{Serde, Value};
use serde::Serialize;

use super::pages::{Message, message_page, render};
use super::user::PageUser;
use crate::crm::dashboard::{self, Dashboard, Viewer};
use crate::crm::forecast;
use crate::crm::money::Amount;
use crate::db::now_ms;
use crate::http::AppState;
use crate::texts::Lang;

/// A bar of a chart, in the SVG's user units.
#[derive(Debug, Serialize)]
struct Bar {
    x: f64,
    y: f64,
    width: f64,
    height: f64,
    label: String,
    value: String,
}

#[derive(Debug, Serialize)]
struct MonthBars {
    label: String,
    weighted: Bar,
    won: Bar,
    /// The target's height as a line across the month, when one is set.
    target_y: Option<f64>,
    target: Option<String>,
    /// What the month may bring: won plus weighted.
    expected: String,
}

#[derive(Debug, Serialize)]
struct Charts {
    funnel: Vec<Bar>,
    funnel_height: f64,
    months: Vec<MonthBars>,
    activity: Vec<Bar>,
    /// `x,y` points of the new-customers line.
    new_customers: String,
    activity_max: u64,
    first_day: String,
    last_day: String,
}

const WIDTH: f64 = 320.0;

fn funnel(d: &Dashboard) -> (Vec<Bar>, f64) {
    let max = d.forecast.pipeline.iter().map(|s| s.deals).max().unwrap_or(0).max(1) as f64;
    let row = 30.0;
    let bars = d
        .forecast
        .pipeline
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let width = (s.deals as f64 / max * 150.0).max(2.0);
            Bar {
                // Centred: a funnel narrows as deals fall out.
                x: 92.0 + (150.0 - width) / 2.0,
                y: i as f64 * row + 4.0,
                width,
                height: row - 8.0,
                label: format!("{}（{}%）", s.stage, s.probability),
                value: format!("{} · {}", s.deals, Amount(s.amount_fen).short()),
            }
        })
        .collect();
    (bars, (d.forecast.pipeline.len().max(1) as f64) * row)
}

fn months(d: &Dashboard, lang: Lang) -> Vec<MonthBars> {
    let (top, height) = (10.0, 120.0);
    let max = d
        .forecast
        .months
        .iter()
        .map(|m| (m.weighted_fen + m.won_fen).max(m.target_fen.unwrap_or(0)))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let scale = |fen: i64| fen.max(0) as f64 / max * height;
    let slot = WIDTH / d.forecast.months.len().max(1) as f64;
    d.forecast
        .months
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let x = i as f64 * slot + slot * 0.2;
            let width = slot * 0.6;
            let (won_h, weighted_h) = (scale(m.won_fen), scale(m.weighted_fen));
            let month = forecast::month_number(&m.month);
            MonthBars {
                label: if lang.en() {
                    m.month.clone()
                } else {
                    format!("{month}月")
                },
                won: Bar {
                    x,
                    y: top + height - won_h,
                    width,
                    height: won_h,
                    label: String::new(),
                    value: Amount(m.won_fen).short(),
                },
                weighted: Bar {
                    x,
                    y: top + height - won_h - weighted_h,
                    width,
                    height: weighted_h,
                    label: String::new(),
                    value: Amount(m.weighted_fen).short(),
                },
                target_y: m.target_fen.map(|t| top + height - scale(t)),
                target: m.target_fen.map(|t| Amount(t).short()),
                expected: Amount(m.won_fen + m.weighted_fen).short(),
            }
        })
        .collect()
}

fn activity(d: &Dashboard) -> (Vec<Bar>, String, u64) {
    let (top, height) = (6.0, 100.0);
    let max = d
        .activity
        .iter()
        .map(|a| a.follow_ups.max(a.new_customers))
        .max()
        .unwrap_or(0)
        .max(1);
    let step = WIDTH / d.activity.len().max(1) as f64;
    let y = |n: u64| top + height - n as f64 / max as f64 * height;
    let bars = d
        .activity
        .iter()
        .enumerate()
        .map(|(i, a)| Bar {
            x: i as f64 * step + 1.0,
            y: y(a.follow_ups),
            width: (step - 2.0).max(1.0),
            height: top + height - y(a.follow_ups),
            label: a.day.clone(),
            value: a.follow_ups.to_string(),
        })
        .collect();
    let line = d
        .activity
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{:.1},{:.1}", i as f64 * step + step / 2.0, y(a.new_customers)))
        .collect::<Vec<_>>()
        .join(" ");
    (bars, line, max)
}

#[derive(Serialize)]
struct Words {
    lang: &'static str,
    title: &'static str,
    scope_org: &'static str,
    scope_team: &'static str,
    funnel: &'static str,
    open: &'static str,
    forecast: &'static str,
    weighted: &'static str,
    won: &'static str,
    target: &'static str,
    undated: &'static str,
    activity: &'static str,
    follow_ups: &'static str,
    new_customers: &'static str,
    at_risk: &'static str,
    no_risk: &'static str,
    reps: &'static str,
    rep: &'static str,
    deals: &'static str,
    pipeline: &'static str,
    won_month: &'static str,
    notes_30d: &'static str,
    closed: &'static str,
    win_rate: &'static str,
    days_to_close: &'static str,
    lost: &'static str,
    no_deals: &'static str,
}

fn words(lang: Lang) -> Words {
    match lang {
        Lang::Zh => Words {
            lang: "zh-CN",
            title: "销售看板",
            scope_org: "全公司",
            scope_team: "我的团队",
            funnel: "商机漏斗",
            open: "进行中",
            forecast: "加权预测与目标",
            weighted: "加权预测",
            won: "已赢单",
            target: "目标",
            undated: "个商机没填成交时间",
            activity: "近 30 天团队动态",
            follow_ups: "跟进",
            new_customers: "新客户",
            at_risk: "风险客户",
            no_risk: "没有风险客户",
            reps: "成员",
            rep: "成员",
            deals: "商机",
            pipeline: "管道金额",
            won_month: "本月赢单",
            notes_30d: "30天跟进",
            closed: "本月成交",
            win_rate: "赢率",
            days_to_close: "平均成交天数",
            lost: "输单",
            no_deals: "还没有商机",
        },
        Lang::En => Words {
            lang: "en",
            title: "Sales dashboard",
            scope_org: "Whole company",
            scope_team: "My team",
            funnel: "Funnel",
            open: "open",
            forecast: "Weighted forecast and target",
            weighted: "Weighted",
            won: "Won",
            target: "Target",
            undated: "deals without a close date",
            activity: "Team activity, last 30 days",
            follow_ups: "Follow-ups",
            new_customers: "New customers",
            at_risk: "Customers at risk",
            no_risk: "No customer at risk",
            reps: "Reps",
            rep: "Rep",
            deals: "Deals",
            pipeline: "Pipeline",
            won_month: "Won this month",
            notes_30d: "Notes 30d",
            closed: "Closed this month",
            win_rate: "Win rate",
            days_to_close: "Days to close",
            lost: "Lost",
            no_deals: "No deals yet",
        },
    }
}

#[derive(Serialize)]
struct RepRow {
    name: String,
    deals: u64,
    pipeline: String,
    won: String,
    notes: u64,
}

/// `GET /web/dashboard`.
pub async fn page(user: PageUser, State(state): State<AppState>) -> Response {
    let PageUser { session, lang, web } = user;
    let viewer = match Viewer::of(&state.db, &state.config, &session.userid).await {
        Ok(Some(viewer)) => viewer,
        Ok(None) => return message_page(&web, lang, StatusCode::FORBIDDEN, Message::LeadersOnly),
        Err(e) => {
            tracing::error!(error = %e, "dashboard: database unavailable");
            return message_page(&web, lang, StatusCode::SERVICE_UNAVAILABLE, Message::Unavailable);
        }
    };
    let now = now_ms();
    let d = match dashboard::build(&state.db, &state.config, &viewer, now, state.services.tz()).await {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "dashboard: database unavailable");
            return message_page(&web, lang, StatusCode::SERVICE_UNAVAILABLE, Message::Unavailable);
        }
    };
    let (funnel, funnel_height) = funnel(&d);
    let (activity, new_customers, activity_max) = activity(&d);
    let charts = Charts {
        funnel,
        funnel_height,
        months: months(&d, lang),
        activity,
        new_customers,
        activity_max,
        first_day: d.activity.first().map(|a| a.day.clone()).unwrap_or_default(),
        last_day: d.activity.last().map(|a| a.day.clone()).unwrap_or_default(),
    };
    let reps: Vec<RepRow> = d
        .reps
        .iter()
        .map(|r| RepRow {
            name: r.name.clone(),
            deals: r.open_deals,
            pipeline: Amount(r.pipeline_fen).short(),
            won: Amount(r.won_this_month_fen).short(),
            notes: r.follow_ups_30d,
        })
        .collect();
    let f = &d.forecast;
    let this_month = f.months.first();
    render(
        &web,
        StatusCode::OK,
        "dashboard.html",
        context! {
            t => Value::from(Serde(super::texts::texts(lang))),
            d => Value::from(Serde(words(lang))),
            base => state.config.web.base().unwrap_or_default(),
            csrf => &session.csrf,
            org => matches!(viewer, Viewer::Admin),
            open_deals => f.open_deals,
            open_amount => Amount(f.open_amount_fen).short(),
            weighted_fen => this_month.map_or(0, |m| m.weighted_fen),
            undated => f.undated,
            won_deals => f.closed.won_deals,
            won_amount => Amount(f.closed.won_amount_fen).short(),
            lost_deals => f.closed.lost_deals,
            win_rate => f.closed.win_rate,
            days_to_close => f.closed.average_days_to_close,
            charts => Value::from(Serde(&charts)),
            at_risk => Value::from(Serde(&d.at_risk)),
            at_risk_total => d.at_risk_total,
            reps => Value::from(Serde(&reps)),
        },
    )
}
