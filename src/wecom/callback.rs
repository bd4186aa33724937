//! Typed WeCom callbacks: the outer envelope and the decrypted inner message or event.
//!
//! Parsing never fails on content it does not know: an unknown message type, event or change type,
//! or a known one missing a field we need, becomes [`CallbackKind::Unknown`] and the raw XML is kept
//! by the caller. Only XML that is not well formed (or declares a DOCTYPE) is an error.

use std::borrow::Cow;

use sha1::{Digest, Sha1};

use super::xml::{Fields, XmlError, parse_fields};

/// The outer POST body: only `Encrypt` is authenticated (by the signature), so nothing else is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope<'a> {
    pub encrypt: Cow<'a, str>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error(transparent)]
    Xml(#[from] XmlError),
    #[error("envelope has no Encrypt element")]
    MissingEncrypt,
}

pub fn parse_envelope(body: &str) -> Result<Envelope<'_>, EnvelopeError> {
    let mut fields = parse_fields(body)?;
    let encrypt = fields.take("Encrypt").ok_or(EnvelopeError::MissingEncrypt)?;
    let encrypt = match encrypt {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
        Cow::Owned(s) => Cow::Owned(s.trim().to_owned()),
    };
    if encrypt.is_empty() {
        return Err(EnvelopeError::MissingEncrypt);
    }
    Ok(Envelope { encrypt })
}

/// One decrypted callback: the common header and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    /// The corp id the callback was addressed to.
    pub to_user: String,
    /// The member's userid for member-originated callbacks; `sys` for system events.
    pub from_user: String,
    /// WeCom's `CreateTime`, unix seconds (0 when absent).
    pub create_time: i64,
    pub agent_id: Option<i64>,
    pub kind: CallbackKind,
    /// The idempotency key WeCom's retries of this callback share; see [`dedupe_key`].
    pub dedupe_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackKind {
    /// A text message from a member to the app: the command channel.
    Text { msg_id: String, content: String },
    /// The member opened the app.
    EnterAgent { event_key: String },
    /// A pull-message menu item was clicked.
    Click { event_key: String },
    /// A link menu item was clicked; `event_key` is the URL.
    View { event_key: String },
    /// A button of a template card was clicked (`template_card_event`).
    CardClick(CardClick),
    /// 客户联系: an external contact changed.
    ExternalContact(ExternalContactEvent),
    /// 通讯录: a member changed.
    Contact(ContactEvent),
    /// Anything else, kept so it is stored and visible rather than dropped.
    Unknown {
        msg_type: String,
        event: Option<String>,
        change_type: Option<String>,
    },
}

/// A click on a template card's button. WeCom gives every click a fresh `ResponseCode`, which
/// also updates the card once (within 72 h); a double click is two clicks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardClick {
    /// The button's key.
    pub event_key: String,
    pub task_id: String,
    pub card_type: String,
    pub response_code: String,
    /// The options chosen in the card's drop-down lists: (question key, option ids).
    pub selected: Vec<(String, Vec<String>)>,
}

impl CardClick {
    /// The first option chosen for `question_key`.
    pub fn selected(&self, question_key: &str) -> Option<&str> {
        self.selected
            .iter()
            .find(|(q, _)| q == question_key)
            .and_then(|(_, ids)| ids.first())
            .map(String::as_str)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExternalContactChange {
    Add,
    AddHalf,
    Edit,
    /// The member deleted the customer.
    Delete,
    /// The customer deleted (or blocked) the member: 客户删人.
    DeleteFollowUser,
    TransferFail,
}

impl ExternalContactChange {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "add_external_contact",
            Self::AddHalf => "add_half_external_contact",
            Self::Edit => "edit_external_contact",
            Self::Delete => "del_external_contact",
            Self::DeleteFollowUser => "del_follow_user",
            Self::TransferFail => "transfer_fail",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "add_external_contact" => Self::Add,
            "add_half_external_contact" => Self::AddHalf,
            "edit_external_contact" => Self::Edit,
            "del_external_contact" => Self::Delete,
            "del_follow_user" => Self::DeleteFollowUser,
            "transfer_fail" => Self::TransferFail,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalContactEvent {
    pub change: ExternalContactChange,
    /// The member (for `transfer_fail`: the takeover member).
    pub user_id: String,
    pub external_user_id: String,
    /// The 「联系我」 state that produced an add: the lead source.
    pub state: Option<String>,
    /// Valid for 20 seconds, once: send the welcome message with it.
    pub welcome_code: Option<String>,
    /// `DELETE_BY_TRANSFER` when a deletion came from an on-the-job transfer.
    pub source: Option<String>,
    /// `customer_refused` or `customer_limit_exceed`.
    pub fail_reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactChange {
    CreateUser,
    UpdateUser,
    DeleteUser,
}

impl ContactChange {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreateUser => "create_user",
            Self::UpdateUser => "update_user",
            Self::DeleteUser => "delete_user",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "create_user" => Self::CreateUser,
            "update_user" => Self::UpdateUser,
            "delete_user" => Self::DeleteUser,
            _ => return None,
        })
    }
}

/// A member change. Newer contact-sync callbacks carry only `UserID` (and `Department`), so every
/// other field is optional and the handler re-reads the member from the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactEvent {
    pub change: ContactChange,
    pub user_id: String,
    pub new_user_id: Option<String>,
    pub name: Option<String>,
    pub departments: Vec<i64>,
    pub main_department: Option<i64>,
    pub is_leader_in_dept: Vec<bool>,
    pub direct_leader: Vec<String>,
    pub position: Option<String>,
    pub status: Option<i32>,
    pub alias: Option<String>,
}

