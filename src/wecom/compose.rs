//! Builds the inner XML of callbacks the way WeCom writes them (CDATA for text, plain numbers).
//! Used by the fake WeCom, `simulate` and tests; also the format of our passive text replies.

use std::fmt::Write as _;

/// Wraps text in CDATA, splitting any `]]>` so user text cannot end the section early.
pub fn cdata(text: &str) -> String {
    format!("<![CDATA[{}]]>", text.replace("]]>", "]]]]><![CDATA[>"))
}

/// Writes `<Name>value</Name>` elements; numbers plain, everything else as CDATA.
#[derive(Debug, Default)]
pub struct XmlBuilder {
    out: String,
}

impl XmlBuilder {
    pub fn new() -> Self {
        Self {
            out: String::from("<xml>"),
        }
    }

    pub fn text(mut self, name: &str, value: &str) -> Self {
        let _ = write!(self.out, "<{name}>{}</{name}>", cdata(value));
        self
    }

    pub fn opt_text(self, name: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.text(name, v),
            None => self,
        }
    }

    pub fn number(mut self, name: &str, value: i64) -> Self {
        let _ = write!(self.out, "<{name}>{value}</{name}>");
        self
    }

    /// An element holding elements: `<Name>` + what `inner` writes + `</Name>`.
    pub fn nested(mut self, name: &str, inner: impl FnOnce(Self) -> Self) -> Self {
        let _ = write!(self.out, "<{name}>");
        let mut done = inner(self);
        let _ = write!(done.out, "</{name}>");
        done
    }

    pub fn finish(mut self) -> String {
        self.out.push_str("</xml>");
        self.out
    }
}

/// A member's text message to the app.
pub fn text_message(
    corp_id: &str,
    from_user: &str,
    content: &str,
    msg_id: u64,
    agent_id: i64,
    create_time: i64,
) -> String {
    XmlBuilder::new()
        .text("ToUserName", corp_id)
        .text("FromUserName", from_user)
        .number("CreateTime", create_time)
        .text("MsgType", "text")
        .text("Content", content)
        .text("MsgId", &msg_id.to_string())
        .number("AgentID", agent_id)
        .finish()
}

/// Optional fields of a `change_external_contact` event.
#[derive(Debug, Default, Clone)]
pub struct ExternalContactExtras<'a> {
    pub state: Option<&'a str>,
    pub welcome_code: Option<&'a str>,
    pub source: Option<&'a str>,
    pub fail_reason: Option<&'a str>,
}

/// A 客户联系 event (`add_external_contact`, `del_follow_user`, …).
pub fn external_contact_event(
    corp_id: &str,
    change_type: &str,
    user_id: &str,
    external_user_id: &str,
    extras: &ExternalContactExtras<'_>,
    create_time: i64,
) -> String {
    XmlBuilder::new()
        .text("ToUserName", corp_id)
        .text("FromUserName", "sys")
        .number("CreateTime", create_time)
        .text("MsgType", "event")
        .text("Event", "change_external_contact")
        .text("ChangeType", change_type)
        .text("UserID", user_id)
        .text("ExternalUserID", external_user_id)
        .opt_text("State", extras.state)
        .opt_text("WelcomeCode", extras.welcome_code)
        .opt_text("Source", extras.source)
        .opt_text("FailReason", extras.fail_reason)
        .finish()
}

/// A member change (`create_user`, `update_user`, `delete_user`) in its short, UserID-only form.
pub fn contact_event(corp_id: &str, change_type: &str, user_id: &str, create_time: i64) -> String {
    XmlBuilder::new()
        .text("ToUserName", corp_id)
        .text("FromUserName", "sys")
        .number("CreateTime", create_time)
        .text("MsgType", "event")
        .text("Event", "change_contact")
        .text("ChangeType", change_type)
        .text("UserID", user_id)
        .finish()
}

