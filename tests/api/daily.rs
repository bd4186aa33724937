//! The sales playbook and the daily pushes: follow-up plans, stale-lead nudges, the morning agenda
//! and the managers' summary — content, and exactly once per recipient and day.

use std::time::Duration;

use chrono::Duration as Days;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use wecom_scrm::crm::audit::Actor;
use wecom_scrm::crm::reminders;
use wecom_scrm::db::entity::{customer, outbox, reminder};
use wecom_scrm::db::now_ms;
use wecom_scrm::jobs::{daily, summary};
use wecom_scrm::sync;
use wecom_scrm::texts::{date_start, local_date};

use crate::cli::{command, output_async};
use wecom_scrm::db::entity::reminder::ReminderStatus;

use crate::helpers::*;
use wecom_scrm::db::entity::inbox::InboxStatus;

const DAY: i64 = 86_400_000;

async fn spawn_synced(configure: impl FnOnce(&mut wecom_scrm::config::Config)) -> TestApp {
    spawn_imported(configure).await
}

async fn open_reminders(app: &TestApp, customer_id: i64) -> Vec<reminder::Model> {
    reminder::Entity::find()
        .filter(reminder::Column::CustomerId.eq(customer_id))
        .filter(reminder::Column::Status.eq("open"))
        .order_by_asc(reminder::Column::DueAt)
        .all(&app.db)
        .await
        .unwrap()
}

/// Puts a customer in `stage` with its last follow-up `days_ago`.
async fn make_quiet(app: &TestApp, id: i64, stage: &str, days_ago: i64) {
    customer::Entity::update_many()
        .col_expr(customer::Column::Stage, Expr::val(stage))
        .col_expr(
            customer::Column::LastFollowUpAt,
            Expr::val(now_ms() - days_ago * DAY - 60_000),
        )
        .filter(customer::Column::Id.eq(id))
        .exec(&app.db)
        .await
        .unwrap();
}

#[tokio::test]
async fn entering_a_status_schedules_its_plan_and_a_new_status_replaces_it() {
    let app = spawn_synced(|_| {}).await;
    let c1 = customer_by_external(&app, "wmC1").await;
    let before = now_ms();
    let reply = app.say("rep1", "状态 @张伟 热").await;
    assert_eq!(
        reply,
        "🔥 状态：热 · 张伟(华为)\n已按跟进计划安排 3 条提醒，发送「待办」查看。"
    );
    let planned = open_reminders(&app, c1.id).await;
    let texts: Vec<&str> = planned.iter().map(|r| r.text.as_str()).collect();
    assert_eq!(texts, ["电话跟进", "发送产品资料", "再次电话跟进"]);
    let hours: Vec<i64> = planned
        .iter()
        .map(|r| (r.due_at - before + 60_000) / 3_600_000)
        .collect();
    assert_eq!(hours, [24, 48, 168], "due after the plan's hours");
    assert!(planned.iter().all(|r| r.owner_userid == "rep1" && r.source == "plan"));

    // A manual reminder survives status changes; the plan's are replaced.
    app.say("rep1", "提醒 @张伟 明天 送样品").await;
    app.say("rep1", "状态 @张伟 有兴趣").await;
    let open: Vec<String> = open_reminders(&app, c1.id).await.into_iter().map(|r| r.text).collect();
    assert_eq!(open.len(), 3, "{open:?}");
    assert!(
        open.contains(&"送样品".to_owned())
            && open.contains(&"了解需求进展".to_owned())
            && open.contains(&"回访".to_owned())
    );

    // Undoing the status takes its plan away with it.
    app.say("rep1", "撤销").await;
    let open: Vec<String> = open_reminders(&app, c1.id).await.into_iter().map(|r| r.text).collect();
    assert_eq!(open, ["送样品"]);
    assert_eq!(
        customer_by_external(&app, "wmC1").await.lead_status.as_deref(),
        Some("hot")
    );

    // A status without a plan only cancels; English works too.
    let reply = app.say("rep1", "status @张伟 on_hold").await;
    assert!(reply.starts_with("🔥 Status: on hold"), "{reply}");
}

