//! Pushing due reminders: the content, merging, the per-member limit, exactly once across instances
//! and crashes, re-routing, and the dispatcher's health.

use std::time::Duration;

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use wecom_scrm::crm::audit::Actor;
use wecom_scrm::crm::reminders::{self, Change};
use wecom_scrm::db::entity::outbox::MessageState;
use wecom_scrm::db::entity::reminder::{DeliveryState, ReminderStatus};
use wecom_scrm::db::entity::{customer, outbox, reminder};
use wecom_scrm::db::now_ms;
use wecom_scrm::jobs::reminder_push::Dispatcher;
use wecom_scrm::notify::{Payload, Prepared};

use crate::helpers::*;

async fn spawn_pushing(configure: impl FnOnce(&mut wecom_scrm::config::Config)) -> TestApp {
    spawn_imported(|c| {
        c.jobs.push_reminders = true;
        c.jobs.poll_interval_ms = 100;
        configure(c);
    })
    .await
}

/// Waits until the reminders reach `state`.
async fn wait_state(app: &TestApp, ids: &[i64], state: DeliveryState) {
    let reached = wait_for(Duration::from_secs(15), || async {
        let rows = reminder::Entity::find()
            .filter(reminder::Column::Id.is_in(ids.to_vec()))
            .all(&app.db)
            .await
            .unwrap();
        rows.iter().all(|r| r.delivery_state == state).then_some(())
    })
    .await;
    assert!(reached.is_some(), "reminders {ids:?} did not become {state:?}");
}

#[tokio::test]
async fn a_due_reminder_is_pushed_once_with_its_context_and_answered_by_number() {
    // The markdown form (`jobs.cards = false`); the card form is in `cards.rs`.
    let app = spawn_pushing(|c| {
        c.jobs.push_reminders = false;
        c.outbox.send = false;
        c.jobs.cards = false;
    })
    .await;
    let c1 = customer_id(&app, "wmC1").await;
    app.say("rep1", "阶段 @张伟 方案报价").await;
    app.say("rep1", "记 @张伟 已报价，等审批").await;
    let r = remind(&app, "rep1", Some(c1), "回电话", now_ms() - 1000).await;
    app.drive_deliveries().await;
    assert_eq!(reminder(&app, r.id).await.delivery_state, DeliveryState::Sent);
    let pushed = texts_to(&app, "rep1");
    assert_eq!(pushed.len(), 1, "{pushed:?}");
    let text = &pushed[0];
    assert!(text.starts_with("**⏰ 提醒：回电话**"), "{text}");
    assert!(text.contains("> 客户：张伟(华为) · 阶段：方案报价"), "{text}");
    assert!(text.contains("已报价，等审批"), "the last follow-up: {text}");
    assert!(text.contains("回复「完成 1」，或「推迟 1 明天9点」"), "{text}");
    assert!(!text.contains("逾期"), "on time: {text}");
    let sent = reminder(&app, r.id).await;
    assert!(sent.msgid.as_deref().is_some_and(|m| m.starts_with("fake-msg-")) && sent.sent_at.is_some());
    assert!(
        app.fake().messages()[0].duplicate_check,
        "sent with WeCom's duplicate check"
    );
    // "完成 1" answers the push.
    assert_eq!(app.say("rep1", "完成 1").await, "✅ 已完成：回电话 · 张伟");
    assert_eq!(reminder(&app, r.id).await.status, ReminderStatus::Done);
    app.drive_deliveries().await;
    assert_eq!(texts_to(&app, "rep1").len(), 1, "pushed once");
}

