//! Chat commands end to end: a member's message goes through the fake WeCom as an encrypted
//! callback, the service answers (in the response, or through the message API), and the database
//! is checked.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use wecom_scrm::crm::audit::Actor;
use wecom_scrm::db::entity::{audit, customer, follow_up, inbox, reminder};
use wecom_scrm::sync;
use wecom_scrm::wecom::compose;

use wecom_scrm::db::entity::reminder::{DeliveryState, ReminderStatus};

use crate::helpers::*;
use wecom_scrm::db::entity::inbox::InboxStatus;

/// The test org with its customers imported, plus two customers of rep1 both named 李明.
async fn spawn_with(configure: impl FnOnce(&mut wecom_scrm::config::Config)) -> TestApp {
    let mut fixture = test_fixture();
    fixture
        .external_contacts
        .push(contact("wmC5", "李明", "小米", &[("rep1", "李总", "")]));
    fixture
        .external_contacts
        .push(contact("wmC6", "李明", "京东", &[("rep1", "", "")]));
    let app = TestApp::spawn_with_fake(fixture, configure).await;
    let s = app.services();
    sync::sync_org(&s, &Actor::Sync, &mut |_| {}).await.unwrap();
    sync::sync_customers(&s, &mut |_| {}).await.unwrap();
    app
}

async fn spawn() -> TestApp {
    spawn_with(|_| {}).await
}

async fn notes_on(app: &TestApp, external: &str) -> Vec<String> {
    let id = customer_id(app, external).await;
    follow_up::Entity::find()
        .filter(follow_up::Column::CustomerId.eq(id))
        .filter(follow_up::Column::DeletedAt.is_null())
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.content)
        .collect()
}

async fn reminders_of(app: &TestApp, userid: &str) -> Vec<reminder::Model> {
    reminder::Entity::find()
        .filter(reminder::Column::OwnerUserid.eq(userid))
        .all(&app.db)
        .await
        .unwrap()
}

fn shanghai() -> chrono_tz::Tz {
    chrono_tz::Asia::Shanghai
}

#[tokio::test]
async fn help_in_chinese_and_english() {
    let app = spawn().await;
    let zh = app.say("rep1", "帮助").await;
    assert!(zh.starts_with("可用命令") && zh.contains("记 [@客户] <内容>"), "{zh}");
    // Every command is listed, and the list is not cut at WeCom's length limit.
    assert!(zh.contains("公海 [关键字]") && zh.ends_with("看例子。"), "{zh}");
    let en = app.say("rep1", "/HELP").await;
    assert!(
        en.starts_with("Commands") && en.contains("note [@customer] <text>"),
        "{en}"
    );
    assert!(en.contains("claim <n>") && en.ends_with("for examples."), "{en}");
    let one = app.say("rep1", "帮助 提醒").await;
    assert!(one.contains("提醒 明天下午3点 回电话"), "{one}");
    assert!(app.say("rep1", "?").await.starts_with("Commands"));
}

#[tokio::test]
async fn notes_go_to_the_named_current_or_leading_customer() {
    let app = spawn().await;
    assert_eq!(
        app.say("rep1", "记 @张伟 已报价，等审批").await,
        "✅ 已记录跟进 · 张伟(华为)"
    );
    // 张伟 is now current: the next note needs no name.
    assert_eq!(
        app.say("rep1", "跟进 明天带样品拜访").await,
        "✅ 已记录跟进 · 张伟(华为)"
    );
    assert_eq!(notes_on(&app, "wmC1").await, vec!["已报价，等审批", "明天带样品拜访"]);

    // A name at the start of the text, for a member with no current customer.
    assert_eq!(app.say("rep2", "记 刘洋 电话沟通了需求").await, "✅ 已记录跟进 · 刘洋");
    assert_eq!(notes_on(&app, "wmC2").await, vec!["电话沟通了需求"]);
    // Neither named nor current: asked, not guessed.
    let asked = app.say("rep3", "记 约了下周见面").await;
    assert!(asked.contains("哪位客户"), "{asked}");
    // English in, English out; a remark or pinyin finds the customer too.
    assert_eq!(
        app.say("rep1", "note @zhangwei sent the quote").await,
        "✅ Follow-up saved · 张伟(华为)"
    );
    assert_eq!(
        app.say("rep2", "NOTE @刘哥 called back").await,
        "✅ Follow-up saved · 刘洋"
    );
}

