//! What the bot says, in Chinese or English. Every answer states what was stored; times are in the
//! org's timezone.

use chrono::{DateTime, Datelike, TimeZone, Utc};
use chrono_tz::Tz;

use super::command::{Lang, VERBS, Verb};
use crate::crm::score::Segment;
use crate::db::entity::{customer, follow_up, reminder};
use crate::texts;

fn local(ms: i64, tz: Tz) -> DateTime<Tz> {
    tz.from_utc_datetime(
        &DateTime::<Utc>::from_timestamp_millis(ms)
            .unwrap_or_default()
            .naive_utc(),
    )
}

/// `11月26日 周四 15:00` or `Thu Nov 26 15:00`.
pub fn when(ms: i64, tz: Tz, lang: Lang) -> String {
    if lang.en() {
        local(ms, tz).format("%a %b %-d %H:%M").to_string()
    } else {
        texts::day_time(ms, tz)
    }
}

/// `今天 15:00` / `明天 09:00` for the next two days, else the full date.
pub fn when_near(ms: i64, now: i64, tz: Tz, lang: Lang) -> String {
    let days = local(ms, tz)
        .date_naive()
        .signed_duration_since(local(now, tz).date_naive())
        .num_days();
    let time = local(ms, tz).format("%H:%M");
    match (days, lang) {
        (0, Lang::Zh) => format!("今天 {time}"),
        (1, Lang::Zh) => format!("明天 {time}"),
        (0, Lang::En) => format!("today {time}"),
        (1, Lang::En) => format!("tomorrow {time}"),
        _ => when(ms, tz, lang),
    }
}

/// How late something is: `逾期 2小时` / `2h overdue`.
pub fn overdue(due: i64, now: i64, lang: Lang) -> String {
    let minutes = ((now - due) / 60_000).max(1);
    let (n, zh, en) = if minutes < 60 {
        (minutes, "分钟", "min")
    } else if minutes < 48 * 60 {
        (minutes / 60, "小时", "h")
    } else {
        (minutes / 1440, "天", "d")
    };
    if lang.en() {
        format!("{n}{en} overdue")
    } else {
        format!("逾期 {n}{zh}")
    }
}

pub fn customer_name(c: &customer::Model) -> String {
    crate::crm::customers::display(c)
}

pub fn help(lang: Lang, verb: Option<Verb>) -> String {
    if let Some(verb) = verb {
        return help_for(verb, lang);
    }
    if lang.en() {
        let mut lines = vec!["Commands (Chinese works too, e.g. 记 / 提醒 / 待办):".to_owned()];
        for (verb, _, _) in VERBS {
            lines.push(format!("· {}", usage(verb, lang)));
        }
        lines.push("Name a customer with @name (or @number from a list). Send `help note` for examples.".into());
        lines.join("\n")
    } else {
        let mut lines = vec!["可用命令（英文也可以，如 note / remind / todo）：".to_owned()];
        for (verb, _, _) in VERBS {
            lines.push(format!("· {}", usage(verb, lang)));
        }
        lines.push("用 @客户名（或列表里的序号 @2）指定客户。发送「帮助 记」看例子。".into());
        lines.join("\n")
    }
}