impl Callback {
    /// A short, stable, low-cardinality name of what this is, e.g. `text`, `event:click`,
    /// `change_external_contact:add_external_contact`, `image`.
    pub fn kind_name(&self) -> String {
        match &self.kind {
            CallbackKind::Text { .. } => "text".into(),
            CallbackKind::EnterAgent { .. } => "event:enter_agent".into(),
            CallbackKind::Click { .. } => "event:click".into(),
            CallbackKind::View { .. } => "event:view".into(),
            CallbackKind::CardClick(_) => "event:template_card_event".into(),
            CallbackKind::ExternalContact(e) => {
                format!("change_external_contact:{}", e.change.as_str())
            }
            CallbackKind::Contact(e) => format!("change_contact:{}", e.change.as_str()),
            CallbackKind::Unknown {
                msg_type,
                event,
                change_type,
            } => {
                let mut name = msg_type.clone();
                for part in [event, change_type].into_iter().flatten() {
                    name.push(':');
                    name.push_str(part);
                }
                name.chars().take(96).collect()
            }
        }
    }

    /// The member who sent it or the member it is about: `FromUserName` for member messages,
    /// `UserID` for system events.
    pub fn subject_user(&self) -> Option<&str> {
        match &self.kind {
            CallbackKind::ExternalContact(e) => Some(&e.user_id),
            CallbackKind::Contact(e) => Some(&e.user_id),
            _ if self.from_user.is_empty() || self.from_user == "sys" => None,
            _ => Some(&self.from_user),
        }
    }
}

