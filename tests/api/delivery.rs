//! One regression test per road by which a push was lost, stuck or repeated before deliveries became
//! one state machine: a re-routed push colliding with its failed one, a hand-over while queued, an
//! outcome recorded apart from its reminders, a resend outside WeCom's duplicate window or after
//! the lease ran out, identical messages swallowed by WeCom's duplicate check, a merge too long for WeCom, the per-member limit with the cache down, the
//! dispatcher's heartbeat during a long pass, `summary send` sending more than its own, and
//! deliveries stuck unnoticed. The tests drive the dispatcher and the sender themselves.

use std::time::Duration;

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use wecom_scrm::db::entity::outbox::{self, MessageState};
use wecom_scrm::db::entity::reminder::{self, DeliveryState};
use wecom_scrm::db::now_ms;
use wecom_scrm::jobs::reminder_push::Dispatcher;
use wecom_scrm::notify::{self, Payload, Prepared};
use wecom_scrm::wecom::api::{MAX_CONTENT_BYTES, MessageBody};

use crate::cli::{command, output_async};
use crate::helpers::*;

/// An app whose deliveries run only when the test drives them.
async fn spawn_driven(configure: impl FnOnce(&mut wecom_scrm::config::Config)) -> TestApp {
    spawn_imported(|c| {
        c.jobs.push_reminders = false;
        c.outbox.send = false;
        configure(c);
    })
    .await
}