/// A member-originated app event such as `enter_agent` or `click`.
pub fn app_event(
    corp_id: &str,
    from_user: &str,
    event: &str,
    event_key: &str,
    agent_id: i64,
    create_time: i64,
) -> String {
    XmlBuilder::new()
        .text("ToUserName", corp_id)
        .text("FromUserName", from_user)
        .number("CreateTime", create_time)
        .text("MsgType", "event")
        .text("Event", event)
        .text("EventKey", event_key)
        .number("AgentID", agent_id)
        .finish()
}

/// What a click on a template card's button sends.
#[derive(Debug, Clone, Default)]
pub struct CardClickEvent<'a> {
    pub from_user: &'a str,
    pub task_id: &'a str,
    pub event_key: &'a str,
    pub response_code: &'a str,
    /// The option chosen in the card's drop-down list: (question key, option id).
    pub selected: Option<(&'a str, &'a str)>,
}

/// A `template_card_event` callback.
pub fn card_click(corp_id: &str, click: &CardClickEvent<'_>, agent_id: i64, create_time: i64) -> String {
    let builder = XmlBuilder::new()
        .text("ToUserName", corp_id)
        .text("FromUserName", click.from_user)
        .number("CreateTime", create_time)
        .text("MsgType", "event")
        .text("Event", "template_card_event")
        .text("EventKey", click.event_key)
        .text("TaskId", click.task_id)
        .text("CardType", "button_interaction")
        .text("ResponseCode", click.response_code)
        .number("AgentID", agent_id);
    match click.selected {
        Some((question, option)) => builder
            .nested("SelectedItems", |b| {
                b.nested("SelectedItem", |b| {
                    b.text("QuestionKey", question)
                        .nested("OptionIds", |b| b.text("OptionId", option))
                })
            })
            .finish(),
        None => builder.finish(),
    }
}

/// The passive reply to a card click that greys the clicker's buttons and shows `replace_name`.
pub fn update_button_reply(to_user: &str, corp_id: &str, replace_name: &str, create_time: i64) -> String {
    XmlBuilder::new()
        .text("ToUserName", to_user)
        .text("FromUserName", corp_id)
        .number("CreateTime", create_time)
        .text("MsgType", "update_button")
        .nested("Button", |b| b.text("ReplaceName", replace_name))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wecom::callback::{CallbackKind, parse_callback};

    #[test]
    fn composed_messages_parse_back() {
        let xml = text_message("ww1", "zhangsan", "a ]]> b <c>", 42, 1000002, 1700000000);
        let cb = parse_callback(&xml).unwrap();
        assert_eq!(
            cb.kind,
            CallbackKind::Text {
                msg_id: "42".into(),
                content: "a ]]> b <c>".into()
            }
        );
        let add = external_contact_event(
            "ww1",
            "add_external_contact",
            "zhangsan",
            "wmA",
            &ExternalContactExtras {
                state: Some("expo"),
                ..Default::default()
            },
            1,
        );
        assert_eq!(
            parse_callback(&add).unwrap().kind_name(),
            "change_external_contact:add_external_contact"
        );
        assert_eq!(
            parse_callback(&contact_event("ww1", "delete_user", "lisi", 1))
                .unwrap()
                .kind_name(),
            "change_contact:delete_user"
        );
        let click = card_click(
            "ww1",
            &CardClickEvent {
                from_user: "zhangsan",
                task_id: "agd_1",
                event_key: "done:3",
                response_code: "rc9",
                selected: Some(("r", "4")),
            },
            1,
            1,
        );
        let CallbackKind::CardClick(parsed) = parse_callback(&click).unwrap().kind else {
            panic!("{click}")
        };
        assert_eq!((parsed.event_key.as_str(), parsed.selected("r")), ("done:3", Some("4")));
        assert_eq!(
            parse_callback(&app_event("ww1", "a", "click", "K", 1, 1))
                .unwrap()
                .kind_name(),
            "event:click"
        );
    }
}
