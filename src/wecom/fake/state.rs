//! The fake's model of one corp and the rules WeCom applies to each call.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::fixture::{Fixture, FixtureMember};
use super::{FaultKind, RecordedRemark, SentMessage, SentWelcome};
use crate::clock::Clock;
use crate::wecom::api::codes;
use crate::wecom::api::types::{
    ContactWithFollowInfo, Department, ExternalContactDetail, FollowInfo, FollowUser, MessageBody, RemarkUpdate,
    SendMessageRequest,
};

const TOKEN_LIFETIME: Duration = Duration::from_secs(7200);
/// `externalcontact/get` pages `follow_user` beyond this many entries.
pub(super) const FOLLOW_USER_PAGE: usize = 500;

/// A refusal: errcode and errmsg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: i64,
    pub message: String,
}

fn refuse(code: i64, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

pub type Answer = Result<Value, Refusal>;

struct Fault {
    call: Option<String>,
    kind: FaultKind,
    remaining: u32,
}

struct Transfer {
    handover: String,
    takeover: String,
    external_userid: String,
    takeover_time: i64,
}

pub struct State {
    corp_id: String,
    agent_id: i64,
    secret: String,
    departments: Vec<Department>,
    members: Vec<FixtureMember>,
    contacts: BTreeMap<String, ExternalContactDetail>,
    tokens: HashMap<String, Instant>,
    token_seq: u64,
    msg_seq: u64,
    pub calls: HashMap<String, u32>,
    pub messages: Vec<SentMessage>,
    pub welcomes: Vec<SentWelcome>,
    used_welcome_codes: HashSet<String>,
    pub remarks: Vec<RecordedRemark>,
    transfers: Vec<Transfer>,
    faults: Vec<Fault>,
    pub delay: Duration,
    pub in_flight: u32,
    pub max_in_flight: u32,
    /// Duplicate-check windows: request digest → end (ms on `clock`).
    duplicates: HashMap<u64, i64>,
    pub suppressed_duplicates: u32,
    pub clock: Clock,
    /// Sign-in codes, JS-SDK tickets and the sidebar's chat.
    pub web: super::web::WebSide,
    /// Template cards sent, their clicks and updates.
    pub cards: super::cards::CardSide,
}

impl State {
    pub fn new(fixture: &Fixture) -> Self {
        Self {
            corp_id: fixture.corp_id.clone(),
            agent_id: fixture.agent_id,
            secret: fixture.secret.clone(),
            departments: fixture.departments.clone(),
            members: fixture.members.clone(),
            contacts: fixture
                .external_contacts
                .iter()
                .map(|c| (c.external_contact.external_userid.clone(), c.clone()))
                .collect(),
            tokens: HashMap::new(),
            token_seq: 0,
            msg_seq: 0,
            calls: HashMap::new(),
            messages: Vec::new(),
            welcomes: Vec::new(),
            used_welcome_codes: HashSet::new(),
            remarks: Vec::new(),
            transfers: Vec::new(),
            faults: Vec::new(),
            delay: Duration::ZERO,
            in_flight: 0,
            max_in_flight: 0,
            duplicates: HashMap::new(),
            suppressed_duplicates: 0,
            clock: Clock::system(),
            web: Default::default(),
            cards: Default::default(),
        }
    }

    /// Starts over from `fixture`, keeping the issued tokens and the clock.
    pub fn reset(&mut self, fixture: &Fixture) {
        let mut fresh = Self::new(fixture);
        std::mem::swap(&mut fresh.tokens, &mut self.tokens);
        fresh.token_seq = self.token_seq;
        fresh.msg_seq = self.msg_seq;
        fresh.clock = self.clock.clone();
        *self = fresh;
    }

    pub fn expire_tokens(&mut self) {
        let now = Instant::now();
        for expiry in self.tokens.values_mut() {
            *expiry = now;
        }
    }

    pub fn add_fault(&mut self, call: Option<String>, kind: FaultKind, count: u32) {
        if count > 0 {
            self.faults.push(Fault {
                call,
                kind,
                remaining: count,
            });
        }
    }

    /// The fault that hits this call, if any (consuming one use).
    pub fn take_fault(&mut self, call: &str) -> Option<FaultKind> {
        let fault = self.faults.iter_mut().find(|f| match &f.call {
            Some(c) => c == call,
            None => call != "gettoken",
        })?;
        fault.remaining -= 1;
        let kind = fault.kind;
        self.faults.retain(|f| f.remaining > 0);
        Some(kind)
    }

    pub fn set_member_status(&mut self, userid: &str, status: i32) {
        if let Some(m) = self.members.iter_mut().find(|m| m.member.userid == userid) {
            m.member.status = status;
        }
    }

    pub fn upsert_member(&mut self, member: FixtureMember) {
        self.members.retain(|m| m.member.userid != member.member.userid);
        self.members.push(member);
    }

    pub fn remove_member(&mut self, userid: &str) {
        self.members.retain(|m| m.member.userid != userid);
    }

    pub fn end_relation(&mut self, external_userid: &str, userid: &str) {
        if let Some(contact) = self.contacts.get_mut(external_userid) {
            contact.follow_user.retain(|f| f.userid != userid);
        }
    }

    pub fn upsert_contact(&mut self, detail: ExternalContactDetail) {
        self.contacts
            .insert(detail.external_contact.external_userid.clone(), detail);
    }

    pub fn corp_id(&self) -> &str {
        &self.corp_id
    }

    pub fn agent_id(&self) -> i64 {
        self.agent_id
    }

    /// An active member of the corp.
    pub fn is_member(&self, userid: &str) -> bool {
        self.member(userid).is_some_and(|m| m.member.status == 1)
    }

    /// Active members' userids and names, for the sign-in picker.
    pub fn member_names(&self) -> Vec<(String, String)> {
        self.members
            .iter()
            .filter(|m| m.member.status == 1)
            .map(|m| (m.member.userid.clone(), m.member.name.clone()))
            .collect()
    }

    fn member(&self, userid: &str) -> Option<&FixtureMember> {
        self.members.iter().find(|m| m.member.userid == userid)
    }

    pub fn gettoken(&mut self, query: &HashMap<String, String>) -> Answer {
        let corpid = query
            .get("corpid")
            .filter(|v| !v.is_empty())
            .ok_or_else(|| refuse(41002, "corpid missing"))?;
        let secret = query
            .get("corpsecret")
            .filter(|v| !v.is_empty())
            .ok_or_else(|| refuse(41004, "corpsecret missing"))?;
        if *corpid != self.corp_id {
            return Err(refuse(codes::INVALID_CORPID, "invalid corpid"));
        }
        if *secret != self.secret {
            return Err(refuse(
                codes::INVALID_CREDENTIAL,
                "invalid credential, invalid corpsecret",
            ));
        }
        self.token_seq += 1;
        let token = format!("fake-token-{}-{:08x}", self.token_seq, rand::random::<u32>());
        self.tokens.insert(token.clone(), Instant::now() + TOKEN_LIFETIME);
        Ok(json!({ "access_token": token, "expires_in": TOKEN_LIFETIME.as_secs() }))
    }

    pub fn check_token(&self, query: &HashMap<String, String>) -> Result<(), Refusal> {
        let token = query
            .get("access_token")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| refuse(codes::MISSING_ACCESS_TOKEN, "access_token missing"))?;
        match self.tokens.get(token) {
            None => Err(refuse(codes::INVALID_ACCESS_TOKEN, "invalid access_token")),
            Some(expiry) if *expiry <= Instant::now() => {
                Err(refuse(codes::ACCESS_TOKEN_EXPIRED, "access_token expired"))
            }
            Some(_) => Ok(()),
        }
    }

    /// Dispatches one business call (token already checked).
    pub fn handle(&mut self, call: &str, query: &HashMap<String, String>, body: Option<Value>) -> Answer {
        let body = body.unwrap_or(Value::Null);
        let q = |name: &str| query.get(name).map(String::as_str).unwrap_or_default();
        match call {
            "message/send" => self.send_message(body),
            "message/update_template_card" => self.cards.update(&body, self.agent_id),
            "externalcontact/get" => self.get_contact(q("external_userid"), q("cursor")),
            "externalcontact/list" => self.list_contacts(q("userid")),
            "externalcontact/batch/get_by_user" => self.batch_get_by_user(&body),
            "externalcontact/get_follow_user_list" => Ok(json!({
                "follow_user": self.members.iter().filter(|m| m.customer_contact && m.member.status == 1)
                    .map(|m| m.member.userid.clone()).collect::<Vec<_>>()
            })),
            "externalcontact/send_welcome_msg" => self.send_welcome(&body),
            "externalcontact/remark" => self.remark(body),
            "user/get" => self.get_user(q("userid")),
            "user/list" => self.list_users(q("department_id"), q("fetch_child") == "1"),
            "department/list" => self.list_departments(q("id")),
            "externalcontact/resigned/transfer_customer" => self.transfer(&body),
            "externalcontact/resigned/transfer_result" => self.transfer_result(&body),
            "auth/getuserinfo" => self.web.user_of_code(q("code")),
            "get_jsapi_ticket" => self.web.corp_ticket(),
            "ticket/get" => self.web.agent_ticket(q("type")),
            other => Err(refuse(404, format!("api not found: {other}"))),
        }
    }

    fn send_message(&mut self, body: Value) -> Answer {
        let duplicate_key = {
            let mut hasher = DefaultHasher::new();
            body.to_string().hash(&mut hasher);
            hasher.finish()
        };
        let request: SendMessageRequest = serde_json::from_value(body.clone()).map_err(|e| {
            let msgtype = body.get("msgtype").and_then(Value::as_str).unwrap_or_default();
            if matches!(msgtype, "text" | "markdown" | "textcard" | "template_card") {
                refuse(codes::INVALID_PARAMETER, format!("invalid parameter: {e}"))
            } else {
                refuse(40008, "invalid message type")
            }
        })?;
        if request.agentid != self.agent_id {
            return Err(refuse(codes::INVALID_AGENTID, "invalid agentid"));
        }
        let content_empty = match &request.body {
            MessageBody::Text { text } => text.content.trim().is_empty(),
            MessageBody::Markdown { markdown } => markdown.content.trim().is_empty(),
            MessageBody::Textcard { textcard } => {
                textcard.title.is_empty() || textcard.description.is_empty() || textcard.url.is_empty()
            }
            MessageBody::TemplateCard { template_card } => template_card.main_title.title.is_empty(),
        };
        if content_empty {
            return Err(refuse(44004, "empty content"));
        }
        let recipients: Vec<&str> = request.touser.split('|').filter(|u| !u.is_empty()).collect();
        if recipients.is_empty() {
            return Err(refuse(codes::INVALID_PARAMETER, "touser is empty"));
        }
        let (valid, invalid): (Vec<&str>, Vec<&str>) = recipients
            .into_iter()
            .partition(|u| self.member(u).is_some_and(|m| m.member.status == 1));
        if valid.is_empty() {
            return Err(refuse(
                codes::ALL_RECIPIENTS_INVALID,
                "all touser invalid or unauthorized",
            ));
        }
        let invaliduser = invalid.iter().map(|u| u.to_lowercase()).collect::<Vec<_>>().join("|");
        let now = self.clock.now_ms();
        self.duplicates.retain(|_, until| *until > now);
        if request.enable_duplicate_check == 1 {
            let interval_ms = request.duplicate_check_interval.unwrap_or(1800).min(14_400) as i64 * 1000;
            if self.duplicates.contains_key(&duplicate_key) {
                self.suppressed_duplicates += 1;
                return Ok(json!({ "invaliduser": invaliduser, "msgid": "", "invalidparty": "", "invalidtag": "" }));
            }
            self.duplicates.insert(duplicate_key, now + interval_ms);
        }
        if let MessageBody::TemplateCard { template_card } = &request.body {
            let to: Vec<String> = valid.iter().map(|u| (*u).to_owned()).collect();
            self.cards.accept(template_card, &to)?;
        }
        self.msg_seq += 1;
        let msgid = format!("fake-msg-{}", self.msg_seq);
        self.messages.push(SentMessage {
            msgid: msgid.clone(),
            to_users: valid.iter().map(|u| (*u).to_owned()).collect(),
            body: request.body,
            duplicate_check: request.enable_duplicate_check == 1,
            duplicate_check_interval: request.duplicate_check_interval,
            at: now,
        });
        Ok(json!({ "invaliduser": invaliduser, "invalidparty": "", "invalidtag": "", "msgid": msgid }))
    }

    fn get_contact(&self, external_userid: &str, cursor: &str) -> Answer {
        if external_userid.is_empty() {
            return Err(refuse(codes::INVALID_EXTERNAL_USERID, "invalid external_userid"));
        }
        let contact = self
            .contacts
            .get(external_userid)
            .ok_or_else(|| refuse(codes::INVALID_EXTERNAL_USERID, "invalid external_userid"))?;
        let start: usize = if cursor.is_empty() {
            0
        } else {
            cursor
                .parse()
                .map_err(|_| refuse(codes::INVALID_PARAMETER, "invalid cursor"))?
        };
        let end = (start + FOLLOW_USER_PAGE).min(contact.follow_user.len());
        let page = contact.follow_user.get(start..end).unwrap_or_default();
        let next_cursor = if end < contact.follow_user.len() {
            end.to_string()
        } else {
            String::new()
        };
        Ok(json!({ "external_contact": contact.external_contact, "follow_user": page, "next_cursor": next_cursor }))
    }

    fn followers_of<'a>(&'a self, userid: &'a str) -> impl Iterator<Item = &'a ExternalContactDetail> + 'a {
        self.contacts
            .values()
            .filter(move |c| c.follow_user.iter().any(|f| f.userid == userid))
    }

    fn list_contacts(&self, userid: &str) -> Answer {
        if self.member(userid).is_none() {
            return Err(refuse(codes::USER_NOT_FOUND, "invalid userid"));
        }
        let ids: Vec<&str> = self
            .followers_of(userid)
            .map(|c| c.external_contact.external_userid.as_str())
            .collect();
        if ids.is_empty() {
            return Err(refuse(codes::NO_RELATIONSHIP, "no external contact relationship"));
        }
        Ok(json!({ "external_userid": ids }))
    }

    fn batch_get_by_user(&self, body: &Value) -> Answer {
        let userids: Vec<String> = serde_json::from_value(body.get("userid_list").cloned().unwrap_or(Value::Null))
            .map_err(|_| refuse(codes::INVALID_PARAMETER, "userid_list is required"))?;
        if userids.is_empty() || userids.len() > 100 {
            return Err(refuse(
                codes::INVALID_PARAMETER,
                "userid_list must hold 1 to 100 userids",
            ));
        }
        let limit = body.get("limit").and_then(Value::as_u64).unwrap_or(50);
        if !(1..=100).contains(&limit) {
            return Err(refuse(codes::INVALID_PARAMETER, "limit must be 1 to 100"));
        }
        let cursor = body.get("cursor").and_then(Value::as_str).unwrap_or_default();
        let start: usize = if cursor.is_empty() {
            0
        } else {
            cursor
                .parse()
                .map_err(|_| refuse(codes::INVALID_PARAMETER, "invalid cursor"))?
        };
        // One pass over the customers, grouped by member, in the order the members were asked for.
        let wanted: HashSet<&str> = userids.iter().map(String::as_str).collect();
        let mut by_member: HashMap<&str, Vec<(&ExternalContactDetail, &FollowUser)>> = HashMap::new();
        for contact in self.contacts.values() {
            for follow in contact
                .follow_user
                .iter()
                .filter(|f| wanted.contains(f.userid.as_str()))
            {
                by_member
                    .entry(follow.userid.as_str())
                    .or_default()
                    .push((contact, follow));
            }
        }
        let mut rows = Vec::new();
        for userid in &userids {
            rows.extend(by_member.remove(userid.as_str()).unwrap_or_default());
        }
        let end = (start + limit as usize).min(rows.len());
        let page: Vec<ContactWithFollowInfo> = rows
            .get(start..end)
            .unwrap_or_default()
            .iter()
            .map(|(contact, follow)| ContactWithFollowInfo {
                external_contact: contact.external_contact.clone(),
                follow_info: FollowInfo {
                    userid: follow.userid.clone(),
                    remark: follow.remark.clone(),
                    description: follow.description.clone(),
                    createtime: follow.createtime,
                    tag_id: follow
                        .tags
                        .iter()
                        .map(|t| t.tag_id.clone())
                        .filter(|t| !t.is_empty())
                        .collect(),
                    remark_corp_name: follow.remark_corp_name.clone(),
                    remark_mobiles: follow.remark_mobiles.clone(),
                    oper_userid: follow.oper_userid.clone(),
                    add_way: follow.add_way,
                    state: follow.state.clone(),
                },
            })
            .collect();
        let next_cursor = if end < rows.len() {
            end.to_string()
        } else {
            String::new()
        };
        Ok(json!({ "external_contact_list": page, "next_cursor": next_cursor }))
    }

    fn send_welcome(&mut self, body: &Value) -> Answer {
        let code = body.get("welcome_code").and_then(Value::as_str).unwrap_or_default();
        if code.is_empty() {
            return Err(refuse(codes::INVALID_PARAMETER, "welcome_code is required"));
        }
        let text = body
            .pointer("/text/content")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if text.len() > 4000 {
            return Err(refuse(codes::INVALID_PARAMETER, "text.content exceeds 4000 bytes"));
        }
        if !self.used_welcome_codes.insert(code.to_owned()) {
            return Err(refuse(codes::WELCOME_ALREADY_SENT, "welcome message already sent"));
        }
        self.welcomes.push(SentWelcome {
            welcome_code: code.to_owned(),
            text: text.to_owned(),
        });
        Ok(json!({}))
    }

    fn remark(&mut self, body: Value) -> Answer {
        let userid = body
            .get("userid")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let external_userid = body
            .get("external_userid")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let follows = self
            .contacts
            .get(&external_userid)
            .is_some_and(|c| c.follow_user.iter().any(|f| f.userid == userid));
        if !follows {
            return Err(refuse(codes::NO_RELATIONSHIP, "no external contact relationship"));
        }
        let update: RemarkUpdate =
            serde_json::from_value(body).map_err(|e| refuse(codes::INVALID_PARAMETER, e.to_string()))?;
        if update.remark.as_ref().is_some_and(|r| r.chars().count() > 20) {
            return Err(refuse(codes::INVALID_PARAMETER, "remark exceeds 20 characters"));
        }
        if let Some(follow) = self
            .contacts
            .get_mut(&external_userid)
            .and_then(|c| c.follow_user.iter_mut().find(|f| f.userid == userid))
        {
            if let Some(remark) = &update.remark {
                follow.remark = remark.clone();
            }
            if let Some(description) = &update.description {
                follow.description = description.clone();
            }
        }
        self.remarks.push(RecordedRemark {
            userid,
            external_userid,
            update,
        });
        Ok(json!({}))
    }

    fn get_user(&self, userid: &str) -> Answer {
        if userid.is_empty() {
            return Err(refuse(codes::INVALID_PARAMETER, "userid is required"));
        }
        let member = self
            .member(userid)
            .ok_or_else(|| refuse(codes::USER_NOT_FOUND, "userid not found"))?;
        Ok(serde_json::to_value(&member.member).expect("a member serializes"))
    }

    fn department_and_children(&self, id: i64) -> Vec<i64> {
        let mut ids = vec![id];
        let mut i = 0;
        while i < ids.len() {
            let parent = ids[i];
            ids.extend(
                self.departments
                    .iter()
                    .filter(|d| d.parentid == parent && d.id != parent)
                    .map(|d| d.id),
            );
            i += 1;
        }
        ids
    }

    fn list_users(&self, department_id: &str, fetch_child: bool) -> Answer {
        let id: i64 = department_id
            .parse()
            .map_err(|_| refuse(codes::INVALID_PARAMETER, "department_id is required"))?;
        if !self.departments.iter().any(|d| d.id == id) {
            return Err(refuse(60123, "invalid department"));
        }
        let wanted = if fetch_child {
            self.department_and_children(id)
        } else {
            vec![id]
        };
        let users: Vec<_> = self
            .members
            .iter()
            .filter(|m| m.member.department.iter().any(|d| wanted.contains(d)))
            .map(|m| &m.member)
            .collect();
        Ok(json!({ "userlist": users }))
    }

    fn list_departments(&self, id: &str) -> Answer {
        if id.is_empty() {
            return Ok(json!({ "department": self.departments }));
        }
        let id: i64 = id.parse().map_err(|_| refuse(codes::INVALID_PARAMETER, "invalid id"))?;
        if !self.departments.iter().any(|d| d.id == id) {
            return Err(refuse(60123, "invalid department"));
        }
        let ids = self.department_and_children(id);
        let list: Vec<_> = self.departments.iter().filter(|d| ids.contains(&d.id)).collect();
        Ok(json!({ "department": list }))
    }

    fn transfer(&mut self, body: &Value) -> Answer {
        let field = |name: &str| body.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
        let (handover, takeover) = (field("handover_userid"), field("takeover_userid"));
        let external: Vec<String> = serde_json::from_value(body.get("external_userid").cloned().unwrap_or(Value::Null))
            .map_err(|_| refuse(codes::INVALID_PARAMETER, "external_userid is required"))?;
        if external.is_empty() || external.len() > 100 {
            return Err(refuse(
                codes::INVALID_PARAMETER,
                "external_userid must hold 1 to 100 ids",
            ));
        }
        match self.member(&handover) {
            None => return Err(refuse(codes::USER_NOT_FOUND, "handover_userid not found")),
            Some(m) if m.member.status != 5 => {
                return Err(refuse(40097, "handover member has not left"));
            }
            Some(_) => {}
        }
        if self.member(&takeover).is_none_or(|m| m.member.status != 1) {
            return Err(refuse(codes::USER_NOT_FOUND, "takeover_userid invalid"));
        }
        let takeover_time = chrono::Utc::now().timestamp() + 24 * 3600;
        let mut results = Vec::with_capacity(external.len());
        for id in external {
            let follows = self
                .contacts
                .get(&id)
                .is_some_and(|c| c.follow_user.iter().any(|f| f.userid == handover));
            let already = self
                .transfers
                .iter()
                .any(|t| t.external_userid == id && t.handover == handover);
            let errcode = if !follows {
                40131
            } else if already {
                40100
            } else {
                self.transfers.push(Transfer {
                    handover: handover.clone(),
                    takeover: takeover.clone(),
                    external_userid: id.clone(),
                    takeover_time,
                });
                0
            };
            results.push(json!({ "external_userid": id, "errcode": errcode }));
        }
        Ok(json!({ "customer": results }))
    }

    fn transfer_result(&self, body: &Value) -> Answer {
        let field = |name: &str| body.get(name).and_then(Value::as_str).unwrap_or_default();
        let (handover, takeover) = (field("handover_userid"), field("takeover_userid"));
        if handover.is_empty() || takeover.is_empty() {
            return Err(refuse(
                codes::INVALID_PARAMETER,
                "handover_userid and takeover_userid are required",
            ));
        }
        let customers: Vec<_> = self
            .transfers
            .iter()
            .filter(|t| t.handover == handover && t.takeover == takeover)
            .map(|t| json!({ "external_userid": t.external_userid, "status": 2, "takeover_time": t.takeover_time }))
            .collect();
        Ok(json!({ "customer": customers, "next_cursor": "" }))
    }
}