fn usage(verb: Verb, lang: Lang) -> String {
    let zh = match verb {
        Verb::Help => "帮助 [命令]",
        Verb::Find => "查 <名字/备注/公司/电话/拼音> — 找我的客户",
        Verb::Use => "选 <名字或序号> — 设为当前客户",
        Verb::Info => "详情 [@客户] — 客户卡片",
        Verb::Note => "记 [@客户] <内容> — 记录跟进",
        Verb::Remind => "提醒 [@客户] <时间> <内容> — 设置提醒",
        Verb::Todo => "待办 — 我的提醒",
        Verb::Done => "完成 <序号> [备注]",
        Verb::Snooze => "推迟 <序号> <时间>",
        Verb::Cancel => "取消 <序号>",
        Verb::Stage => "阶段 [@客户] <阶段>",
        Verb::Status => "状态 [@客户] 确定/有兴趣/热/观望/停止",
        Verb::Rate => "评级 [@客户] A/B/C",
        Verb::Tag => "标签 [@客户] <标签>（-标签 删除）",
        Verb::Undo => "撤销 — 撤回 10 分钟内的上一步",
        Verb::Summary => "日报 — 今天的数据（负责人看团队日报）",
        Verb::TeamTodo => "团队待办 — 团队逾期的提醒（负责人）",
        Verb::Idle => "谁没跟进 — 今天没记跟进的同事、快要变冷的客户（负责人）；「<成员名> 今天」看一个人的今天",
        Verb::Deal => "商机 [@客户] <金额> [<成交时间>] [标题] — 新建商机；只发「商机」看我的商机",
        Verb::Win => "赢单 [@客户] [金额] — 商机成交",
        Verb::Lose => "输单 [@客户] <原因> — 商机丢单",
        Verb::Forecast => "预测 — 我的商机管道、本月和下月的加权预测、本月目标",
        Verb::Pool => "公海 [关键字] — 没有负责人的线索",
        Verb::Claim => "领取 <序号> — 从公海领取线索",
        Verb::Release => "退回 [@客户] <原因> — 把线索退回公海",
        Verb::Score => "评分 [@客户] — 客户评分和分层，逐项说明",
    };
    let en = match verb {
        Verb::Help => "help [command]",
        Verb::Find => "find <name/remark/company/phone/pinyin> — search my customers",
        Verb::Use => "use <name or number> — make a customer current",
        Verb::Info => "info [@customer] — customer card",
        Verb::Note => "note [@customer] <text> — log a follow-up",
        Verb::Remind => "remind [@customer] <when> <text> — set a reminder",
        Verb::Todo => "todo — my reminders",
        Verb::Done => "done <n> [note]",
        Verb::Snooze => "snooze <n> <when>",
        Verb::Cancel => "cancel <n>",
        Verb::Stage => "stage [@customer] <stage>",
        Verb::Status => "status [@customer] qualified/interested/hot/on_hold/inactive",
        Verb::Rate => "rate [@customer] A/B/C",
        Verb::Tag => "tag [@customer] <tag> (-tag removes)",
        Verb::Undo => "undo — take back the last step (10 minutes)",
        Verb::Summary => "summary — my figures for today (leaders: the team's)",
        Verb::TeamTodo => "team todo — the team's overdue reminders (leaders)",
        Verb::Idle => {
            "who is idle — who logged no follow-up today, customers going cold (leaders); `<member> today` for one rep's day"
        }
        Verb::Deal => "deal [@customer] <amount> [<close date>] [title] — new deal; `deal` alone lists mine",
        Verb::Win => "win [@customer] [amount] — the deal is won",
        Verb::Lose => "lose [@customer] <reason> — the deal is lost",
        Verb::Forecast => "forecast — my pipeline, the weighted forecast for this month and next, the month's target",
        Verb::Pool => "pool [keyword] — leads owned by no one",
        Verb::Claim => "claim <n> — take a lead from the pool",
        Verb::Release => "release [@customer] <reason> — give a lead back to the pool",
        Verb::Score => "score [@customer] — the customer's score and segment, factor by factor",
    };
    if lang.en() { en.into() } else { zh.into() }
}

fn help_for(verb: Verb, lang: Lang) -> String {
    let examples_zh = match verb {
        Verb::Note => "记 已报价，等对方审批\n记 @张伟 明天带样品拜访",
        Verb::Remind => {
            "提醒 明天下午3点 回电话\n提醒 @张伟 周五10点 发合同\n提醒 in 2h 看邮件（不指定客户就是个人提醒）"
        }
        Verb::Find => "查 张伟\n查 zw\n查 华为\n查 1380000",
        Verb::Done => "完成 2\n完成 2 已回电，下周签约",
        Verb::Snooze => "推迟 1 明天9点\n推迟 3 2小时后",
        Verb::Stage => "阶段 方案报价\n阶段 @张伟 赢单",
        Verb::Status => "状态 热\n状态 @张伟 观望",
        Verb::Rate => "评级 A（一个月内购买）\n评级 @张伟 B（2–3 个月）",
        Verb::Tag => "标签 重点客户\n标签 -重点客户",
        Verb::Deal => "商机 @张伟 50万 12月31日 二期项目\n商机 12.5万\n商机",
        Verb::Win => "赢单 @张伟\n赢单 48万",
        Verb::Lose => "输单 @张伟 预算砍掉了",
        Verb::Pool => "公海\n公海 华为",
        Verb::Claim => "领取 2",
        Verb::Release => "退回 @张伟 联系不上，号码是空号",
        _ => "",
    };
    let examples_en = match verb {
        Verb::Note => "note quoted, waiting for approval\nnote @zhangwei visit with samples tomorrow",
        Verb::Remind => {
            "remind tomorrow 3pm call back\nremind @zw friday 10:00 send contract\nremind in 2h check mail (no customer: a personal reminder)"
        }
        Verb::Find => "find 张伟\nfind zw\nfind 1380000",
        Verb::Done => "done 2\ndone 2 called back, signing next week",
        Verb::Snooze => "snooze 1 tomorrow 9am\nsnooze 3 in 2h",
        Verb::Stage => "stage proposal\nstage @zw won",
        Verb::Status => "status hot\nstatus @zw on_hold",
        Verb::Rate => "rate A (buys within a month)",
        Verb::Tag => "tag key-account\ntag -key-account",
        Verb::Deal => "deal @zw 500k dec 31 phase two\ndeal 125k\ndeal",
        Verb::Win => "win @zw\nwin 480k",
        Verb::Lose => "lose @zw budget cut",
        Verb::Pool => "pool\npool huawei",
        Verb::Claim => "claim 2",
        Verb::Release => "release @zw number out of service",
        _ => "",
    };
    let examples = if lang.en() { examples_en } else { examples_zh };
    let head = usage(verb, lang);
    if examples.is_empty() {
        head
    } else if lang.en() {
        format!("{head}\nExamples:\n{examples}")
    } else {
        format!("{head}\n例如：\n{examples}")
    }
}