#[tokio::test]
async fn a_customer_added_through_a_channel_with_a_plan_gets_it() {
    let app = TestApp::spawn_with_fake(test_fixture(), |c| {
        c.channels = vec![wecom_scrm::config::ChannelSeed {
            state: "expo".into(),
            name: "展会二维码".into(),
            welcome: None,
            plan: Some("hot".into()),
            assign: None,
        }];
    })
    .await;
    sync::sync_org(&app.services(), &Actor::Sync, &mut |_| {})
        .await
        .unwrap();
    let add = add_event("rep1", "wmC1", Some("expo"), None);
    assert_eq!(app.deliver(&add).await.status, InboxStatus::Processed);
    // WeCom retries the same callback: still one plan.
    app.deliver(&add).await;
    let c = customer_by_external(&app, "wmC1").await;
    assert_eq!(c.lead_status.as_deref(), Some("hot"));
    let planned = open_reminders(&app, c.id).await;
    assert_eq!(planned.len(), 3, "{planned:?}");
    assert!(planned.iter().all(|r| r.owner_userid == "rep1"));

    // A customer from a channel without a plan gets none.
    app.deliver(&add_event("rep3", "wmC3", None, None)).await;
    let c3 = customer_by_external(&app, "wmC3").await;
    assert!(c3.lead_status.is_none() && open_reminders(&app, c3.id).await.is_empty());
}

#[tokio::test]
async fn a_stale_lead_reminds_its_owner_then_tells_the_leader_once() {
    let app = spawn_synced(|c| {
        c.stale = vec![wecom_scrm::config::StaleRule {
            stage: String::new(),
            remind_after_days: 7,
            escalate_after_days: 14,
        }];
    })
    .await;
    let s = app.services();
    let c1 = customer_by_external(&app, "wmC1").await;
    let c3 = customer_by_external(&app, "wmC3").await;
    make_quiet(&app, c1.id, "方案报价", 8).await;
    make_quiet(&app, c3.id, "赢单", 30).await; // closed: never stale

    let report = daily::nudge_stale(&s, now_ms()).await.unwrap();
    assert_eq!((report.reminded, report.escalated), (1, 0));
    let nudges = open_reminders(&app, c1.id).await;
    assert_eq!(nudges.len(), 1);
    assert_eq!(nudges[0].text, "8 天未跟进（方案报价），联系一下");
    assert_eq!(
        (nudges[0].owner_userid.as_str(), nudges[0].source.as_str()),
        ("rep1", "stale")
    );
    assert!(open_reminders(&app, c3.id).await.is_empty());

    // Another run (another instance, a restart) the same quiet spell: nothing new.
    let again = daily::nudge_stale(&s, now_ms()).await.unwrap();
    assert_eq!((again.reminded, again.escalated), (0, 0));

    // Two weeks quiet: the leader hears of it, once.
    make_quiet(&app, c1.id, "方案报价", 15).await;
    let report = daily::nudge_stale(&s, now_ms()).await.unwrap();
    assert_eq!(
        (report.reminded, report.escalated),
        (1, 1),
        "a new spell started earlier: reminded again"
    );
    daily::nudge_stale(&s, now_ms()).await.unwrap();
    app.wait_for_notifications().await;
    let to_leader = texts_to(&app, "lead1");
    assert_eq!(
        to_leader,
        ["🕒 张伟(华为) 已 15 天没有跟进（方案报价，负责人 张三），请督促。"]
    );

    // A follow-up ends the spell.
    app.say("rep1", "记 @张伟 电话沟通了").await;
    let report = daily::nudge_stale(&s, now_ms()).await.unwrap();
    assert_eq!((report.reminded, report.escalated), (0, 0));
}