async fn messages(app: &TestApp) -> Vec<outbox::Model> {
    outbox::Entity::find()
        .order_by_asc(outbox::Column::Id)
        .all(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_refused_reps_reminder_is_re_routed_as_a_new_push_and_sent_to_the_owner() {
    let app = spawn_driven(|c| c.outbox.max_attempts = 1).await;
    // rep2 follows 刘洋, whom rep1 owns; rep2 has just left (WeCom refuses them: 81013) and the
    // org sync has not run yet.
    let c2 = customer_id(&app, "wmC2").await;
    app.fake().set_member_status("rep2", 5);
    let r = remind(&app, "rep2", Some(c2), "回访刘洋", now_ms() - 1000).await;
    app.drive_deliveries().await;
    let sent = reminder(&app, r.id).await;
    assert_eq!(sent.delivery_state, DeliveryState::Sent, "{sent:?}");
    assert_eq!(sent.owner_userid, "rep1");
    let pushes = messages(&app).await;
    assert_eq!(pushes.len(), 2, "the refused push and a new one: {pushes:#?}");
    assert_eq!(
        (pushes[0].recipient.as_str(), pushes[0].status),
        ("rep2", MessageState::Failed)
    );
    assert_eq!(
        (pushes[1].recipient.as_str(), pushes[1].status),
        ("rep1", MessageState::Sent)
    );
    assert_ne!(pushes[0].dedupe_key, pushes[1].dedupe_key);
    let to_rep1 = texts_to(&app, "rep1");
    assert_eq!(
        to_rep1.iter().filter(|t| t.contains("回访刘洋")).count(),
        1,
        "{to_rep1:?}"
    );
}

#[tokio::test]
async fn a_hand_over_while_a_push_is_queued_sends_it_once_to_the_successor() {
    let app = spawn_driven(|c| c.inbox.process = false).await;
    let r = remind(&app, "rep1", None, "交周报", now_ms() - 1000).await;
    let dispatcher = Dispatcher::new(app.services(), "test".into());
    dispatcher.round().await.unwrap();
    assert_eq!(reminder(&app, r.id).await.delivery_state, DeliveryState::Queued);
    // rep1 leaves before the push went out; WeCom tells us (change_contact / delete_user), and their
    // open reminders go to their leader.
    app.fake().set_member_status("rep1", 5);
    let event = wecom_scrm::wecom::compose::contact_event(CORP_ID, "delete_user", "rep1", now_secs());
    let answer = app
        .fake()
        .send_callback(&app.url("/wecom/callback"), &event)
        .await
        .unwrap();
    assert_eq!(answer.status, 200);
    app.settle().await;
    let moved = reminder(&app, r.id).await;
    assert_eq!(
        (moved.owner_userid.as_str(), moved.delivery_state),
        ("lead1", DeliveryState::Sent)
    );
    let pushes = messages(&app).await;
    let to_rep1 = pushes.iter().find(|m| m.recipient == "rep1").unwrap();
    assert_eq!(to_rep1.status, MessageState::Dropped, "the stale push is not sent");
    let to_lead1 = texts_to(&app, "lead1");
    assert_eq!(
        to_lead1.iter().filter(|t| t.contains("交周报")).count(),
        1,
        "{to_lead1:?}"
    );
    assert!(
        to_lead1.iter().any(|t| t.contains("已离职")),
        "the successor is told: {to_lead1:?}"
    );
    assert!(texts_to(&app, "rep1").is_empty());
}

#[tokio::test]
async fn the_sweeper_repairs_deliveries_left_inconsistent_and_counts_them() {
    let app = spawn_driven(|_| {}).await;
    // As an older version could leave them: a push recorded sent while its reminder stayed queued
    // (a crash between the two writes), and a reminder queued with no message at all.
    let delivered = remind(&app, "rep1", None, "已送达", now_ms() - 1000).await;
    let stranded = remind(&app, "rep3", None, "无消息", now_ms() - 1000).await;
    let ids = notify::enqueue(&app.db, "legacy", "rep1", &MessageBody::text("已送达"))
        .await
        .unwrap();
    outbox::Entity::update_many()
        .col_expr(outbox::Column::Status, Expr::val(MessageState::Sent))
        .col_expr(outbox::Column::Msgid, Expr::val("legacy-msgid"))
        .col_expr(outbox::Column::SentAt, Expr::val(now_ms()))
        .exec(&app.db)
        .await
        .unwrap();
    for (id, message) in [(delivered.id, Some(ids[0])), (stranded.id, None)] {
        reminder::Entity::update_many()
            .col_expr(reminder::Column::DeliveryState, Expr::val(DeliveryState::Queued))
            .col_expr(reminder::Column::OutboxId, Expr::val(message))
            .filter(reminder::Column::Id.eq(id))
            .exec(&app.db)
            .await
            .unwrap();
    }
    app.drive_deliveries().await;
    let repaired = reminder(&app, delivered.id).await;
    assert_eq!(repaired.delivery_state, DeliveryState::Sent);
    assert_eq!(repaired.msgid.as_deref(), Some("legacy-msgid"));
    assert!(texts_to(&app, "rep1").is_empty(), "not pushed again");
    assert_eq!(reminder(&app, stranded.id).await.delivery_state, DeliveryState::Sent);
    assert_eq!(texts_to(&app, "rep3").len(), 1, "the stranded one is pushed, once");
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("scrm_deliveries_repaired_total 2"), "{metrics}");
}

#[tokio::test]
async fn a_sender_whose_lease_ran_out_sends_nothing_and_the_new_holder_sends_once() {
    let app = spawn_driven(|_| {}).await;
    remind(&app, "rep1", None, "租约", now_ms() - 1000).await;
    Dispatcher::new(app.services(), "test".into()).round().await.unwrap();
    // A slow instance claimed the push; WeCom kept it waiting past its lease.
    let slow = TestApp::start_real(app.test_db.share(), app.config.clone()).await;
    let claimed = slow.services().notifier.claim(None).await.unwrap();
    assert_eq!(claimed.len(), 1);
    outbox::Entity::update_many()
        .col_expr(outbox::Column::LockedUntil, Expr::val(now_ms() - 1))
        .exec(&app.db)
        .await
        .unwrap();
    app.drive_deliveries().await;
    assert_eq!(texts_to(&app, "rep1").len(), 1);
    // The slow instance now checks its lease before sending: it gives up.
    let outcome = slow.services().notifier.prepare(claimed[0].clone()).await.unwrap();
    assert!(matches!(outcome, Prepared::LeaseLost), "{outcome:?}");
    assert_eq!(texts_to(&app, "rep1").len(), 1, "sent once");
}

#[tokio::test]
async fn a_resend_beyond_wecoms_duplicate_window_is_not_made_and_the_push_fails_with_the_reason() {
    let app = spawn_driven(|_| {}).await;
    let r = remind(&app, "rep1", None, "窗口", now_ms() - 1000).await;
    Dispatcher::new(app.services(), "test".into()).round().await.unwrap();
    // Its first attempt was long ago (a sender died after it, and nobody took over for hours):
    // WeCom would no longer recognise a resend as the same message.
    let window = app.services().notifier.duplicate_window();
    outbox::Entity::update_many()
        .col_expr(
            outbox::Column::FirstAttemptAt,
            Expr::val(now_ms() - window.as_millis() as i64),
        )
        .col_expr(
            outbox::Column::AttemptedAt,
            Expr::val(now_ms() - window.as_millis() as i64),
        )
        .exec(&app.db)
        .await
        .unwrap();
    app.drive_deliveries().await;
    assert!(app.fake().messages().is_empty(), "not resent");
    let failed = reminder(&app, r.id).await;
    assert_eq!(failed.delivery_state, DeliveryState::Failed);
    assert!(
        failed.last_error.as_deref().unwrap().contains("could deliver it twice"),
        "{failed:?}"
    );
}

#[tokio::test]
async fn a_merge_too_long_for_wecom_goes_out_in_parts_numbered_as_one_list() {
    let app = spawn_driven(|c| {
        c.jobs.merge_max = 10;
        c.jobs.cards = false;
    })
    .await;
    let due = now_ms() - 1000;
    let mut ids = Vec::new();
    for i in 1..=10 {
        let text = format!("第{i}件：{}", "请准备详细的报价方案并与客户确认交付时间".repeat(6));
        ids.push(remind(&app, "rep1", None, &text, due).await.id);
    }
    app.drive_deliveries().await;
    let pushed = texts_to(&app, "rep1");
    assert!(pushed.len() > 1, "split: {} part(s)", pushed.len());
    for (i, text) in pushed.iter().enumerate() {
        assert!(text.len() <= MAX_CONTENT_BYTES, "part {i}: {} bytes", text.len());
        assert!(
            text.starts_with(&format!("**⏰ 10 条提醒到期（{}/{}）**", i + 1, pushed.len())),
            "{text}"
        );
    }
    let all = pushed.join("\n");
    for i in 1..=10 {
        assert_eq!(all.matches(&format!("\n{i}. ")).count(), 1, "item {i} once: {all}");
    }
    for id in &ids {
        assert_eq!(reminder(&app, *id).await.delivery_state, DeliveryState::Sent);
    }
    // The numbers run on across the parts: 7 is the seventh, whichever part arrived last.
    assert!(app.say("rep1", "完成 7").await.starts_with("✅ 已完成：第7件"));
}

#[tokio::test]
async fn the_per_member_limit_holds_while_the_cache_is_down() {
    let app = spawn_driven(|c| {
        c.jobs.merge_max = 1;
        c.wecom.messages_per_user_per_minute = 3;
    })
    .await;
    app.services().cache.simulate_outage(true);
    for i in 0..8 {
        remind(&app, "rep3", None, &format!("事项{i}"), now_ms() - 1000).await;
    }
    app.drive_deliveries().await;
    assert_eq!(
        texts_to(&app, "rep3").len(),
        3,
        "WeCom's window, kept without the cache"
    );
    let waiting: Vec<outbox::Model> = messages(&app)
        .await
        .into_iter()
        .filter(|m| m.status == MessageState::Pending)
        .collect();
    assert_eq!(waiting.len(), 5);
    assert!(
        waiting
            .iter()
            .all(|m| m.next_attempt_at > now_ms() + 30_000 && m.attempts == 0)
    );
    app.services().cache.simulate_outage(false);
}

#[tokio::test]
async fn the_dispatcher_shows_progress_during_a_long_pass() {
    let app = spawn_driven(|c| {
        c.jobs.claim_batch = 5;
        c.jobs.merge_max = 1;
    })
    .await;
    for i in 0..150 {
        remind(
            &app,
            ["rep1", "rep2", "rep3"][i % 3],
            None,
            &format!("#{i}"),
            now_ms() - 1000,
        )
        .await;
    }
    let s = app.services();
    let dispatcher = Dispatcher::new(s.clone(), "test".into());
    let pass = tokio::spawn(async move { dispatcher.dispatch_due().await.unwrap() });
    let mut beats = std::collections::BTreeSet::new();
    while !pass.is_finished() {
        beats.insert(
            s.metrics
                .dispatcher_last_round_ms
                .load(std::sync::atomic::Ordering::Relaxed),
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(pass.await.unwrap(), 150);
    assert!(beats.len() >= 3, "the heartbeat moved within the pass: {beats:?}");
}

#[tokio::test]
async fn identical_messages_to_one_member_both_arrive_and_a_resend_still_arrives_once() {
    let app = spawn_driven(|_| {}).await;
    // Two notes on one customer answered the same way: WeCom's duplicate check must not take the
    // second for a resend of the first.
    let answer = MessageBody::text("✅ 已记录跟进 · 孙丽");
    for key in ["reply:a", "reply:b"] {
        notify::enqueue(&app.db, key, "rep1", &answer).await.unwrap();
    }
    app.drive_deliveries().await;
    let seen = texts_to(&app, "rep1");
    assert_eq!(seen.len(), 2, "{seen:?}");
    for text in &seen {
        assert_eq!(text.trim_end_matches('\u{200B}'), "✅ 已记录跟进 · 孙丽");
    }
    let rows = messages(&app).await;
    assert!(rows.iter().all(|m| m.status == MessageState::Sent), "{rows:?}");
    assert_ne!(rows[0].sent_digest, rows[1].sent_digest);
    // The second's response was lost: its resend is the same request, which WeCom drops.
    outbox::Entity::update_many()
        .col_expr(outbox::Column::Status, Expr::val(MessageState::Pending))
        .col_expr(outbox::Column::NextAttemptAt, Expr::val(now_ms() - 1))
        .filter(outbox::Column::Id.eq(rows[1].id))
        .exec(&app.db)
        .await
        .unwrap();
    app.drive_deliveries().await;
    assert_eq!(texts_to(&app, "rep1").len(), 2, "the resend is recognised");
    assert_eq!(app.fake().suppressed_duplicates(), 1);
    let again = messages(&app).await;
    assert_eq!(again[1].body, rows[1].body, "sent as stored");
}

#[tokio::test]
async fn summary_send_delivers_what_it_queued_and_nothing_else() {
    let app = spawn_driven(|_| {}).await;
    // A message the service owes someone else, waiting for a running instance to send it.
    notify::enqueue(&app.db, "other", "rep2", &MessageBody::text("别的消息"))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command(&app.test_db, &dir);
    cmd.env("SCRM_WECOM__API_BASE", app.fake().url())
        .args(["summary", "send", "--to", "lead1"]);
    let (code, stdout, stderr) = output_async(cmd).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(stdout.trim(), "lead1: sent (1 message)");
    assert!(texts_to(&app, "rep2").is_empty(), "not summary send's to send");
    let other = messages(&app)
        .await
        .into_iter()
        .find(|m| m.recipient == "rep2")
        .unwrap();
    assert_eq!(other.status, MessageState::Pending);
}

#[tokio::test]
async fn status_lists_pushes_stuck_queued_and_fails() {
    let app = spawn_driven(|_| {}).await;
    let r = remind(&app, "rep1", None, "卡住了", now_ms() - 1000).await;
    Dispatcher::new(app.services(), "test".into()).round().await.unwrap();
    // WeCom has refused to take it for an hour.
    reminder::Entity::update_many()
        .col_expr(reminder::Column::UpdatedAt, Expr::val(now_ms() - 3_600_000))
        .exec(&app.db)
        .await
        .unwrap();
    outbox::Entity::update_many()
        .col_expr(outbox::Column::LastError, Expr::val("message/send failed: HTTP 502"))
        .exec(&app.db)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command(&app.test_db, &dir);
    cmd.arg("status");
    let (code, stdout, stderr) = output_async(cmd).await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    let line = format!("STUCK reminder {} for rep1: queued for 60 min", r.id);
    assert!(stdout.contains(&line) && stdout.contains("HTTP 502"), "{stdout}");
    assert!(stderr.contains("jobs.stuck_after_secs"), "{stderr}");
}

#[tokio::test]
async fn every_message_is_within_wecoms_size_limit() {
    let app = spawn_driven(|_| {}).await;
    let long: Vec<String> = (0..200).map(|i| format!("{i}. 一条很长的通知内容")).collect();
    let ids = notify::enqueue(&app.db, "long", "rep1", &MessageBody::markdown(long.join("\n")))
        .await
        .unwrap();
    assert!(ids.len() > 1);
    app.drive_deliveries().await;
    let pushed = texts_to(&app, "rep1");
    assert_eq!(pushed.len(), ids.len());
    assert!(pushed.iter().all(|t| t.len() <= MAX_CONTENT_BYTES));
    for row in messages(&app).await {
        let payload = Payload::parse(&row.body).unwrap();
        assert!(payload.body.content().unwrap().len() <= MAX_CONTENT_BYTES);
    }
}