#[tokio::test]
async fn reminders_due_together_are_merged_per_rep() {
    let app = spawn_pushing(|c| {
        c.jobs.merge_max = 4;
        c.jobs.cards = false;
    })
    .await;
    let c1 = customer_id(&app, "wmC1").await;
    // All fall due at the same instant, a moment after they were written (so one round claims
    // them all); reminders due together go out in the order they were set.
    let due = now_ms() + 1500;
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(remind(&app, "rep1", Some(c1), &format!("任务{i}"), due).await.id);
    }
    ids.push(remind(&app, "rep2", None, "个人事项", due).await.id);
    wait_state(&app, &ids, DeliveryState::Sent).await;
    let to_rep1 = texts_to(&app, "rep1");
    assert_eq!(to_rep1.len(), 2, "6 reminders, 4 per message: {to_rep1:?}");
    assert!(to_rep1[0].starts_with("**⏰ 4 条提醒到期**\n1. "), "{}", to_rep1[0]);
    assert!(
        to_rep1[0].contains("张伟(华为) · 任务0") && to_rep1[0].contains("4. "),
        "{}",
        to_rep1[0]
    );
    assert!(to_rep1[1].starts_with("**⏰ 2 条提醒到期**"), "{}", to_rep1[1]);
    assert_eq!(texts_to(&app, "rep2").len(), 1);
    // The numbers of the last push are the rep's list.
    assert!(app.say("rep1", "完成 2").await.starts_with("✅ 已完成：任务5"));
}

#[tokio::test]
async fn no_rep_is_sent_more_than_the_per_member_limit() {
    let app = spawn_pushing(|c| {
        c.jobs.push_reminders = false;
        c.outbox.send = false;
        c.jobs.merge_max = 1;
        c.wecom.messages_per_user_per_minute = 3;
    })
    .await;
    let now = now_ms();
    for i in 0..8 {
        remind(&app, "rep3", None, &format!("事项{i}"), now - 1000).await;
    }
    app.drive_deliveries().await;
    assert_eq!(texts_to(&app, "rep3").len(), 3, "the rest wait for the member's window");
    let waiting = outbox::Entity::find()
        .filter(outbox::Column::Status.eq(MessageState::Pending))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(waiting.len(), 5);
    assert!(
        waiting.iter().all(|m| m.next_attempt_at > now_ms() + 30_000),
        "scheduled for when the window frees up"
    );
    assert!(
        waiting.iter().all(|m| m.attempts == 0 && m.last_error.is_none()),
        "waiting is not failing"
    );
}

#[tokio::test]
async fn done_snoozed_and_cancelled_reminders_never_fire_and_a_snooze_re_arms() {
    let app = spawn_pushing(|c| {
        c.jobs.push_reminders = false;
        c.outbox.send = false;
    })
    .await;
    let past = now_ms() - 60_000;
    let done = remind(&app, "rep1", None, "已完成的", past + 10_000_000).await;
    let cancelled = remind(&app, "rep1", None, "已取消的", past + 10_000_000).await;
    let snoozed = remind(&app, "rep1", None, "推迟的", past + 10_000_000).await;
    let actor = Actor::Member("rep1".into());
    reminders::change(&app.db, done.id, Change::Done, &actor, now_ms())
        .await
        .unwrap();
    reminders::change(&app.db, cancelled.id, Change::Cancel, &actor, now_ms())
        .await
        .unwrap();
    // Their times come (set directly): still nothing fires.
    reminder::Entity::update_many()
        .col_expr(reminder::Column::DueAt, Expr::val(past))
        .exec(&app.db)
        .await
        .unwrap();
    app.drive_deliveries().await;
    let pushed = texts_to(&app, "rep1");
    assert_eq!(pushed.len(), 1, "only the open one: {pushed:?}");
    assert!(pushed[0].contains("推迟的"));
    assert_eq!(reminder(&app, snoozed.id).await.delivery_state, DeliveryState::Sent);
    // A snooze to a time already come re-arms it: pushed again.
    reminders::change(&app.db, snoozed.id, Change::Snooze(now_ms() - 10), &actor, now_ms())
        .await
        .unwrap();
    app.drive_deliveries().await;
    assert_eq!(reminder(&app, snoozed.id).await.delivery_state, DeliveryState::Sent);
    assert_eq!(texts_to(&app, "rep1").len(), 2);
    assert_eq!(reminder(&app, done.id).await.delivery_state, DeliveryState::Pending);
    assert_eq!(
        reminder(&app, cancelled.id).await.delivery_state,
        DeliveryState::Pending
    );
}