/// Parses decrypted inner XML into a typed callback.
pub fn parse_callback(xml: &str) -> Result<Callback, XmlError> {
    let fields = parse_fields(xml)?;
    let mut dedupe_key = dedupe_key(&fields);
    let text = |name: &str| fields.get(name).map(str::trim).unwrap_or_default().to_owned();
    let optional = |name: &str| fields.non_empty(name).map(str::to_owned);
    // Lowercased only when not already lowercase, as WeCom sends them: no allocation per callback.
    let lower = |name: &str| fields.non_empty(name).map(lowercase);

    let msg_type = lower("MsgType").unwrap_or_default();
    let event = lower("Event");
    let change_type = lower("ChangeType");

    let kind = match (msg_type.as_ref(), event.as_deref()) {
        ("text", _) => match (fields.non_empty("MsgId"), fields.get("Content")) {
            (Some(msg_id), Some(content)) => Some(CallbackKind::Text {
                msg_id: msg_id.to_owned(),
                content: content.to_owned(),
            }),
            _ => None,
        },
        ("event", Some("enter_agent")) => Some(CallbackKind::EnterAgent {
            event_key: text("EventKey"),
        }),
        ("event", Some("click")) => Some(CallbackKind::Click {
            event_key: text("EventKey"),
        }),
        ("event", Some("view")) => Some(CallbackKind::View {
            event_key: text("EventKey"),
        }),
        ("event", Some("template_card_event")) => {
            match (fields.non_empty("TaskId"), fields.non_empty("ResponseCode")) {
                (Some(task_id), Some(response_code)) => {
                    // A fresh code per click: WeCom's retries of one click share it, two clicks do not.
                    dedupe_key = format!("card:{}", response_code.chars().take(120).collect::<String>());
                    Some(CallbackKind::CardClick(CardClick {
                        event_key: text("EventKey"),
                        task_id: task_id.to_owned(),
                        card_type: text("CardType"),
                        response_code: response_code.to_owned(),
                        selected: selected_items(xml)?,
                    }))
                }
                _ => None,
            }
        }
        ("event", Some("change_external_contact")) => change_type
            .as_deref()
            .and_then(ExternalContactChange::parse)
            .zip(fields.non_empty("UserID").zip(fields.non_empty("ExternalUserID")))
            .map(|(change, (user_id, external_user_id))| {
                CallbackKind::ExternalContact(ExternalContactEvent {
                    change,
                    user_id: user_id.to_owned(),
                    external_user_id: external_user_id.to_owned(),
                    state: optional("State"),
                    welcome_code: optional("WelcomeCode"),
                    source: optional("Source"),
                    fail_reason: optional("FailReason"),
                })
            }),
        ("event", Some("change_contact")) => change_type
            .as_deref()
            .and_then(ContactChange::parse)
            .zip(fields.non_empty("UserID"))
            .map(|(change, user_id)| {
                CallbackKind::Contact(ContactEvent {
                    change,
                    user_id: user_id.to_owned(),
                    new_user_id: optional("NewUserID"),
                    name: optional("Name"),
                    departments: list(fields.get("Department")).filter_map(|d| d.parse().ok()).collect(),
                    main_department: fields.non_empty("MainDepartment").and_then(|d| d.parse().ok()),
                    is_leader_in_dept: list(fields.get("IsLeaderInDept")).map(|f| f == "1").collect(),
                    direct_leader: list(fields.get("DirectLeader")).map(str::to_owned).collect(),
                    position: optional("Position"),
                    status: fields.non_empty("Status").and_then(|s| s.parse().ok()),
                    alias: optional("Alias"),
                })
            }),
        _ => None,
    };
    let kind = kind.unwrap_or_else(|| CallbackKind::Unknown {
        msg_type: if msg_type.is_empty() {
            "unknown".into()
        } else {
            msg_type.into_owned()
        },
        event: event.map(Cow::into_owned),
        change_type: change_type.map(Cow::into_owned),
    });

    Ok(Callback {
        to_user: text("ToUserName"),
        from_user: text("FromUserName"),
        create_time: fields.non_empty("CreateTime").and_then(|t| t.parse().ok()).unwrap_or(0),
        agent_id: fields.non_empty("AgentID").and_then(|a| a.parse().ok()),
        kind,
        dedupe_key,
    })
}

/// `SelectedItems/SelectedItem/{QuestionKey, OptionIds/OptionId…}`, each option under the question
/// before it.
fn selected_items(xml: &str) -> Result<Vec<(String, Vec<String>)>, XmlError> {
    let mut items: Vec<(String, Vec<String>)> = Vec::new();
    for (name, value) in super::xml::nested_values(xml, &["QuestionKey", "OptionId"])? {
        match (name.as_str(), items.last_mut()) {
            ("QuestionKey", _) => items.push((value, Vec::new())),
            (_, Some((_, ids))) => ids.push(value),
            (_, None) => {}
        }
    }
    Ok(items)
}

fn lowercase(value: &str) -> Cow<'_, str> {
    if value.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(value.to_ascii_lowercase())
    } else {
        Cow::Borrowed(value)
    }
}