/// A numbered list of customers.
pub fn customer_list(hits: &[(customer::Model, Option<String>)], lang: Lang, heading: &str) -> String {
    let mut lines = vec![heading.to_owned()];
    for (i, (c, remark)) in hits.iter().enumerate() {
        let remark = remark.as_ref().map(|r| {
            if lang.en() {
                format!(" · remark: {r}")
            } else {
                format!(" · 备注：{r}")
            }
        });
        lines.push(format!("{}. {}{}", i + 1, customer_name(c), remark.unwrap_or_default()));
    }
    lines.join("\n")
}

/// The customer card of `info`.
#[allow(clippy::too_many_arguments)]
pub fn card(
    c: &customer::Model,
    source: &str,
    notes: &[(follow_up::Model, String)],
    open: &[reminder::Model],
    stages_status: (Option<String>, Option<String>, Option<String>),
    tags: &[String],
    risk: Option<&str>,
    tz: Tz,
    lang: Lang,
) -> String {
    let (stage, status, rating) = stages_status;
    let none = if lang.en() { "—" } else { "未设置" };
    let mut lines = vec![format!("👤 {}", customer_name(c))];
    let company = [c.corp_full_name.as_str(), c.position.as_str()]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" · ");
    if lang.en() {
        if !company.is_empty() {
            lines.push(format!("Company: {company}"));
        }
        lines.push(format!("Source: {source}"));
        lines.push(format!(
            "Stage: {} · Status: {} · Rating: {}",
            stage.unwrap_or_else(|| none.into()),
            status.unwrap_or_else(|| none.into()),
            rating.unwrap_or_else(|| none.into())
        ));
        lines.push(format!(
            "Tags: {}",
            if tags.is_empty() {
                none.to_owned()
            } else {
                tags.join(", ")
            }
        ));
        if let Some(segment) = c.segment.as_deref().and_then(Segment::from_key) {
            lines.push(format!(
                "Score: {} ({}) · `score` explains it",
                c.score,
                segment.label(true)
            ));
        }
        if c.pooled_at.is_some() {
            lines.push("🌊 In the pool: `pool` lists it to claim".into());
        }
        if let Some(why) = risk {
            lines.push(format!("⚠️ At risk: {why}"));
        }
        lines.push(if notes.is_empty() {
            "Follow-ups: none yet".into()
        } else {
            "Latest follow-ups:".into()
        });
    } else {
        if !company.is_empty() {
            lines.push(format!("公司：{company}"));
        }
        lines.push(format!("来源：{source}"));
        lines.push(format!(
            "阶段：{} · 状态：{} · 评级：{}",
            stage.unwrap_or_else(|| none.into()),
            status.unwrap_or_else(|| none.into()),
            rating.unwrap_or_else(|| none.into())
        ));
        lines.push(format!(
            "标签：{}",
            if tags.is_empty() {
                none.to_owned()
            } else {
                tags.join("、")
            }
        ));
        if let Some(segment) = c.segment.as_deref().and_then(Segment::from_key) {
            lines.push(format!(
                "评分：{}（{}）· 发「评分」看明细",
                c.score,
                segment.label(false)
            ));
        }
        if c.pooled_at.is_some() {
            lines.push("🌊 在公海中：发「公海」可领取".into());
        }
        if let Some(why) = risk {
            lines.push(format!("⚠️ 流失风险：{why}"));
        }
        lines.push(if notes.is_empty() {
            "跟进记录：暂无".into()
        } else {
            "最近跟进：".into()
        });
    }
    for (note, author) in notes {
        lines.push(format!(
            "· {} {}（{author}）",
            texts::short_day(note.created_at, tz),
            texts::preview(&note.content, 40)
        ));
    }
    if !open.is_empty() {
        lines.push(if lang.en() {
            "Open reminders:".into()
        } else {
            "待办提醒：".into()
        });
        for r in open {
            lines.push(format!("· {} {}", when(r.due_at, tz, lang), r.text));
        }
    }
    lines.join("\n")
}

/// `日报`: a member's figures for today.
pub fn summary(f: &crate::crm::figures::Figures, day_ms: i64, tz: Tz, lang: Lang) -> String {
    let date = local(day_ms, tz);
    if lang.en() {
        format!(
            "📊 Today ({}-{:02}-{:02})\nNew customers: {}\nFollow-ups logged: {}\nReminders done: {} · overdue: {}\nStage moves: {} · wins: {}\nCustomers lost: {}",
            date.year(),
            date.month(),
            date.day(),
            f.new_customers,
            f.follow_ups,
            f.reminders_done,
            f.overdue,
            f.stage_moves,
            f.wins,
            f.lost
        )
    } else {
        format!(
            "📊 今日数据（{}）\n新增客户：{}\n记录跟进：{}\n完成提醒：{} · 逾期：{}\n推进阶段：{} · 赢单：{}\n流失客户：{}",
            texts::day(day_ms, tz),
            f.new_customers,
            f.follow_ups,
            f.reminders_done,
            f.overdue,
            f.stage_moves,
            f.wins,
            f.lost
        )
    }
}