#[tokio::test]
async fn overdue_reminders_go_out_at_start_saying_how_late() {
    // Written while no instance was pushing (downtime), then an instance starts.
    let app = spawn_pushing(|c| c.jobs.push_reminders = false).await;
    let r = remind(
        &app,
        "rep1",
        Some(customer_id(&app, "wmC2").await),
        "发资料",
        now_ms() - 2 * 3_600_000 - 60_000,
    )
    .await;
    let (db, mut config) = app.stop().await;
    config.jobs.push_reminders = true;
    let fake = wecom_scrm::wecom::fake::FakeWecom::start_local(test_fixture())
        .await
        .unwrap();
    config.wecom.api_base = fake.url();
    let restarted = TestApp::start_real(db, config).await;
    let sent = wait_for(Duration::from_secs(10), || async {
        (reminder(&restarted, r.id).await.delivery_state == DeliveryState::Sent).then_some(())
    })
    .await;
    assert!(sent.is_some());
    let pushed = fake.messages_to("rep1");
    assert!(
        pushed[0].body.display_text().contains("（逾期 2小时）"),
        "{:?}",
        pushed[0].body
    );
}

#[tokio::test]
async fn a_stale_push_is_dropped_and_its_valid_reminders_rewritten() {
    // The test drives the dispatcher and the sender itself.
    let app = spawn_pushing(|c| {
        c.jobs.push_reminders = false;
        c.outbox.send = false;
    })
    .await;
    let a = remind(&app, "rep1", None, "甲", now_ms() - 1000).await;
    let b = remind(&app, "rep1", None, "乙", now_ms() - 1000).await;
    let dispatcher = Dispatcher::new(app.services(), "test-dispatcher".into());
    let claimed = dispatcher.claim_due().await.unwrap();
    assert_eq!(dispatcher.queue_claimed(claimed).await.unwrap(), 2);
    let queued = reminder(&app, a.id).await;
    assert_eq!(queued.delivery_state, DeliveryState::Queued);
    assert_eq!(
        queued.outbox_id,
        reminder(&app, b.id).await.outbox_id,
        "one merged push"
    );
    // Between queueing and sending, the rep completed one of them.
    reminders::change(&app.db, a.id, Change::Done, &Actor::Member("rep1".into()), now_ms())
        .await
        .unwrap();
    app.services().notifier.deliver_due(&Default::default()).await.unwrap();
    let row = outbox::Entity::find_by_id(queued.outbox_id.unwrap())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, MessageState::Dropped);
    assert!(app.fake().messages().is_empty());
    let rewritten = reminder(&app, b.id).await;
    assert_eq!(
        rewritten.delivery_state,
        DeliveryState::Pending,
        "to be written again without 甲"
    );
    assert_eq!(rewritten.outbox_id, None);
    // The next round pushes 乙 alone.
    dispatcher.round().await.unwrap();
    app.services().notifier.deliver_due(&Default::default()).await.unwrap();
    let pushed = texts_to(&app, "rep1");
    assert_eq!(pushed.len(), 1, "{pushed:?}");
    assert!(pushed[0].contains("乙") && !pushed[0].contains("甲"), "{pushed:?}");
    assert_eq!(reminder(&app, b.id).await.delivery_state, DeliveryState::Sent);
}

