//! One-tap actions: the buttons of pushed reminders and of the agenda (WeCom template cards), and
//! what a click on them does — the same change as `完成 n`, `推迟 n 1小时后` or `推迟 n 明天9点`.
//!
//! A button's key names the action and a reminder (`done:42`); on a card listing several
//! reminders the drop-down list ([`QUESTION`]) names the one meant, the key's reminder being the
//! list's first. A click is applied at most once per card, member and action on a reminder
//! (`card_actions`): a double click, or WeCom retrying one, finds the action taken and answers as
//! the first time. The answer is short: it replaces the buttons' text on the card.

use chrono::Duration;
use chrono_tz::Tz;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

use super::replies;
use crate::crm::audit::Actor;
use crate::crm::reminders::{self, Change};
use crate::db::entity::card_action;
use crate::db::entity::reminder::{self, ReminderStatus};
use crate::texts::{Lang, local, local_instant, preview};
use crate::wecom::api::card::{Button, SelectOption, Selection};
use crate::wecom::callback::CardClick;

/// The drop-down list of a card that lists several reminders.
pub const QUESTION: &str = "reminder";

/// What a button does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Done,
    /// Due again an hour after the click.
    InAnHour,
    /// Due again tomorrow at the bot's default hour.
    TomorrowMorning,
}

impl Action {
    const ALL: [Action; 3] = [Action::Done, Action::InAnHour, Action::TomorrowMorning];

    fn key(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::InAnHour => "hour",
            Self::TomorrowMorning => "tomorrow",
        }
    }

    /// Reads a button key: the action and the reminder it names.
    pub fn parse(key: &str) -> Option<(Self, Option<i64>)> {
        let (name, id) = match key.split_once(':') {
            Some((name, id)) => (name, Some(id.parse().ok()?)),
            None => (key, None),
        };
        Self::ALL.into_iter().find(|a| a.key() == name).map(|a| (a, id))
    }

    fn label(self, lang: Lang, default_hour: u32) -> String {
        match (self, lang) {
            (Self::Done, Lang::Zh) => "完成".into(),
            (Self::Done, Lang::En) => "Done".into(),
            (Self::InAnHour, Lang::Zh) => "1小时后".into(),
            (Self::InAnHour, Lang::En) => "In 1 hour".into(),
            (Self::TomorrowMorning, Lang::Zh) => format!("明天{default_hour}点"),
            (Self::TomorrowMorning, Lang::En) => format!("Tomorrow {default_hour}:00"),
        }
    }
}

/// The three buttons, acting on `reminder_id` (on a list card: the list's first, unless another is
/// chosen).
pub fn buttons(lang: Lang, reminder_id: i64, default_hour: u32) -> Vec<Button> {
    Action::ALL
        .into_iter()
        .map(|action| Button {
            text: action.label(lang, default_hour),
            style: if action == Action::Done { 1 } else { 2 },
            key: format!("{}:{reminder_id}", action.key()),
        })
        .collect()
}

/// The drop-down list of a card listing several reminders: `(id, label)` in the list's order.
pub fn selection(lang: Lang, options: &[(i64, String)]) -> Selection {
    Selection {
        question_key: QUESTION.into(),
        title: if lang.en() { "Reminder" } else { "提醒" }.into(),
        option_list: options
            .iter()
            .map(|(id, label)| SelectOption {
                id: id.to_string(),
                text: preview(label, 18),
            })
            .collect(),
        selected_id: options.first().map(|(id, _)| id.to_string()).unwrap_or_default(),
    }
}