#[tokio::test]
async fn ambiguity_is_asked_and_answered_by_number() {
    let app = spawn().await;
    let asked = app.say("rep1", "记 @李明 已报价").await;
    assert!(asked.starts_with("有 2 位客户符合「李明」"), "{asked}");
    assert!(asked.contains("1. 李明(") && asked.contains("2. 李明("), "{asked}");
    let second = if asked.contains("2. 李明(京东)") {
        "wmC6"
    } else {
        "wmC5"
    };
    let saved = app.say("rep1", "2").await;
    assert!(saved.starts_with("✅ 已记录跟进 · 李明("), "{saved}");
    assert_eq!(notes_on(&app, second).await, vec!["已报价"]);
    // The remark tells them apart without asking.
    assert_eq!(app.say("rep1", "记 @李总 见面").await, "✅ 已记录跟进 · 李明(小米)");
    // An exact name wins over a longer one that merely starts the same.
    assert_eq!(app.say("rep1", "记 @张伟 ok").await, "✅ 已记录跟进 · 张伟(华为)");
    // A number out of range keeps the question open.
    app.say("rep1", "记 @李明 再联系").await;
    assert_eq!(app.say("rep1", "5").await, "请回复 1 到 2 之间的序号。");
    assert!(app.say("rep1", "1").await.starts_with("✅ 已记录跟进"));
}

#[tokio::test]
async fn reminders_on_customers_and_personal_ones() {
    let app = spawn().await;
    let at = Utc.with_ymd_and_hms(2030, 12, 5, 7, 0, 0).unwrap().timestamp_millis();
    let answer = app.say("rep1", "提醒 @张伟 2030-12-05 15:00 回电话").await;
    assert_eq!(
        answer,
        format!(
            "⏰ 提醒已设置：{} · 张伟 · 回电话",
            wecom_scrm::texts::day_time(at, shanghai())
        )
    );
    assert_eq!(answer, "⏰ 提醒已设置：12月5日 周四 15:00 · 张伟 · 回电话");
    let personal = app.say("rep2", "提醒 in 2h 看邮件").await;
    assert!(
        personal.starts_with("⏰ 提醒已设置：") && personal.ends_with(" · 看邮件") && !personal.contains("刘洋"),
        "{personal}"
    );
    let english = app.say("rep3", "remind @陈静 2030-12-05 15:00 send the contract").await;
    assert_eq!(english, "⏰ Reminder set: Thu Dec 5 15:00 · 陈静 · send the contract");

    let r1 = reminders_of(&app, "rep1").await;
    assert_eq!((r1.len(), r1[0].due_at, r1[0].text.as_str()), (1, at, "回电话"));
    assert_eq!(r1[0].customer_id, Some(customer_id(&app, "wmC1").await));
    assert_eq!(reminders_of(&app, "rep2").await[0].customer_id, None);

    let past = app.say("rep1", "提醒 @张伟 昨天下午3点 回电话").await;
    assert_eq!(past, "这个时间已经过去了，请换一个将来的时间。");
    let nonsense = app.say("rep1", "提醒 @张伟 回电话").await;
    assert!(nonsense.starts_with("没看懂时间"), "{nonsense}");
    assert_eq!(
        reminders_of(&app, "rep1").await.len(),
        1,
        "nothing stored for a wrong time"
    );
}

#[tokio::test]
async fn reminders_asked_for_the_way_reps_ask_and_never_stored_wrong() {
    let app = spawn().await;
    let spoken = app.say("rep2", "提醒我 10分钟后 给刘洋回电话").await;
    assert!(
        spoken.starts_with("⏰ 提醒已设置：") && spoken.ends_with(" · 给刘洋回电话"),
        "{spoken}"
    );
    let glued = app.say("rep2", "提醒我明天下午３点发报价").await;
    assert!(glued.contains("15:00") && glued.ends_with(" · 发报价"), "{glued}");
    let english = app.say("rep2", "remind me in 1 minute to test push").await;
    assert!(
        english.starts_with("⏰ Reminder set: ") && english.ends_with(" · test push"),
        "{english}"
    );
    let texts: Vec<String> = reminders_of(&app, "rep2").await.into_iter().map(|r| r.text).collect();
    assert_eq!(texts.len(), 3, "{texts:?}");
    for text in ["给刘洋回电话", "发报价", "test push"] {
        assert!(texts.iter().any(|t| t == text), "{text} in {texts:?}");
    }
    let note = app.say("rep2", "帮我记 @刘洋 说下周签").await;
    assert!(note.starts_with("✅ 已记录跟进"), "{note}");

    // Two times: nothing is stored, and the answer says why.
    let two = app.say("rep2", "提醒 3小时后 下午2点 回电话").await;
    assert!(
        two.contains("「下午2点」也像是时间") && two.contains("没有保存"),
        "{two}"
    );
    assert_eq!(reminders_of(&app, "rep2").await.len(), 3);
}