#[tokio::test]
async fn a_refused_recipient_has_reminders_rerouted_to_the_owner_or_failed() {
    let app = spawn_pushing(|c| c.outbox.max_attempts = 1).await;
    // rep2 follows 刘洋 but rep1 owns the customer; rep2 is disabled in WeCom (not yet synced here).
    let c2 = customer_id(&app, "wmC2").await;
    assert_eq!(
        customer::Entity::find_by_id(c2)
            .one(&app.db)
            .await
            .unwrap()
            .unwrap()
            .owner_userid
            .as_deref(),
        Some("rep1")
    );
    app.fake().set_member_status("rep2", 2);
    let on_customer = remind(&app, "rep2", Some(c2), "回访", now_ms() - 1000).await;
    let personal = remind(&app, "rep2", None, "交报销", now_ms() - 1000).await;
    wait_state(&app, &[personal.id], DeliveryState::Failed).await;
    let failed = reminder(&app, personal.id).await;
    assert!(
        failed.last_error.unwrap().contains("cannot receive"),
        "the reason is kept"
    );
    wait_state(&app, &[on_customer.id], DeliveryState::Sent).await;
    let rerouted = reminder(&app, on_customer.id).await;
    assert_eq!(rerouted.owner_userid, "rep1");
    assert!(texts_to(&app, "rep1").iter().any(|t| t.contains("回访")));
    // The failure shows in the rep's to-do list.
    app.fake().set_member_status("rep2", 1);
    let todo = app.say("rep2", "待办").await;
    assert!(
        todo.contains("交报销（逾期") && todo.contains("（推送失败：rep2 cannot receive app messages"),
        "{todo}"
    );
}

#[tokio::test]
async fn a_crash_between_the_push_and_its_record_does_not_push_twice() {
    let app = spawn_pushing(|c| {
        c.jobs.push_reminders = false;
        c.outbox.send = false;
    })
    .await;
    let r = remind(&app, "rep1", None, "只推一次", now_ms() - 1000).await;
    let dispatcher = Dispatcher::new(app.services(), "test-dispatcher".into());
    dispatcher.round().await.unwrap();
    // Another instance claimed the push, sent it, and died before recording the send.
    let dead = TestApp::start_real(app.test_db.share(), app.config.clone()).await;
    let notifier = dead.services().notifier.clone();
    let claimed = notifier.claim(None).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let Prepared::Ready(ready) = notifier.prepare(claimed[0].clone()).await.unwrap() else {
        panic!("the push may go")
    };
    let attempted = notifier.attempt(ready).await;
    drop(attempted);
    drop(dead);
    assert_eq!(app.fake().messages_to("rep1").len(), 1, "WeCom delivered it");
    // Its lease runs out; this instance takes the push over and sends it again.
    outbox::Entity::update_many()
        .col_expr(outbox::Column::LockedUntil, Expr::val(now_ms() - 1))
        .exec(&app.db)
        .await
        .unwrap();
    app.services().notifier.deliver_due(&Default::default()).await.unwrap();
    assert_eq!(app.fake().messages_to("rep1").len(), 1, "WeCom delivered it once");
    assert_eq!(
        app.fake().suppressed_duplicates(),
        1,
        "the resend was recognised as the same message"
    );
    assert_eq!(reminder(&app, r.id).await.delivery_state, DeliveryState::Sent);
    let interval = app.fake().messages()[0].duplicate_check_interval;
    assert_eq!(
        interval,
        Some(app.services().notifier.duplicate_window().as_secs()),
        "the duplicate check covers the whole retry horizon"
    );
}