#[tokio::test]
async fn the_morning_agenda_lists_todays_and_overdue_reminders_once_numbered() {
    // The markdown form; the card form is in `cards.rs`.
    let app = spawn_synced(|c| c.jobs.cards = false).await;
    let s = app.services();
    let tz = s.tz();
    let tomorrow = local_date(now_ms(), tz) + Days::days(1);
    let morning = date_start(tomorrow, tz) + 9 * 3_600_000;
    let c1 = customer_by_external(&app, "wmC1").await;
    let create = |owner: &'static str, customer: Option<i64>, text: &'static str, due: i64| {
        let db = app.db.clone();
        async move {
            reminders::create(
                &db,
                owner,
                &Actor::Member(owner.into()),
                customer,
                text,
                due,
                "manual",
                now_ms(),
            )
            .await
            .unwrap()
        }
    };
    let overdue = create("rep1", Some(c1.id), "回电话", morning - DAY - 2 * 3_600_000).await;
    let later = create("rep1", None, "写周报", morning + 6 * 3_600_000).await;
    let early = create("rep1", Some(c1.id), "发报价", morning + 3_600_000).await;
    create("rep1", None, "下周的事", morning + 3 * DAY).await;
    create("rep2", None, "后天的事", morning + 2 * DAY).await;

    // Two instances at the same moment: one agenda per rep.
    let (a, b) = tokio::join!(
        daily::send_agenda(&s, tomorrow, morning),
        daily::send_agenda(&s, tomorrow, morning)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.sent + b.sent, 1, "{a:?} {b:?}");
    app.wait_for_notifications().await;
    let agenda = texts_to(&app, "rep1");
    assert_eq!(agenda.len(), 1, "{agenda:?}");
    let text = &agenda[0];
    assert!(text.starts_with("**☀️ 早上好，今天的待办（3）**"), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    let first = lines.iter().position(|l| l.starts_with("1. ")).unwrap();
    assert_eq!(lines[first - 1], "逾期：", "{text}");
    assert!(
        lines[first].ends_with("· 张伟 · 回电话") && lines[first].contains("逾期"),
        "{text}"
    );
    assert_eq!(lines[first + 1], "今天：", "{text}");
    assert!(
        lines[first + 2].starts_with("2. ") && lines[first + 2].contains("发报价"),
        "{text}"
    );
    assert!(
        lines[first + 3].starts_with("3. ") && lines[first + 3].contains("写周报"),
        "{text}"
    );
    assert!(!text.contains("下周的事"));
    assert!(text.contains("回复「完成 序号」"), "{text}");
    assert!(texts_to(&app, "rep2").is_empty(), "nothing due: no agenda");

    // The numbers answer the agenda.
    assert_eq!(app.say("rep1", "完成 2").await, "✅ 已完成：发报价 · 张伟");
    let done = reminder::Entity::find_by_id(early.id)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.status, ReminderStatus::Done);
    for id in [overdue.id, later.id] {
        let r = reminder::Entity::find_by_id(id).one(&app.db).await.unwrap().unwrap();
        assert_eq!(r.status, ReminderStatus::Open);
    }

    // A later run the same day (a restart) sends nothing more.
    let again = daily::send_agenda(&s, tomorrow, morning + 3_600_000).await.unwrap();
    assert_eq!((again.sent, again.already_sent), (0, 1));
}

async fn busy_day(app: &TestApp) {
    app.say("rep1", "记 @张伟 已报价，等审批").await;
    app.say("rep1", "记 @刘洋 约了下周见面").await;
    app.say("rep1", "阶段 @张伟 赢单").await;
    app.say("rep2", "记 @刘洋 发了资料").await;
    // 陈静 deletes 王五: lost, and at risk.
    app.deliver(&contact_event("del_follow_user", "rep3", "wmC3")).await;
    app.wait_for_notifications().await;
}

