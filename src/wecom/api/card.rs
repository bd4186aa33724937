//! Template cards (`msgtype: template_card`): the interactive card of type `button_interaction`
//! the service sends, and the limits WeCom checks on it. Field names exactly as WeCom spells them.

use serde::{Deserialize, Serialize};

/// At most this many buttons on a card.
pub const MAX_BUTTONS: usize = 6;
/// At most this many options in a card's drop-down list.
pub const MAX_OPTIONS: usize = 10;
/// At most this many rows of key/value content.
pub const MAX_ROWS: usize = 6;
/// WeCom's limit on a task id, and the characters it may hold.
pub const MAX_TASK_ID: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateCard {
    pub card_type: String,
    /// Unique per app, forever: WeCom refuses a reused one (42014). The click names it (`TaskId`).
    pub task_id: String,
    pub main_title: MainTitle,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sub_title_text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub horizontal_content_list: Vec<Row>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_action: Option<CardAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button_selection: Option<Selection>,
    #[serde(default)]
    pub button_list: Vec<Button>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MainTitle {
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub desc: String,
}

/// One `keyname: value` row; `type` 1 makes the value a link to `url`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    #[serde(rename = "type", default, skip_serializing_if = "is_zero")]
    pub kind: u8,
    pub keyname: String,
    pub value: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
}

/// What tapping the card itself opens (`type` 1: a URL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardAction {
    #[serde(rename = "type")]
    pub kind: u8,
    pub url: String,
}

/// A drop-down list above the buttons: the click reports the option chosen (`SelectedItems`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    pub question_key: String,
    pub title: String,
    pub option_list: Vec<SelectOption>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub selected_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelectOption {
    pub id: String,
    pub text: String,
}

/// A button that calls back (`type` 0) with `key` as the click's `EventKey`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    pub text: String,
    /// 1 (the default) to 4: WeCom's colours.
    #[serde(default = "one")]
    pub style: u8,
    pub key: String,
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

fn one() -> u8 {
    1
}

/// Why WeCom would refuse a card, checked before it is queued (same limits, same order).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    #[error("task_id must be 1–128 characters of [0-9A-Za-z_-@]: {0:?}")]
    TaskId(String),
    #[error("a card has 1–6 buttons, each with a text and a unique key of at most 1,024 bytes")]
    Buttons,
    #[error("a card has at most 6 rows of content")]
    Rows,
    #[error("a drop-down list has 1–10 options")]
    Options,
}

impl TemplateCard {
    /// A `button_interaction` card.
    pub fn buttons(task_id: String, title: String, desc: String, buttons: Vec<Button>) -> Self {
        Self {
            card_type: "button_interaction".into(),
            task_id,
            main_title: MainTitle { title, desc },
            sub_title_text: String::new(),
            horizontal_content_list: Vec::new(),
            card_action: None,
            button_selection: None,
            button_list: buttons,
        }
    }

    /// Checks the limits WeCom enforces on an interactive card.
    pub fn check(&self) -> Result<(), CardError> {
        if !valid_task_id(&self.task_id) {
            return Err(CardError::TaskId(self.task_id.clone()));
        }
        let keys: std::collections::HashSet<&str> = self.button_list.iter().map(|b| b.key.as_str()).collect();
        if self.button_list.is_empty()
            || self.button_list.len() > MAX_BUTTONS
            || keys.len() != self.button_list.len()
            || self
                .button_list
                .iter()
                .any(|b| b.text.is_empty() || b.key.is_empty() || b.key.len() > 1024)
        {
            return Err(CardError::Buttons);
        }
        if self.horizontal_content_list.len() > MAX_ROWS {
            return Err(CardError::Rows);
        }
        if let Some(selection) = &self.button_selection
            && (selection.option_list.is_empty() || selection.option_list.len() > MAX_OPTIONS)
        {
            return Err(CardError::Options);
        }
        Ok(())
    }

    /// The card as a person reads it, for logs of the demo and for tests.
    pub fn display_text(&self) -> String {
        let mut lines = vec![self.main_title.title.clone()];
        if !self.main_title.desc.is_empty() {
            lines.push(self.main_title.desc.clone());
        }
        if !self.sub_title_text.is_empty() {
            lines.push(self.sub_title_text.clone());
        }
        for row in &self.horizontal_content_list {
            if row.url.is_empty() {
                lines.push(format!("{}：{}", row.keyname, row.value));
            } else {
                lines.push(format!("{}：{}: {}", row.keyname, row.value, row.url));
            }
        }
        if let Some(selection) = &self.button_selection {
            let options: Vec<&str> = selection.option_list.iter().map(|o| o.text.as_str()).collect();
            lines.push(format!("{}：{}", selection.title, options.join(" | ")));
        }
        let buttons: Vec<String> = self.button_list.iter().map(|b| format!("[{}]", b.text)).collect();
        lines.push(buttons.join(" "));
        lines.join("\n")
    }
}

/// Whether `id` is a task id WeCom accepts.
pub fn valid_task_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_TASK_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'@'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card() -> TemplateCard {
        TemplateCard::buttons(
            "rem_1_1700000000000".into(),
            "⏰ 提醒".into(),
            "今天 15:00".into(),
            vec![Button {
                text: "完成".into(),
                style: 1,
                key: "done:1".into(),
            }],
        )
    }

    #[test]
    fn serializes_as_wecom_spells_it() {
        let mut c = card();
        c.horizontal_content_list.push(Row {
            kind: 1,
            keyname: "客户".into(),
            value: "张伟".into(),
            url: "https://crm.example.com/web/customers/1".into(),
        });
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["card_type"], "button_interaction");
        assert_eq!(json["horizontal_content_list"][0]["type"], 1);
        assert_eq!(json["button_list"][0]["key"], "done:1");
        assert!(json.get("button_selection").is_none());
        let back: TemplateCard = serde_json::from_value(json).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn limits_are_checked() {
        assert_eq!(card().check(), Ok(()));
        let mut bad = card();
        bad.task_id = "rem.1".into();
        assert!(matches!(bad.check(), Err(CardError::TaskId(_))));
        bad.task_id = "x".repeat(129);
        assert!(matches!(bad.check(), Err(CardError::TaskId(_))));
        let mut twice = card();
        twice.button_list.push(twice.button_list[0].clone());
        assert_eq!(twice.check(), Err(CardError::Buttons));
        let mut none = card();
        none.button_list.clear();
        assert_eq!(none.check(), Err(CardError::Buttons));
        let mut options = card();
        options.button_selection = Some(Selection {
            question_key: "r".into(),
            title: "提醒".into(),
            option_list: Vec::new(),
            selected_id: String::new(),
        });
        assert_eq!(options.check(), Err(CardError::Options));
    }
}