#[tokio::test]
async fn two_instances_push_every_reminder_exactly_once() {
    let app = spawn_pushing(|c| c.jobs.push_reminders = false).await;
    let now = now_ms();
    let mut ids = Vec::new();
    for i in 0..240 {
        let owner = ["rep1", "rep2", "rep3", "lead1", "lead2"][i % 5];
        ids.push(
            remind(&app, owner, None, &format!("#{i}"), now - 1000 - i as i64)
                .await
                .id,
        );
    }
    // Two instances start pushing the same backlog at the same moment.
    let mut config = app.config.clone();
    config.jobs.push_reminders = true;
    config.jobs.claim_batch = 7;
    config.jobs.merge_max = 3;
    let first = TestApp::start_real(app.test_db.share(), config.clone()).await;
    let second = TestApp::start_real(app.test_db.share(), config).await;
    wait_state(&app, &ids, DeliveryState::Sent).await;
    // Nothing left in flight that could still arrive as a duplicate.
    app.wait_for_notifications().await;
    // Every reminder in exactly one delivered message; nothing suppressed, nothing missing.
    let sent: Vec<outbox::Model> = outbox::Entity::find()
        .filter(outbox::Column::Status.eq(MessageState::Sent))
        .all(&app.db)
        .await
        .unwrap();
    let mut seen: Vec<i64> = sent
        .iter()
        .flat_map(|m| {
            serde_json::from_str::<Payload>(&m.body)
                .unwrap()
                .reminders
                .into_iter()
                .map(|r| r.id)
        })
        .collect();
    seen.sort_unstable();
    let mut expected = ids.clone();
    expected.sort_unstable();
    assert_eq!(seen, expected, "each reminder in exactly one message");
    assert_eq!(app.fake().messages().len(), sent.len(), "each message delivered once");
    assert_eq!(app.fake().suppressed_duplicates(), 0);
    drop((first, second));
}

#[tokio::test]
async fn the_dispatcher_health_shows_in_readyz_metrics_and_status() {
    let app = spawn_pushing(|_| {}).await;
    let r = remind(&app, "rep1", None, "健康检查", now_ms() - 1000).await;
    wait_state(&app, &[r.id], DeliveryState::Sent).await;
    let ready: serde_json::Value = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["dispatcher"], "ok");
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("# TYPE scrm_reminders_sent counter\nscrm_reminders_sent_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("scrm_reminders_due 0") && metrics.contains("scrm_reminders_lag_seconds 0"),
        "{metrics}"
    );
    assert!(metrics.contains("scrm_dispatcher_idle_seconds 0"), "{metrics}");
    assert!(
        metrics.contains("scrm_reminder_push_delay_seconds_count 1") && metrics.ends_with("# EOF\n"),
        "a histogram of push delays, in OpenMetrics: {metrics}"
    );

    // The status command sees this instance's heartbeat.
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = crate::cli::output_async(status_command(&app.test_db, &dir)).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("dispatcher ") && stdout.contains("(ok)") && stdout.contains("status: ok"),
        "{stdout}"
    );
}

fn status_command(db: &TestDb, dir: &tempfile::TempDir) -> std::process::Command {
    let mut cmd = crate::cli::command(db, dir);
    cmd.arg("status");
    cmd
}

#[tokio::test]
async fn readyz_fails_when_the_dispatcher_stops_completing_rounds() {
    // One round at start, then none for a minute: stale after a second.
    let app = spawn_pushing(|c| {
        c.jobs.poll_interval_ms = 60_000;
        c.jobs.stale_after_secs = 1;
    })
    .await;
    let stale = wait_for(Duration::from_secs(5), || async {
        let response = app.client.get(app.url("/readyz")).send().await.unwrap();
        (response.status() == 503).then_some(response)
    })
    .await
    .expect("readyz turns 503");
    let body: serde_json::Value = stale.json().await.unwrap();
    assert!(
        body["dispatcher"]
            .as_str()
            .unwrap()
            .starts_with("error: no round completed for"),
        "{body}"
    );
    // And `status` says so, with exit code 1 once the heartbeat is old.
    wecom_scrm::db::entity::kv_state::Entity::update_many()
        .col_expr(
            wecom_scrm::db::entity::kv_state::Column::UpdatedAt,
            Expr::val(now_ms() - 600_000),
        )
        .exec(&app.db)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = crate::cli::output_async(status_command(&app.test_db, &dir)).await;
    assert_eq!(code, 1);
    assert!(
        stdout.contains("STALE") && stderr.contains("no reminder dispatcher completed a round"),
        "{stdout}{stderr}"
    );
}