#[tokio::test]
async fn todo_done_snooze_and_cancel_by_number() {
    let app = spawn().await;
    // One overdue reminder (set directly: a due time in the past cannot be chosen in chat).
    let now = wecom_scrm::db::now_ms();
    wecom_scrm::crm::reminders::create(
        &app.db,
        "rep1",
        &Actor::Member("rep1".into()),
        None,
        "交周报",
        now - 2 * 3_600_000,
        "manual",
        now,
    )
    .await
    .unwrap();
    app.say("rep1", "提醒 @张伟 3天后 回电话").await;
    app.say("rep1", "提醒 @刘洋 5天后 发资料").await;
    app.say("rep1", "提醒 2030-12-05 9点 年度计划").await;

    let todo = app.say("rep1", "待办").await;
    let lines: Vec<&str> = todo.lines().collect();
    assert_eq!(lines[0], "📋 待办（3）", "{todo}");
    assert_eq!(lines[1], "逾期：");
    assert!(
        lines[2].starts_with("1. ") && lines[2].contains("交周报（逾期 2小时）"),
        "{todo}"
    );
    assert_eq!(lines[3], "接下来 7 天：");
    assert!(
        lines[4].starts_with("2. ") && lines[4].contains(" · 张伟 · 回电话"),
        "{todo}"
    );
    assert!(
        lines[5].starts_with("3. ") && lines[5].contains(" · 刘洋 · 发资料"),
        "{todo}"
    );
    assert!(!todo.contains("年度计划"), "beyond 7 days");

    assert_eq!(app.say("rep1", "完成 1").await, "✅ 已完成：交周报");
    assert_eq!(
        app.say("rep1", "完成 2 已回电，下周签约").await,
        "✅ 已完成：回电话 · 张伟，并记录了跟进"
    );
    assert_eq!(notes_on(&app, "wmC1").await, vec!["已回电，下周签约"]);
    let moved = app.say("rep1", "推迟 3 2030-12-06 10点").await;
    assert_eq!(moved, "⏰ 已推迟到 12月6日 周五 10:00：发资料 · 刘洋");
    assert_eq!(app.say("rep1", "完成 1").await, "第 1 条提醒已经完成或取消了。");

    let todo = app.say("rep1", "todo").await;
    assert!(todo.starts_with("🎉"), "nothing within 7 days any more: {todo}");
    // Numbers refer to the last list shown.
    let all = app.say("rep1", "取消 2").await;
    assert_eq!(all, "先发送「待办」查看提醒，再用序号操作。");
    let rows = reminders_of(&app, "rep1").await;
    let by_text = |t: &str| rows.iter().find(|r| r.text == t).unwrap().clone();
    assert_eq!(by_text("交周报").status, ReminderStatus::Done);
    assert_eq!(by_text("回电话").status, ReminderStatus::Done);
    assert_eq!(by_text("发资料").status, ReminderStatus::Open);
    assert_eq!(
        by_text("发资料").delivery_state,
        DeliveryState::Pending,
        "a snooze re-arms the push"
    );
}