#[tokio::test]
async fn each_leader_gets_one_summary_of_their_team() {
    let app = spawn_synced(|_| {}).await;
    busy_day(&app).await;
    let before: usize = app.fake().messages().len();
    let s = app.services();
    let today = local_date(now_ms(), s.tz());
    let report = summary::send(&s, today, None, now_ms()).await.unwrap();
    let mut sent = report.sent.clone();
    sent.sort();
    assert_eq!(sent, ["boss", "lead1", "lead2"]);
    app.wait_for_notifications().await;

    let lead1: Vec<String> = texts_to(&app, "lead1")
        .into_iter()
        .filter(|t| t.contains("销售日报"))
        .collect();
    assert_eq!(lead1.len(), 1, "{lead1:?}");
    let text = &lead1[0];
    assert!(
        text.starts_with("**📊 销售日报 · ") && text.lines().next().unwrap().ends_with("· 销售一部**"),
        "{text}"
    );
    assert!(text.contains("> 记录跟进 3（前一日 0 · 7日均 0.0）"), "{text}");
    assert!(text.contains("> 赢单 1（前一日 0 · 7日均 0.0）"), "{text}");
    assert!(text.contains("> 张三：跟进 2 · 推进 1 · 赢单 1"), "{text}");
    assert!(text.contains("> 李四：跟进 1"), "{text}");
    assert!(text.contains("无动态：李经理"), "{text}");
    assert!(!text.contains("王五"), "another department: {text}");

    let lead2 = texts_to(&app, "lead2")
        .into_iter()
        .find(|t| t.contains("销售日报"))
        .unwrap();
    assert!(lead2.contains("> 王五：流失 1"), "{lead2}");
    assert!(
        lead2.contains("**⚠️ 流失风险（1）**") && lead2.contains("> 陈静(阿里巴巴) · 王五 · 客户删除了王五"),
        "{lead2}"
    );

    let boss = texts_to(&app, "boss")
        .into_iter()
        .find(|t| t.contains("销售日报"))
        .unwrap();
    assert!(
        boss.contains("> 记录跟进 3") && boss.contains("王五") && boss.contains("张三"),
        "{boss}"
    );
    assert!(
        boss.contains("**各部门**\n> 销售一部：跟进 3 · 推进 1 · 赢单 1\n> 销售二部：流失 1\n"),
        "{boss}"
    );
    assert!(
        !text.contains("各部门"),
        "a leaf department has no department lines: {text}"
    );

    // Again (another instance, a restart, the command line): nothing more.
    let again = summary::send(&s, today, None, now_ms()).await.unwrap();
    assert!(again.sent.is_empty() && again.already_sent.len() == 3, "{again:?}");
    app.wait_for_notifications().await;
    assert_eq!(app.fake().messages().len(), before + 3);
    let keys: Vec<String> = outbox::Entity::find()
        .filter(outbox::Column::DedupeKey.starts_with("summary:"))
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.dedupe_key)
        .collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert!(keys.contains(&format!("summary:lead1:{today}:1")));
}

#[tokio::test]
async fn a_leader_asks_for_the_team_summary_in_chat_and_a_rep_gets_their_own() {
    let app = spawn_synced(|_| {}).await;
    busy_day(&app).await;
    let team = app.say("lead1", "日报").await;
    assert!(
        team.starts_with("📊 销售日报 · ") && team.contains("销售一部"),
        "{team}"
    );
    assert!(
        team.contains("· 张三：跟进 2 · 推进 1 · 赢单 1"),
        "plain text, no markdown: {team}"
    );
    assert!(!team.contains("**"), "{team}");
    let english = app.say("lead1", "summary").await;
    assert!(
        english.contains("Team totals") && english.contains("张三: follow-ups 2"),
        "{english}"
    );
    let own = app.say("rep1", "日报").await;
    assert!(own.starts_with("📊 今日数据") && own.contains("记录跟进：2"), "{own}");
}

