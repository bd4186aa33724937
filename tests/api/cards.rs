//! One-tap buttons: reminder pushes and the agenda as template cards, a click doing what `完成 n` /
//! `推迟 n …` does — once per card, member and action, whatever WeCom's retries and double clicks —
//! and the card showing what was done, in the click's response or through the API.

use chrono::{Days, TimeZone};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use wecom_scrm::db::entity::reminder::{DeliveryState, ReminderStatus};
use wecom_scrm::db::entity::{audit, card_action};
use wecom_scrm::db::now_ms;
use wecom_scrm::jobs::daily;
use wecom_scrm::texts::{date_start, local, local_date};
use wecom_scrm::wecom::api::MessageBody;
use wecom_scrm::wecom::api::card::TemplateCard;

use crate::helpers::*;

async fn spawn_cards(configure: impl FnOnce(&mut wecom_scrm::config::Config)) -> TestApp {
    spawn_imported(|c| {
        c.jobs.push_reminders = false;
        c.outbox.send = false;
        configure(c);
    })
    .await
}

/// The cards the fake delivered to `userid`, in order.
fn cards_to(app: &TestApp, userid: &str) -> Vec<TemplateCard> {
    app.fake()
        .messages_to(userid)
        .into_iter()
        .filter_map(|m| match m.body {
            MessageBody::TemplateCard { template_card } => Some(*template_card),
            _ => None,
        })
        .collect()
}

/// What the click's response carried: the text of an `update_button` reply.
fn replaced_in_response(response: &wecom_scrm::wecom::fake::CallbackResponse) -> Option<String> {
    assert_eq!(response.status, 200, "{}", response.body);
    response
        .reply
        .as_deref()
        .and_then(wecom_scrm::wecom::fake::update_button_text)
}

/// rep1 taps the button `key` of the card `task_id` (with an option chosen in its list).
async fn tap(
    app: &TestApp,
    task_id: &str,
    key: &str,
    selected: Option<(&str, &str)>,
) -> wecom_scrm::wecom::fake::CallbackResponse {
    let target = app.url("/wecom/callback");
    app.fake()
        .click_card(&target, "rep1", task_id, key, selected)
        .await
        .unwrap()
}

async fn actions_on(app: &TestApp, reminder_id: i64, action: &str) -> u64 {
    audit::Entity::find()
        .filter(audit::Column::Action.eq(action))
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.detail.contains(&format!("\"reminder_id\":{reminder_id}")))
        .count() as u64
}

#[tokio::test]
async fn a_pushed_reminder_is_a_card_whose_done_button_works_once() {
    let app = spawn_cards(|_| {}).await;
    let c1 = customer_id(&app, "wmC1").await;
    app.say("rep1", "记 @张伟 已报价，等审批").await;
    let r = remind(&app, "rep1", Some(c1), "回电话", now_ms() - 1000).await;
    app.drive_deliveries().await;
    assert_eq!(reminder(&app, r.id).await.delivery_state, DeliveryState::Sent);
    let cards = cards_to(&app, "rep1");
    assert_eq!(cards.len(), 1, "{:?}", app.fake().messages_to("rep1"));
    let card = &cards[0];
    assert_eq!(card.card_type, "button_interaction");
    assert_eq!(card.main_title.title, "⏰ 回电话");
    let labels: Vec<&str> = card.button_list.iter().map(|b| b.text.as_str()).collect();
    assert_eq!(labels, ["完成", "1小时后", "明天9点"]);
    let rows: Vec<String> = card
        .horizontal_content_list
        .iter()
        .map(|r| format!("{}={}", r.keyname, r.value))
        .collect();
    assert!(rows.contains(&"客户=张伟(华为)".to_owned()), "{rows:?}");
    assert!(rows.iter().any(|r| r.contains("已报价，等审批")), "{rows:?}");

    // A click, and WeCom's retry of it (its response was lost): one change, the same answer.
    let target = app.url("/wecom/callback");
    let event = app
        .fake()
        .card_click_event("rep1", &card.task_id, &format!("done:{}", r.id), None)
        .unwrap();
    let first = app.fake().deliver_card_click(&target, &event).await.unwrap();
    assert_eq!(replaced_in_response(&first).as_deref(), Some("✅ 已完成"));
    assert_eq!(reminder(&app, r.id).await.status, ReminderStatus::Done);
    assert_eq!(
        app.fake().card_replaced(&card.task_id, "rep1").as_deref(),
        Some("✅ 已完成")
    );
    let retried = app.fake().deliver_card_click(&target, &event).await.unwrap();
    assert_eq!(replaced_in_response(&retried).as_deref(), Some("✅ 已完成"));
    app.settle().await;
    assert_eq!(actions_on(&app, r.id, "reminder.done").await, 1, "done once");
    assert_eq!(
        app.fake().calls("message/update_template_card"),
        0,
        "answered in the response"
    );
    // Nothing else was sent to the rep: the card itself says what was done.
    assert_eq!(app.fake().messages_to("rep1").len(), 1, "only the card");
}