#[tokio::test]
async fn stage_status_rating_and_tags_with_undo() {
    let app = spawn().await;
    app.say("rep1", "选 张伟").await;
    assert_eq!(
        app.say("rep1", "阶段 方案报价").await,
        "📈 阶段：未设置 → 方案报价 · 张伟(华为)"
    );
    assert_eq!(
        app.say("rep1", "stage negotiation").await,
        "📈 Stage: 方案报价 → 商务谈判 · 张伟(华为)"
    );
    let wrong = app.say("rep1", "阶段 随便").await;
    assert!(
        wrong.starts_with("没有「随便」这个阶段。可选：1.初步接触 2.需求确认"),
        "{wrong}"
    );
    assert_eq!(
        app.say("rep1", "状态 热").await,
        "🔥 状态：热 · 张伟(华为)\n已按跟进计划安排 3 条提醒，发送「待办」查看。"
    );
    assert_eq!(
        app.say("rep1", "status on_hold").await,
        "🔥 Status: on hold · 张伟(华为)"
    );
    assert_eq!(
        app.say("rep1", "评级 a").await,
        "⭐ 评级：A（一个月内购买）· 张伟(华为)"
    );
    assert_eq!(
        app.say("rep1", "标签 重点客户").await,
        "🏷️ 已添加标签「重点客户」· 张伟(华为)"
    );
    assert_eq!(app.say("rep1", "标签 华东").await, "🏷️ 已添加标签「华东」· 张伟(华为)");
    assert_eq!(app.say("rep1", "标签 -华东").await, "🏷️ 已移除标签「华东」· 张伟(华为)");
    let c = customer::Entity::find_by_id(customer_id(&app, "wmC1").await)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (c.stage.as_deref(), c.lead_status.as_deref(), c.rating.as_deref()),
        (Some("商务谈判"), Some("on_hold"), Some("A"))
    );
    assert_eq!(c.tags, r#"["重点客户"]"#);

    // Undo walks back one step at a time.
    assert_eq!(
        app.say("rep1", "撤销").await,
        "↩️ 已撤销修改：标签恢复为「重点客户, 华东」"
    );
    assert_eq!(app.say("rep1", "撤销").await, "↩️ 已撤销修改：标签恢复为「重点客户」");
    assert_eq!(app.say("rep1", "撤销").await, "↩️ 已撤销修改：标签恢复为「未设置」");
    assert_eq!(app.say("rep1", "撤销").await, "↩️ 已撤销修改：评级恢复为「未设置」");
    app.say("rep1", "记 已签意向书").await;
    assert_eq!(app.say("rep1", "undo").await, "↩️ Follow-up removed: 已签意向书");
    assert!(notes_on(&app, "wmC1").await.is_empty());
    app.say("rep1", "提醒 3天后 寄合同").await;
    assert_eq!(app.say("rep1", "撤销").await, "↩️ 已撤销提醒：寄合同");
    assert_eq!(reminders_of(&app, "rep1").await[0].status, ReminderStatus::Cancelled);
    let c = customer::Entity::find_by_id(customer_id(&app, "wmC1").await)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((c.rating, c.tags.as_str()), (None, "[]"));

    // Only within the window: age everything by an hour.
    audit::Entity::update_many()
        .col_expr(
            audit::Column::At,
            sea_orm::sea_query::Expr::val(wecom_scrm::db::now_ms() - 3_600_000),
        )
        .exec(&app.db)
        .await
        .unwrap();
    assert_eq!(
        app.say("rep1", "撤销").await,
        "没有可撤销的操作（只能撤销 10 分钟内的上一步）。"
    );
}

#[tokio::test]
async fn find_use_and_the_customer_card() {
    let app = spawn().await;
    let found = app.say("rep1", "查 zw").await;
    assert!(
        found.starts_with("🔍 找到 1 位客户：\n1. 张伟(华为) · 备注：张总-华为采购 13800000001"),
        "{found}"
    );
    assert!(app.say("rep1", "1").await.starts_with("👉 当前客户：张伟(华为)"));
    app.say("rep1", "阶段 需求确认").await;
    app.say("rep1", "记 第一次拜访，对方关注交付周期").await;
    app.say("rep1", "提醒 2030-12-05 15:00 回电话").await;
    let card = app.say("rep1", "详情").await;
    assert!(card.starts_with("👤 张伟(华为)"), "{card}");
    assert!(card.contains("来源：expo"), "{card}");
    assert!(card.contains("阶段：需求确认 · 状态：未设置 · 评级：未设置"), "{card}");
    assert!(card.contains("第一次拜访，对方关注交付周期（张三）"), "{card}");
    assert!(card.contains("待办提醒：\n· 12月5日 周四 15:00 回电话"), "{card}");
    let card = app.say("rep1", "info @刘洋").await;
    assert!(card.starts_with("👤 刘洋\nSource: 未标记来源\nStage: —"), "{card}");
    assert!(app.say("rep1", "查 不存在的人").await.starts_with("没有找到"));
}

