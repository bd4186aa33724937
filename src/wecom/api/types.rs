//! Request and response bodies of the WeCom server API, field names exactly as WeCom spells them.
//! Responses are parsed leniently (missing fields default) because WeCom adds fields over time.

use serde::{Deserialize, Serialize};

/// The `errcode`/`errmsg` pair every response carries.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Status {
    #[serde(default)]
    pub errcode: i64,
    #[serde(default)]
    pub errmsg: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    #[serde(default)]
    pub access_token: String,
    #[serde(default)]
    pub expires_in: u64,
}

/// What an app message says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "msgtype", rename_all = "lowercase")]
pub enum MessageBody {
    Text {
        text: TextContent,
    },
    Markdown {
        markdown: TextContent,
    },
    Textcard {
        textcard: TextCard,
    },
    /// An interactive card; its buttons call back (`template_card_event`).
    #[serde(rename = "template_card")]
    TemplateCard {
        template_card: Box<super::card::TemplateCard>,
    },
}

/// WeCom cuts text and markdown content beyond this many bytes (UTF-8), so longer content goes out
/// in parts.
pub const MAX_CONTENT_BYTES: usize = 2048;

impl MessageBody {
    pub fn text(content: impl Into<String>) -> Self {
        Self::Text {
            text: TextContent {
                content: content.into(),
            },
        }
    }

    pub fn markdown(content: impl Into<String>) -> Self {
        Self::Markdown {
            markdown: TextContent {
                content: content.into(),
            },
        }
    }

    pub fn textcard(title: impl Into<String>, description: impl Into<String>, url: impl Into<String>) -> Self {
        Self::Textcard {
            textcard: TextCard {
                title: title.into(),
                description: description.into(),
                url: url.into(),
                btntxt: None,
            },
        }
    }

    pub fn template_card(card: super::card::TemplateCard) -> Self {
        Self::TemplateCard {
            template_card: Box::new(card),
        }
    }

    /// The content of a text or markdown message (a text card has fields of its own).
    pub fn content(&self) -> Option<&str> {
        match self {
            Self::Text { text } => Some(&text.content),
            Self::Markdown { markdown } => Some(&markdown.content),
            Self::Textcard { .. } | Self::TemplateCard { .. } => None,
        }
    }

    /// The same kind of message with other content (a text card is returned as it is).
    pub fn with_content(&self, content: String) -> Self {
        match self {
            Self::Text { .. } => Self::text(content),
            Self::Markdown { .. } => Self::markdown(content),
            Self::Textcard { .. } | Self::TemplateCard { .. } => self.clone(),
        }
    }