#[tokio::test]
async fn a_double_click_is_applied_once_and_answered_alike() {
    let app = spawn_cards(|_| {}).await;
    let r = remind(&app, "rep1", None, "写周报", now_ms() - 1000).await;
    app.drive_deliveries().await;
    let card = cards_to(&app, "rep1").remove(0);
    let key = format!("hour:{}", r.id);
    // Two clicks before the card was updated: two callbacks with their own response codes.
    let one = app.fake().card_click_event("rep1", &card.task_id, &key, None).unwrap();
    let two = app.fake().card_click_event("rep1", &card.task_id, &key, None).unwrap();
    let target = app.url("/wecom/callback");
    let clicked_at = now_ms();
    let a = app.fake().deliver_card_click(&target, &one).await.unwrap();
    let b = app.fake().deliver_card_click(&target, &two).await.unwrap();
    app.settle().await;
    let (a, b) = (replaced_in_response(&a).unwrap(), replaced_in_response(&b).unwrap());
    assert!(
        a.starts_with("⏰ 已推迟到今天") || a.starts_with("⏰ 已推迟到明天"),
        "{a}"
    );
    assert_eq!(a, b, "the second click is told what the first did");
    assert_eq!(actions_on(&app, r.id, "reminder.snoozed").await, 1);
    let moved = reminder(&app, r.id).await;
    assert_eq!(moved.status, ReminderStatus::Open);
    assert_eq!(moved.delivery_state, DeliveryState::Pending, "pushed again then");
    let hour = 3_600_000;
    assert!(
        (clicked_at + hour - 1000..=now_ms() + hour).contains(&moved.due_at),
        "due an hour after the click"
    );
    assert_eq!(
        card_action::Entity::find().count(&app.db).await.unwrap(),
        1,
        "one action recorded"
    );
}

#[tokio::test]
async fn tomorrow_morning_moves_the_reminder_to_nine_in_the_org_s_zone() {
    let app = spawn_cards(|_| {}).await;
    let r = remind(&app, "rep1", None, "发合同", now_ms() - 1000).await;
    app.drive_deliveries().await;
    let card = cards_to(&app, "rep1").remove(0);
    let response = tap(&app, &card.task_id, &format!("tomorrow:{}", r.id), None).await;
    assert_eq!(
        replaced_in_response(&response).as_deref(),
        Some("⏰ 已推迟到明天 09:00")
    );
    let tz = app.services().tz();
    let due = local(reminder(&app, r.id).await.due_at, tz);
    let tomorrow = local_date(now_ms(), tz) + Days::new(1);
    assert_eq!(
        due,
        tz.from_local_datetime(&tomorrow.and_hms_opt(9, 0, 0).unwrap()).unwrap()
    );
}

#[tokio::test]
async fn reminders_due_together_are_one_card_whose_buttons_act_on_the_one_chosen() {
    let app = spawn_cards(|_| {}).await;
    let c1 = customer_id(&app, "wmC1").await;
    let due = now_ms() - 1000;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(remind(&app, "rep1", Some(c1), &format!("任务{i}"), due).await.id);
    }
    app.drive_deliveries().await;
    let cards = cards_to(&app, "rep1");
    assert_eq!(cards.len(), 1, "merged");
    let card = &cards[0];
    assert_eq!(card.main_title.title, "⏰ 3 条提醒到期");
    let selection = card.button_selection.as_ref().expect("a drop-down list");
    let options: Vec<&str> = selection.option_list.iter().map(|o| o.id.as_str()).collect();
    let expected: Vec<String> = ids.iter().map(i64::to_string).collect();
    assert_eq!(options, expected);
    assert!(selection.option_list[1].text.starts_with("2. 张伟"), "{selection:?}");
    assert!(card.sub_title_text.contains("1. ") && card.sub_title_text.contains("任务2"));
    // The buttons name the first; the choice in the list wins.
    let response = tap(
        &app,
        &card.task_id,
        &card.button_list[0].key,
        Some(("reminder", &ids[1].to_string())),
    )
    .await;
    assert_eq!(replaced_in_response(&response).as_deref(), Some("✅ 已完成 · 任务1"));
    let states: Vec<ReminderStatus> = futures::future::join_all(ids.iter().map(|id| reminder(&app, *id)))
        .await
        .into_iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(
        states,
        [ReminderStatus::Open, ReminderStatus::Done, ReminderStatus::Open]
    );
    // The chat's numbers still work on the same list.
    assert!(app.say("rep1", "完成 3").await.starts_with("✅ 已完成：任务2"));
}