#[tokio::test]
async fn leaders_may_look_at_their_teams_customers_but_not_change_them() {
    let app = spawn().await;
    assert!(
        app.say("rep1", "详情 @陈静").await.starts_with("没有找到"),
        "another team's customer is invisible"
    );
    let card = app.say("lead2", "详情 @陈静").await;
    assert!(card.starts_with("👤 陈静(阿里巴巴)"), "{card}");
    assert!(app.say("lead2", "查 陈").await.contains("1. 陈静(阿里巴巴)"));
    assert_eq!(
        app.say("lead2", "记 @陈静 我来跟").await,
        "陈静(阿里巴巴) 不是你跟进的客户，你只能查看，不能修改。"
    );
    assert!(notes_on(&app, "wmC3").await.is_empty());
    assert!(
        app.say("boss", "详情 @陈静").await.starts_with("👤 陈静"),
        "the boss sees sub-departments"
    );
}

#[tokio::test]
async fn plain_text_offers_to_save_it_as_a_note() {
    let app = spawn().await;
    let hint = app.say("rep1", "今天约了客户喝咖啡").await;
    assert_eq!(hint, "没看懂这条消息。发送「帮助」查看命令，例如：记 @张伟 已报价");
    app.say("rep1", "选 刘洋").await;
    let offer = app.say("rep1", "客户说预算下个月批").await;
    assert_eq!(offer, "没看懂这条消息。要把它记为 刘洋 的跟进吗？回复 1 保存。");
    assert_eq!(app.say("rep1", "1").await, "✅ 已记录跟进 · 刘洋");
    assert_eq!(notes_on(&app, "wmC2").await, vec!["客户说预算下个月批"]);
    assert_eq!(
        app.say("rep1", "hello").await,
        "That is not a command. Save it as a follow-up on 刘洋? Reply 1."
    );
}

#[tokio::test]
async fn free_text_that_names_a_time_offers_a_reminder_too() {
    let app = spawn().await;
    // A customer of mine named at the start; the time in the middle.
    let offer = app.say("rep1", "张伟说周五上午10点再确认一下价格").await;
    assert!(
        offer.starts_with("没看懂这条消息。要记到 张伟(华为) 名下吗？\n1 记为跟进\n2 记为跟进，并在 "),
        "{offer}"
    );
    assert!(offer.contains("10:00 提醒：张伟说再确认一下价格"), "{offer}");
    let saved = app.say("rep1", "2").await;
    assert!(
        saved.starts_with("✅ 已记录跟进 · 张伟(华为)\n⏰ 提醒已设置："),
        "{saved}"
    );
    assert_eq!(notes_on(&app, "wmC1").await, vec!["张伟说周五上午10点再确认一下价格"]);
    let reminders = reminders_of(&app, "rep1").await;
    assert_eq!(reminders.len(), 1);
    assert_eq!(reminders[0].text, "张伟说再确认一下价格");
    assert_eq!(reminders[0].customer_id, Some(customer_id(&app, "wmC1").await));

    // "1" keeps only the note.
    app.say("rep1", "选 刘洋").await;
    let offer = app.say("rep1", "customer will call back tomorrow 3pm").await;
    assert!(offer.contains("\n2 save it and remind me "), "{offer}");
    assert_eq!(app.say("rep1", "1").await, "✅ Follow-up saved · 刘洋");
    assert_eq!(reminders_of(&app, "rep1").await.len(), 1);
}

#[tokio::test]
async fn messages_from_outsiders_are_ignored() {
    let app = spawn().await;
    let inner = compose::text_message(CORP_ID, "stranger", "记 @张伟 hi", next_msg_id(), AGENT_ID, now_secs());
    assert_eq!(app.say_raw("stranger", &inner).await, None);
    app.fake().set_member_status("rep2", 5);
    wecom_scrm::events::apply_departure(&app.services(), "rep2", wecom_scrm::db::now_ms(), &Actor::Sync)
        .await
        .unwrap();
    let inner = compose::text_message(CORP_ID, "rep2", "待办", next_msg_id(), AGENT_ID, now_secs());
    assert_eq!(
        app.say_raw("rep2", &inner).await,
        None,
        "a departed member gets no answer"
    );
    let rows = app.inbox_rows().await;
    assert!(rows.iter().all(|r| r.status == InboxStatus::Ignored), "{rows:#?}");
}