#[tokio::test]
async fn summary_send_from_the_command_line_sends_once_or_prints() {
    let app = spawn_synced(|_| {}).await;
    busy_day(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let mut cmd = command(&app.test_db, &dir);
        cmd.env("SCRM_WECOM__API_BASE", app.fake().url())
            .arg("summary")
            .arg("send")
            .args(args);
        output_async(cmd)
    };
    let before = app.fake().messages().len();
    let (code, stdout, stderr) = run(&["--to", "lead1", "--dry-run"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("── to lead1 ──\n**📊 销售日报"), "{stdout}");
    assert!(stdout.contains("> 张三：跟进 2 · 推进 1 · 赢单 1"), "{stdout}");
    assert_eq!(app.fake().messages().len(), before, "a dry run sends nothing");

    let (code, stdout, stderr) = run(&["--to", "lead1"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.trim(), "lead1: sent (1 message)");
    assert_eq!(
        texts_to(&app, "lead1")
            .iter()
            .filter(|t| t.contains("销售日报"))
            .count(),
        1
    );
    let (code, stdout, _) = run(&["--to", "lead1"]).await;
    assert_eq!(code, 0);
    let today = local_date(now_ms(), app.services().tz());
    assert_eq!(stdout.trim(), format!("lead1: already sent for {today}"));
    assert_eq!(
        texts_to(&app, "lead1")
            .iter()
            .filter(|t| t.contains("销售日报"))
            .count(),
        1
    );

    // A past date has its own summary; bad input is refused clearly.
    let yesterday = (today - Days::days(1)).to_string();
    let (code, stdout, _) = run(&["--to", "lead2", "--date", &yesterday]).await;
    assert_eq!((code, stdout.trim()), (0, "lead2: sent (1 message)"));
    let (code, _, stderr) = run(&["--to", "rep1"]).await;
    assert_eq!(code, 2);
    assert!(stderr.contains("rep1 不是部门负责人"), "{stderr}");
    let (code, _, stderr) = run(&["--date", "22/11/2026"]).await;
    assert_eq!(code, 2);
    assert!(stderr.contains("--date must look like"), "{stderr}");
}

#[tokio::test]
async fn two_instances_on_schedule_send_one_agenda_and_one_summary_each() {
    let app = spawn_synced(|_| {}).await;
    busy_day(&app).await;
    let c1 = customer_by_external(&app, "wmC1").await;
    reminders::create(
        &app.db,
        "rep1",
        &Actor::Member("rep1".into()),
        Some(c1.id),
        "回电话",
        now_ms() - DAY,
        "manual",
        now_ms(),
    )
    .await
    .unwrap();
    let mut config = app.config.clone();
    config.jobs.enabled = true;
    config.jobs.agenda_time = "00:00".into();
    config.jobs.summary_time = "00:00".into();
    config.jobs.workdays = (1..=7).collect();
    let first = TestApp::start_real(app.test_db.share(), config.clone()).await;
    let second = TestApp::start_real(app.test_db.share(), config).await;
    let summaries = |userid: &str| {
        texts_to(&app, userid)
            .into_iter()
            .filter(|t| t.contains("销售日报"))
            .count()
    };
    let agendas = |userid: &str| {
        texts_to(&app, userid)
            .into_iter()
            .filter(|t| t.contains("今天的待办"))
            .count()
    };
    let arrived = wait_for(Duration::from_secs(20), || async {
        (summaries("lead1") > 0 && summaries("lead2") > 0 && summaries("boss") > 0 && agendas("rep1") > 0).then_some(())
    })
    .await;
    assert!(arrived.is_some(), "the scheduled summary and agenda arrive");
    // Nothing left in flight that could arrive as a second copy.
    app.wait_for_notifications().await;
    for leader in ["lead1", "lead2", "boss"] {
        assert_eq!(summaries(leader), 1, "{leader}");
    }
    assert_eq!(agendas("rep1"), 1);
    assert_eq!(agendas("rep2"), 0);
    assert_eq!(app.fake().suppressed_duplicates(), 0);
    // `status` tells what went out (these instances push no reminders, hence exit 1).
    let dir = tempfile::tempdir().unwrap();
    let mut status = command(&app.test_db, &dir);
    status.arg("status");
    let (_, stdout, _) = output_async(status).await;
    let today = local_date(now_ms(), app.services().tz());
    assert!(
        stdout.contains(&format!("agenda: last sent for {today} to 1 rep")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("summary: last sent for {today} to 3 recipients")),
        "{stdout}"
    );
    drop((first, second));
}