#[tokio::test]
async fn an_answer_that_misses_the_response_updates_the_card_through_the_api() {
    // Nobody waits for answers: the card is updated with the click's response code.
    let app = spawn_cards(|c| c.bot.max_waiting_replies = 0).await;
    let r = remind(&app, "rep1", None, "回访", now_ms() - 1000).await;
    app.drive_deliveries().await;
    let card = cards_to(&app, "rep1").remove(0);
    let event = app
        .fake()
        .card_click_event("rep1", &card.task_id, &format!("done:{}", r.id), None)
        .unwrap();
    let target = app.url("/wecom/callback");
    let response = app.fake().deliver_card_click(&target, &event).await.unwrap();
    assert_eq!(replaced_in_response(&response), None, "acknowledged at once");
    app.wait_until_settled(std::time::Duration::from_secs(10)).await;
    assert_eq!(reminder(&app, r.id).await.status, ReminderStatus::Done);
    assert_eq!(app.fake().calls("message/update_template_card"), 1);
    assert_eq!(
        app.fake().card_replaced(&card.task_id, "rep1").as_deref(),
        Some("✅ 已完成")
    );
    // WeCom retries the click: stored already, answered already — no second update.
    let retried = app.fake().deliver_card_click(&target, &event).await.unwrap();
    assert_eq!(replaced_in_response(&retried), None);
    app.wait_until_settled(std::time::Duration::from_secs(10)).await;
    assert_eq!(app.fake().calls("message/update_template_card"), 1);
    assert_eq!(actions_on(&app, r.id, "reminder.done").await, 1);
    assert!(app.fake().messages_to("rep1").len() == 1, "no chat message about it");
}

#[tokio::test]
async fn a_click_on_someone_else_s_reminder_changes_nothing() {
    let app = spawn_cards(|_| {}).await;
    let r = remind(&app, "rep1", None, "私事", now_ms() - 1000).await;
    app.drive_deliveries().await;
    let card = cards_to(&app, "rep1").remove(0);
    // rep2 forges a click on rep1's card (WeCom would not deliver it; the service must not care).
    let click = wecom_scrm::wecom::compose::CardClickEvent {
        from_user: "rep2",
        task_id: &card.task_id,
        event_key: &format!("done:{}", r.id),
        response_code: "forged-1",
        selected: None,
    };
    let xml = wecom_scrm::wecom::compose::card_click(CORP_ID, &click, AGENT_ID, now_secs());
    let response = app
        .fake()
        .send_callback(&app.url("/wecom/callback"), &xml)
        .await
        .unwrap();
    assert_eq!(replaced_in_response(&response).as_deref(), Some("提醒已不在你的待办中"));
    assert_eq!(reminder(&app, r.id).await.status, ReminderStatus::Open);
}

#[tokio::test]
async fn the_agenda_is_a_card_listing_the_day_with_buttons_in_the_rep_s_language() {
    let app = spawn_cards(|_| {}).await;
    // rep1 chats in English: the card speaks it.
    app.say("rep1", "todo").await;
    let s = app.services();
    let tz = s.tz();
    let tomorrow = local_date(now_ms(), tz) + Days::new(1);
    let morning = date_start(tomorrow, tz) + 9 * 3_600_000;
    let early = remind(&app, "rep1", None, "call the bank", morning + 3_600_000).await;
    let late = remind(&app, "rep1", None, "weekly report", morning + 6 * 3_600_000).await;
    let report = daily::send_agenda(&s, tomorrow, morning).await.unwrap();
    assert_eq!(report.sent, 1);
    s.notifier.deliver_due(&Default::default()).await.unwrap();
    let card = cards_to(&app, "rep1").pop().expect("the agenda card");
    assert_eq!(card.main_title.title, "☀️ Today's to-dos (2)");
    let labels: Vec<&str> = card.button_list.iter().map(|b| b.text.as_str()).collect();
    assert_eq!(labels, ["Done", "In 1 hour", "Tomorrow 9:00"]);
    assert!(card.sub_title_text.starts_with("1. "), "{}", card.sub_title_text);
    let response = tap(
        &app,
        &card.task_id,
        &card.button_list[0].key,
        Some(("reminder", &late.id.to_string())),
    )
    .await;
    assert_eq!(
        replaced_in_response(&response).as_deref(),
        Some("✅ Done · weekly repo…")
    );
    assert_eq!(reminder(&app, late.id).await.status, ReminderStatus::Done);
    assert_eq!(reminder(&app, early.id).await.status, ReminderStatus::Open);
}

#[tokio::test]
async fn with_cards_off_pushes_stay_markdown() {
    let app = spawn_cards(|c| c.jobs.cards = false).await;
    remind(&app, "rep1", None, "回电话", now_ms() - 1000).await;
    app.drive_deliveries().await;
    let sent = app.fake().messages_to("rep1");
    assert!(matches!(sent[0].body, MessageBody::Markdown { .. }), "{sent:?}");
}