    /// The readable content, for logs of the demo and for tests.
    pub fn display_text(&self) -> String {
        match self {
            Self::Text { text } => text.content.clone(),
            Self::Markdown { markdown } => markdown.content.clone(),
            Self::Textcard { textcard } => format!("{}\n{}\n{}", textcard.title, textcard.description, textcard.url),
            Self::TemplateCard { template_card } => template_card.display_text(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextContent {
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextCard {
    pub title: String,
    pub description: String,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub btntxt: Option<String>,
}

/// What `message/update_template_card` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardUpdate {
    Updated,
    /// The response code was spent already (by an earlier call) or expired: nothing changed now.
    CodeSpent,
}

/// The `message/send` request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendMessageRequest {
    pub touser: String,
    pub agentid: i64,
    #[serde(flatten)]
    pub body: MessageBody,
    #[serde(default)]
    pub safe: i32,
    #[serde(default)]
    pub enable_duplicate_check: i32,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub duplicate_check_interval: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SendMessageResponse {
    #[serde(default)]
    pub invaliduser: String,
    #[serde(default)]
    pub msgid: String,
}

/// A message to send: recipients, content, and WeCom-side duplicate suppression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    pub to_users: Vec<String>,
    pub body: MessageBody,
    /// With `Some(interval)`, WeCom delivers an identical request only once within the interval
    /// (max 4 h): the last line of defence against sending twice after a crash.
    pub duplicate_check: Option<std::time::Duration>,
}

impl OutgoingMessage {
    pub fn to(user: impl Into<String>, body: MessageBody) -> Self {
        Self {
            to_users: vec![user.into()],
            body,
            duplicate_check: None,
        }
    }

    pub fn with_duplicate_check(mut self, interval: std::time::Duration) -> Self {
        self.duplicate_check = Some(interval);
        self
    }
}

/// The answer to a delivered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendOutcome {
    pub msgid: String,
    /// Recipients WeCom refused (lower-cased by WeCom); the others received it.
    pub invalid_users: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExternalContact {
    pub external_userid: String,
    pub name: String,
    pub avatar: String,
    /// 1 a WeChat user, 2 a WeCom user of another corp.
    #[serde(rename = "type")]
    pub contact_type: i32,
    /// 0 unknown, 1 male, 2 female.
    pub gender: i32,
    pub unionid: String,
    pub position: String,
    pub corp_name: String,
    pub corp_full_name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FollowTag {
    pub group_name: String,
    pub tag_name: String,
    pub tag_id: String,
    #[serde(rename = "type")]
    pub tag_type: i32,
}

/// One member's relation to a customer, from `externalcontact/get`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FollowUser {
    pub userid: String,
    pub remark: String,
    pub description: String,
    pub createtime: i64,
    pub tags: Vec<FollowTag>,
    pub remark_corp_name: String,
    pub remark_mobiles: Vec<String>,
    pub oper_userid: String,
    pub add_way: i32,
    pub state: String,
}

/// A customer with every member who follows them (all pages collected).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExternalContactDetail {
    pub external_contact: ExternalContact,
    pub follow_user: Vec<FollowUser>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ExternalContactPage {
    pub external_contact: ExternalContact,
    pub follow_user: Vec<FollowUser>,
    pub next_cursor: String,
}

/// One member's relation, as `batch/get_by_user` reports it (tag ids only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FollowInfo {
    pub userid: String,
    pub remark: String,
    pub description: String,
    pub createtime: i64,
    pub tag_id: Vec<String>,
    pub remark_corp_name: String,
    pub remark_mobiles: Vec<String>,
    pub oper_userid: String,
    pub add_way: i32,
    pub state: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContactWithFollowInfo {
    pub external_contact: ExternalContact,
    pub follow_info: FollowInfo,
}

/// One page of `batch/get_by_user`; an empty `next_cursor` means the last page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BatchPage {
    pub external_contact_list: Vec<ContactWithFollowInfo>,
    pub next_cursor: String,
}

/// A member, from `user/get` or `user/list`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Member {
    pub userid: String,
    pub name: String,
    pub department: Vec<i64>,
    pub order: Vec<i64>,
    pub position: String,
    /// Parallel to `department`: 1 where the member leads that department.
    pub is_leader_in_dept: Vec<i32>,
    pub direct_leader: Vec<String>,
    pub main_department: i64,
    /// 1 active, 2 disabled, 4 not activated, 5 left the corp.
    pub status: i32,
    pub alias: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Department {
    pub id: i64,
    pub name: String,
    pub name_en: String,
    pub department_leader: Vec<String>,
    pub parentid: i64,
    pub order: i64,
}

/// Per-customer result of starting a transfer; `errcode` 0 means the transfer started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TransferCustomerResult {
    pub external_userid: String,
    pub errcode: i64,
}

/// Where a transfer stands: `status` 1 done, 2 waiting, 3 refused, 4 over the takeover's limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TransferStatus {
    pub external_userid: String,
    pub status: i32,
    pub takeover_time: i64,
}

/// The welcome message sent with a `WelcomeCode`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WelcomeMessage {
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WelcomeOutcome {
    Sent,
    /// 41051: the customer already got a welcome (or the two already chatted); nothing to do.
    AlreadySent,
}

/// Fields `externalcontact/remark` may change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemarkUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remark: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remark_company: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remark_mobiles: Option<Vec<String>>,
}