#[tokio::test]
async fn retries_of_the_same_message_run_the_command_once_and_get_the_same_answer() {
    let app = spawn().await;
    let inner = compose::text_message(
        CORP_ID,
        "rep1",
        "记 @张伟 只记一次",
        next_msg_id(),
        AGENT_ID,
        now_secs(),
    );
    let first = app.say_raw("rep1", &inner).await;
    assert_eq!(first.as_deref(), Some("✅ 已记录跟进 · 张伟(华为)"));
    for _ in 0..2 {
        let again = app
            .fake()
            .send_callback(&app.url("/wecom/callback"), &inner)
            .await
            .unwrap();
        let content = again.reply.map(|r| {
            wecom_scrm::wecom::xml::parse_fields(&r)
                .unwrap()
                .get("Content")
                .unwrap()
                .to_owned()
        });
        assert_eq!(content, first, "a retry gets the answer its first delivery carried");
    }
    assert_eq!(notes_on(&app, "wmC1").await, vec!["只记一次"]);
    let row = inbox::Entity::find().one(&app.db).await.unwrap().unwrap();
    assert_eq!(row.reply_mode.as_deref(), Some("passive"));
    // Replaying the stored row (e.g. `inbox retry`) does not run the command again either.
    wecom_scrm::inbox::retry(&app.db, wecom_scrm::inbox::RetryTarget::Id(row.id))
        .await
        .unwrap();
    app.wait_until_settled(Duration::from_secs(10)).await;
    assert_eq!(notes_on(&app, "wmC1").await, vec!["只记一次"]);
    assert!(app.fake().messages_to("rep1").is_empty(), "and sends nothing more");
}

#[tokio::test]
async fn a_slow_answer_goes_through_the_message_api_exactly_once() {
    // A budget of zero: no command is fast enough for the response.
    let app = spawn_with(|c| c.bot.reply_budget_ms = 0).await;
    let inner = compose::text_message(CORP_ID, "rep1", "记 @张伟 慢一点", next_msg_id(), AGENT_ID, now_secs());
    let answer = app
        .fake()
        .send_callback(&app.url("/wecom/callback"), &inner)
        .await
        .unwrap();
    assert_eq!((answer.status, answer.reply), (200, None));
    app.wait_until_settled(Duration::from_secs(10)).await;
    app.wait_for_notifications().await;
    let sent: Vec<String> = app
        .fake()
        .messages_to("rep1")
        .iter()
        .map(|m| m.body.display_text())
        .collect();
    assert_eq!(sent, vec!["✅ 已记录跟进 · 张伟(华为)".to_owned()]);
    // WeCom retries: the answer is not sent again, in the response or otherwise.
    let again = app
        .fake()
        .send_callback(&app.url("/wecom/callback"), &inner)
        .await
        .unwrap();
    assert_eq!(again.reply, None);
    app.wait_for_notifications().await;
    assert_eq!(app.fake().messages_to("rep1").len(), 1);
    let row = inbox::Entity::find().one(&app.db).await.unwrap().unwrap();
    assert_eq!(row.reply_mode.as_deref(), Some("message"));
}

#[tokio::test]
async fn the_session_follows_the_member_across_instances() {
    let app = spawn().await;
    app.say("rep1", "选 张伟").await;
    // A second instance on the same database and cache answers the next message.
    let other = TestApp::start_real(app.test_db.share(), app.config.clone()).await;
    let inner = compose::text_message(CORP_ID, "rep1", "记 换了个实例", next_msg_id(), AGENT_ID, now_secs());
    let answer = app
        .fake()
        .send_callback(&other.url("/wecom/callback"), &inner)
        .await
        .unwrap();
    // Either instance's worker may take the row; the answer comes back in the response or, from
    // the other instance, through the message API.
    let content = match answer.reply {
        Some(r) => Some(
            wecom_scrm::wecom::xml::parse_fields(&r)
                .unwrap()
                .get("Content")
                .unwrap()
                .to_owned(),
        ),
        None => {
            other.wait_until_settled(Duration::from_secs(10)).await;
            other.wait_for_notifications().await;
            app.fake().messages_to("rep1").last().map(|m| m.body.display_text())
        }
    };
    if app.config.redis.is_configured() {
        assert_eq!(
            content.as_deref(),
            Some("✅ 已记录跟进 · 张伟(华为)"),
            "the current customer is in Redis"
        );
        assert_eq!(notes_on(&app, "wmC1").await, vec!["换了个实例"]);
    } else {
        // The in-process cache belongs to one instance: the other asks which customer is meant.
        assert!(content.unwrap().contains("哪位客户"));
    }
}