/// Applies a click of `userid` and returns what the card shows instead of its buttons.
pub async fn click(
    db: &impl ConnectionTrait,
    userid: &str,
    click: &CardClick,
    lang: Lang,
    tz: Tz,
    default_hour: u32,
    now: i64,
) -> Result<String, DbErr> {
    let t = |zh: &str, en: &str| if lang.en() { en.to_owned() } else { zh.to_owned() };
    let Some((action, named)) = Action::parse(&click.event_key) else {
        return Ok(t("无法识别的按钮", "Unknown button"));
    };
    let chosen = click.selected(QUESTION).and_then(|id| id.parse::<i64>().ok());
    let Some(id) = chosen.or(named) else {
        return Ok(t("请先选择提醒", "Choose a reminder first"));
    };
    let identity = format!("{}:{id}", action.key());
    if let Some(taken) = card_action::Entity::find()
        .filter(card_action::Column::TaskId.eq(&click.task_id))
        .filter(card_action::Column::Userid.eq(userid))
        .filter(card_action::Column::Action.eq(&identity))
        .one(db)
        .await?
    {
        return Ok(taken.answer);
    }
    let reminder = reminder::Entity::find_by_id(id)
        .one(db)
        .await?
        .filter(|r| r.owner_userid == userid);
    // On a list card, say which reminder the answer is about.
    let about = |r: &reminder::Model| {
        if chosen.is_some() {
            format!(" · {}", preview(&r.text, 12))
        } else {
            String::new()
        }
    };
    let answer = match reminder {
        None => t("提醒已不在你的待办中", "No longer your reminder"),
        Some(r) if r.status == ReminderStatus::Done => format!("{}{}", t("✅ 已完成", "✅ Done"), about(&r)),
        Some(r) if r.status == ReminderStatus::Cancelled => {
            format!("{}{}", t("提醒已取消", "Reminder cancelled"), about(&r))
        }
        Some(r) => {
            let change = match action {
                Action::Done => Change::Done,
                Action::InAnHour => Change::Snooze(now + Duration::hours(1).num_milliseconds()),
                Action::TomorrowMorning => Change::Snooze(tomorrow_at(now, tz, default_hour)),
            };
            reminders::change(db, id, change, &Actor::Member(userid.to_owned()), now).await?;
            match change {
                Change::Snooze(at) => format!(
                    "{}{}",
                    t(
                        &format!("⏰ 已推迟到{}", replies::when_near(at, now, tz, lang)),
                        &format!("⏰ Moved to {}", replies::when_near(at, now, tz, lang))
                    ),
                    about(&r)
                ),
                _ => format!("{}{}", t("✅ 已完成", "✅ Done"), about(&r)),
            }
        }
    };
    card_action::Entity::insert(card_action::ActiveModel {
        task_id: Set(click.task_id.clone()),
        userid: Set(userid.to_owned()),
        action: Set(identity),
        answer: Set(answer.clone()),
        created_at: Set(now),
        ..Default::default()
    })
    .exec(db)
    .await?;
    Ok(answer)
}

/// Tomorrow (in the org's zone) at `hour`:00, as Unix milliseconds.
fn tomorrow_at(now: i64, tz: Tz, hour: u32) -> i64 {
    let tomorrow = local(now, tz).date_naive() + Duration::days(1);
    let at = tomorrow.and_hms_opt(hour.min(23), 0, 0).unwrap_or_default();
    local_instant(at, tz).map_or(now + Duration::days(1).num_milliseconds(), |t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn keys_name_an_action_and_a_reminder() {
        assert_eq!(Action::parse("done:42"), Some((Action::Done, Some(42))));
        assert_eq!(Action::parse("hour"), Some((Action::InAnHour, None)));
        assert_eq!(Action::parse("tomorrow:7"), Some((Action::TomorrowMorning, Some(7))));
        assert_eq!(Action::parse("done:x"), None);
        assert_eq!(Action::parse("later:1"), None);
        let keys: Vec<String> = buttons(Lang::Zh, 5, 9).into_iter().map(|b| b.key).collect();
        assert_eq!(keys, ["done:5", "hour:5", "tomorrow:5"]);
        let labels: Vec<String> = buttons(Lang::En, 5, 10).into_iter().map(|b| b.text).collect();
        assert_eq!(labels, ["Done", "In 1 hour", "Tomorrow 10:00"]);
    }

    #[test]
    fn tomorrow_morning_is_in_the_org_zone() {
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        // 2026-12-04 23:30 in Shanghai.
        let now = tz.with_ymd_and_hms(2026, 12, 4, 23, 30, 0).unwrap().timestamp_millis();
        let at = tomorrow_at(now, tz, 9);
        assert_eq!(local(at, tz).format("%Y-%m-%d %H:%M").to_string(), "2026-12-05 09:00");
    }
}