fn list(value: Option<&str>) -> impl Iterator<Item = &str> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Messages carry a `MsgId`, unique per corp: `msg:<MsgId>`. Events carry none, so their key is a
/// digest of their whole content (every field, sorted by name): WeCom's retries repeat the content
/// byte for byte, while two different events — e.g. two customers adding the same rep in the same
/// second — differ in at least one field (`ExternalUserID`) and so never collapse into one.
pub fn dedupe_key(fields: &Fields<'_>) -> String {
    /// Characters of a `MsgId` kept in the key; WeCom's are 19 digits.
    const MAX_MSG_ID: usize = 80;
    if let Some(msg_id) = fields.non_empty("MsgId") {
        let mut key = String::with_capacity(4 + msg_id.len().min(MAX_MSG_ID));
        key.push_str("msg:");
        match msg_id.char_indices().nth(MAX_MSG_ID) {
            Some((cut, _)) => key.push_str(&msg_id[..cut]),
            None => key.push_str(msg_id),
        }
        return key;
    }
    let mut sorted: Vec<(&str, &str)> = fields.iter().collect();
    sorted.sort_unstable();
    let mut hasher = Sha1::new();
    for (name, value) in sorted {
        hasher.update(name.as_bytes());
        hasher.update([0x1f]);
        hasher.update(value.trim().as_bytes());
        hasher.update([0x1e]);
    }
    let digest = hasher.finalize();
    let mut key = String::with_capacity(44);
    key.push_str("evt:");
    for b in digest.iter() {
        key.push_str(&format!("{b:02x}"));
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADD: &str = "<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1700001000</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[add_external_contact]]></ChangeType><UserID><![CDATA[zhangsan]]></UserID><ExternalUserID><![CDATA[wmAAA]]></ExternalUserID><State><![CDATA[expo2025_booth3]]></State><WelcomeCode><![CDATA[Kx9f2mL0qW8rT5yZ]]></WelcomeCode></xml>";

    #[test]
    fn text_message_with_and_without_cdata() {
        let cdata = parse_callback("<xml><ToUserName><![CDATA[ww1]]></ToUserName><FromUserName><![CDATA[zhangsan]]></FromUserName><CreateTime>1700000123</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[跟进 张总 明天下午三点回访]]></Content><MsgId>7301234567890123456</MsgId><AgentID>1000002</AgentID></xml>").unwrap();
        let plain = parse_callback("<xml><ToUserName>ww1</ToUserName><FromUserName>zhangsan</FromUserName><CreateTime>1700000123</CreateTime><MsgType>text</MsgType><Content>跟进 张总 明天下午三点回访</Content><MsgId>7301234567890123456</MsgId><AgentID>1000002</AgentID></xml>").unwrap();
        assert_eq!(cdata, plain);
        assert_eq!(cdata.from_user, "zhangsan");
        assert_eq!(cdata.agent_id, Some(1000002));
        assert_eq!(cdata.dedupe_key, "msg:7301234567890123456");
        assert_eq!(
            cdata.kind,
            CallbackKind::Text {
                msg_id: "7301234567890123456".into(),
                content: "跟进 张总 明天下午三点回访".into()
            }
        );
        assert_eq!(cdata.kind_name(), "text");
    }

    #[test]
    fn external_contact_add() {
        let cb = parse_callback(ADD).unwrap();
        let CallbackKind::ExternalContact(e) = &cb.kind else {
            panic!("{cb:?}")
        };
        assert_eq!(e.change, ExternalContactChange::Add);
        assert_eq!(e.user_id, "zhangsan");
        assert_eq!(e.external_user_id, "wmAAA");
        assert_eq!(e.state.as_deref(), Some("expo2025_booth3"));
        assert_eq!(e.welcome_code.as_deref(), Some("Kx9f2mL0qW8rT5yZ"));
        assert_eq!(cb.kind_name(), "change_external_contact:add_external_contact");
        assert_eq!(cb.subject_user(), Some("zhangsan"));
        assert!(cb.dedupe_key.starts_with("evt:") && cb.dedupe_key.len() == 44);
    }

    #[test]
    fn two_customers_adding_the_same_rep_in_the_same_second_are_two_events() {
        let a = parse_callback(ADD).unwrap();
        let b = parse_callback(&ADD.replace("wmAAA", "wmBBB")).unwrap();
        assert_ne!(a.dedupe_key, b.dedupe_key);
        // The same content in another element order (or without CDATA) is the same event.
        let reordered = ADD.replace(
            "<State><![CDATA[expo2025_booth3]]></State><WelcomeCode><![CDATA[Kx9f2mL0qW8rT5yZ]]></WelcomeCode>",
            "<WelcomeCode>Kx9f2mL0qW8rT5yZ</WelcomeCode><State>expo2025_booth3</State>",
        );
        assert_eq!(parse_callback(&reordered).unwrap().dedupe_key, a.dedupe_key);
    }

    #[test]
    fn event_names_are_case_insensitive() {
        let cb = parse_callback("<xml><FromUserName>lisi</FromUserName><CreateTime>1</CreateTime><MsgType>EVENT</MsgType><Event>CLICK</Event><EventKey>DAILY_SUMMARY</EventKey></xml>").unwrap();
        assert_eq!(
            cb.kind,
            CallbackKind::Click {
                event_key: "DAILY_SUMMARY".into()
            }
        );
    }

    #[test]
    fn contact_events() {
        let cb = parse_callback("<xml><ToUserName><![CDATA[ww1]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1700002000</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_contact]]></Event><ChangeType>update_user</ChangeType><UserID><![CDATA[zhangsan]]></UserID><NewUserID><![CDATA[zhangsan01]]></NewUserID><Department><![CDATA[1,3]]></Department><MainDepartment>3</MainDepartment><IsLeaderInDept><![CDATA[1,0]]></IsLeaderInDept></xml>").unwrap();
        let CallbackKind::Contact(e) = cb.kind else { panic!() };
        assert_eq!(e.change, ContactChange::UpdateUser);
        assert_eq!(e.new_user_id.as_deref(), Some("zhangsan01"));
        assert_eq!(e.departments, vec![1, 3]);
        assert_eq!(e.main_department, Some(3));
        assert_eq!(e.is_leader_in_dept, vec![true, false]);
    }

    #[test]
    fn unknown_and_incomplete_callbacks_are_kept_as_unknown() {
        let image = parse_callback("<xml><FromUserName>a</FromUserName><CreateTime>5</CreateTime><MsgType>image</MsgType><MsgId>99</MsgId></xml>").unwrap();
        assert_eq!(image.kind_name(), "image");
        assert_eq!(image.dedupe_key, "msg:99");
        let chat = parse_callback("<xml><MsgType>event</MsgType><Event>change_external_chat</Event><ChangeType>update</ChangeType><ChatId>wr1</ChatId></xml>").unwrap();
        assert_eq!(chat.kind_name(), "event:change_external_chat:update");
        let no_msg_id = parse_callback("<xml><MsgType>text</MsgType><Content>hi</Content></xml>").unwrap();
        assert!(matches!(no_msg_id.kind, CallbackKind::Unknown { .. }));
        let nothing = parse_callback("<xml></xml>").unwrap();
        assert_eq!(nothing.kind_name(), "unknown");
    }

    #[test]
    fn card_clicks_carry_their_choice_and_dedupe_on_the_response_code() {
        let xml = "<xml><ToUserName><![CDATA[ww1]]></ToUserName><FromUserName><![CDATA[zhangsan]]></FromUserName><CreateTime>1700000100</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[template_card_event]]></Event><EventKey><![CDATA[done:12]]></EventKey><TaskId><![CDATA[rem_12_1700000000000]]></TaskId><CardType><![CDATA[button_interaction]]></CardType><ResponseCode><![CDATA[rc-1]]></ResponseCode><AgentID>1000002</AgentID><SelectedItems><SelectedItem><QuestionKey><![CDATA[r]]></QuestionKey><OptionIds><OptionId><![CDATA[13]]></OptionId></OptionIds></SelectedItem></SelectedItems></xml>";
        let cb = parse_callback(xml).unwrap();
        let CallbackKind::CardClick(click) = &cb.kind else {
            panic!("{cb:?}")
        };
        assert_eq!(click.event_key, "done:12");
        assert_eq!(click.task_id, "rem_12_1700000000000");
        assert_eq!(click.selected("r"), Some("13"));
        assert_eq!(click.selected("x"), None);
        assert_eq!(cb.dedupe_key, "card:rc-1");
        assert_eq!(cb.kind_name(), "event:template_card_event");
        assert_eq!(cb.subject_user(), Some("zhangsan"));
        let again = parse_callback(&xml.replace("rc-1", "rc-2")).unwrap();
        assert_ne!(again.dedupe_key, cb.dedupe_key, "a second click is another callback");
        let no_code = parse_callback(&xml.replace("<ResponseCode><![CDATA[rc-1]]></ResponseCode>", "")).unwrap();
        assert!(matches!(no_code.kind, CallbackKind::Unknown { .. }));
    }

    #[test]
    fn envelope() {
        let env = parse_envelope("<xml><ToUserName><![CDATA[ww1]]></ToUserName><Encrypt><![CDATA[abc=]]></Encrypt><AgentID><![CDATA[1]]></AgentID></xml>").unwrap();
        assert_eq!(env.encrypt, "abc=");
        assert_eq!(
            parse_envelope("<xml><Encrypt></Encrypt></xml>"),
            Err(EnvelopeError::MissingEncrypt)
        );
        assert_eq!(parse_envelope("<xml><A/></xml>"), Err(EnvelopeError::MissingEncrypt));
        assert!(matches!(parse_envelope("<xml"), Err(EnvelopeError::Xml(_))));
    }
}
