//! The fake's template cards: cards sent with `message/send` are checked as WeCom checks them
//! (limits, a task id never reused: 42014) and kept per task id; a click issues a fresh response
//! code, which `message/update_template_card` accepts once (then 60140); an update — through that
//! call or a passive `update_button` reply — replaces the clicker's buttons with its text.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::state::{Answer, Refusal};
use crate::wecom::api::card::TemplateCard;
use crate::wecom::api::codes;

#[derive(Debug, Clone)]
struct SentCard {
    to_users: Vec<String>,
    /// What each member's buttons show instead, once updated.
    replaced: HashMap<String, String>,
}

#[derive(Debug, Clone)]
struct IssuedCode {
    task_id: String,
    userid: String,
    used: bool,
}

#[derive(Debug, Default)]
pub struct CardSide {
    cards: HashMap<String, SentCard>,
    codes: HashMap<String, IssuedCode>,
    seq: u64,
}

fn refuse(code: i64, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

impl CardSide {
    /// Checks a card about to be sent to `to_users`; WeCom refuses a task id it has seen.
    pub fn accept(&mut self, card: &TemplateCard, to_users: &[String]) -> Result<(), Refusal> {
        card.check()
            .map_err(|e| refuse(codes::INVALID_PARAMETER, format!("invalid template_card: {e}")))?;
        if self.cards.contains_key(&card.task_id) {
            return Err(refuse(
                codes::TASK_ID_EXISTS,
                "taskid has existed or empty or exceed max len",
            ));
        }
        self.cards.insert(
            card.task_id.clone(),
            SentCard {
                to_users: to_users.to_vec(),
                replaced: HashMap::new(),
            },
        );
        Ok(())
    }

    /// A click of `userid` on the card `task_id`: a fresh response code, or why there can be no
    /// click (no such card, not theirs, its buttons already replaced).
    pub fn click(&mut self, userid: &str, task_id: &str) -> Result<String, String> {
        let card = self
            .cards
            .get(task_id)
            .ok_or_else(|| format!("no card with task id {task_id}"))?;
        if !card.to_users.iter().any(|u| u == userid) {
            return Err(format!("the card {task_id} was not sent to {userid}"));
        }
        if let Some(text) = card.replaced.get(userid) {
            return Err(format!("the buttons of {task_id} show “{text}” and no longer respond"));
        }
        self.seq += 1;
        let code = format!("fake-rc-{}-{:08x}", self.seq, rand::random::<u32>());
        self.codes.insert(
            code.clone(),
            IssuedCode {
                task_id: task_id.to_owned(),
                userid: userid.to_owned(),
                used: false,
            },
        );
        Ok(code)
    }

    /// A passive `update_button` reply to a click on `task_id` by `userid`.
    pub fn replace_passively(&mut self, task_id: &str, userid: &str, text: &str) {
        if let Some(card) = self.cards.get_mut(task_id) {
            card.replaced.insert(userid.to_owned(), text.to_owned());
        }
    }

    /// `message/update_template_card` with `button.replace_name`.
    pub fn update(&mut self, body: &Value, agent_id: i64) -> Answer {
        if body.get("agentid").and_then(Value::as_i64) != Some(agent_id) {
            return Err(refuse(codes::INVALID_AGENTID, "invalid agentid"));
        }
        let code = body.get("response_code").and_then(Value::as_str).unwrap_or_default();
        let issued = self
            .codes
            .get_mut(code)
            .filter(|c| !c.used)
            .ok_or_else(|| refuse(codes::RESPONSE_CODE_SPENT, "invalid response_code"))?;
        let name = body
            .pointer("/button/replace_name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| refuse(codes::INVALID_PARAMETER, "button.replace_name is required"))?;
        issued.used = true;
        let (task_id, clicker) = (issued.task_id.clone(), issued.userid.clone());
        let users: Vec<String> = body
            .get("userids")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_else(|| vec![clicker]);
        if let Some(card) = self.cards.get_mut(&task_id) {
            for user in users {
                card.replaced.insert(user, name.to_owned());
            }
        }
        Ok(json!({}))
    }

    /// What `userid`'s copy of the card shows instead of its buttons, once updated.
    pub fn replaced(&self, task_id: &str, userid: &str) -> Option<String> {
        self.cards.get(task_id)?.replaced.get(userid).cloned()
    }
}