#[tokio::test]
async fn the_daily_figures_of_a_rep() {
    let app = spawn().await;
    app.say("rep1", "记 @张伟 拜访").await;
    app.say("rep1", "记 @刘洋 电话").await;
    app.say("rep1", "阶段 @张伟 赢单").await;
    app.say("rep1", "提醒 @张伟 in 1 min 回访").await;
    app.say("rep1", "待办").await;
    app.say("rep1", "完成 1").await;
    let summary = app.say("rep1", "日报").await;
    assert!(summary.starts_with("📊 今日数据（"), "{summary}");
    assert!(summary.contains("记录跟进：2"), "{summary}");
    assert!(summary.contains("完成提醒：1 · 逾期：0"), "{summary}");
    assert!(summary.contains("推进阶段：1 · 赢单：1"), "{summary}");
    let english = app.say("rep1", "summary").await;
    assert!(english.contains("Follow-ups logged: 2"), "{english}");
    let follow_ups = follow_up::Entity::find().count(&app.db).await.unwrap();
    assert_eq!(follow_ups, 2);
}

#[tokio::test]
async fn a_receive_only_instance_stores_and_another_processes() {
    let app = spawn_with(|c| c.inbox.process = false).await;
    let inner = compose::text_message(
        CORP_ID,
        "rep1",
        "记 @张伟 分层部署",
        next_msg_id(),
        AGENT_ID,
        now_secs(),
    );
    let answer = app
        .fake()
        .send_callback(&app.url("/wecom/callback"), &inner)
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.reply, None, "a receiving instance does not wait for an answer");
    // A real wait: the point is that no worker here picks it up, given the time to.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let row = inbox::Entity::find().one(&app.db).await.unwrap().expect("stored");
    assert_eq!(row.status, InboxStatus::Pending, "nobody processes it here");
    assert!(notes_on(&app, "wmC1").await.is_empty());

    let mut config = app.config.clone();
    config.inbox.process = true;
    let processing = TestApp::start_real(app.test_db.share(), config).await;
    processing.wait_until_settled(Duration::from_secs(10)).await;
    processing.wait_for_notifications().await;
    assert_eq!(notes_on(&app, "wmC1").await, vec!["分层部署"]);
    let sent = app.fake().messages_to("rep1");
    assert_eq!(sent.len(), 1, "answered once, through the message API");
    assert_eq!(sent[0].body.display_text(), "✅ 已记录跟进 · 张伟(华为)");
}

#[tokio::test]
async fn a_leader_asks_about_the_team_in_chat() {
    let app = spawn().await;
    let now = wecom_scrm::db::now_ms();
    let c1 = customer_id(&app, "wmC1").await;
    remind(&app, "rep1", Some(c1), "回电话", now - 2 * 3_600_000).await;
    remind(&app, "rep2", None, "交周报", now - 26 * 3_600_000).await;
    remind(&app, "rep3", None, "别的部门的事", now - 3_600_000).await;
    app.say("rep1", "记 @张伟 已报价，等审批").await;

    assert!(
        app.say("rep1", "团队待办").await.contains("部门负责人"),
        "a rep leads no one"
    );
    let todo = app.say("lead1", "团队待办").await;
    assert!(
        todo.starts_with("⏰ 团队逾期提醒（2）\n1. 李四 · 逾期 26小时 · 交周报"),
        "{todo}"
    );
    assert!(
        todo.contains("2. 张三 · 逾期 2小时 · 张伟 · 回电话") && !todo.contains("别的部门"),
        "{todo}"
    );
    let english = app.say("lead1", "team todo").await;
    assert!(english.starts_with("⏰ The team's overdue reminders (2)"), "{english}");

    let idle = app.say("lead1", "谁没跟进").await;
    assert!(idle.contains("今天还没记跟进（1）：李四"), "{idle}");
    let day = app.say("lead1", "张三 今天").await;
    assert!(
        day.starts_with("👤 张三 今天\n") && day.contains("记录跟进：1") && day.contains("已报价，等审批"),
        "{day}"
    );
    // Someone else's team member is no question of theirs: plain text.
    let other = app.say("lead2", "张三 今天").await;
    assert!(other.starts_with("没看懂这条消息"), "{other}");
}
