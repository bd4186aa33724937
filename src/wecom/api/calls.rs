//! The API calls the service makes, one method each, with WeCom's pagination followed.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::types::*;
use super::{WecomClient, WecomError, codes};

#[derive(Deserialize)]
struct Empty {}

/// WeCom keeps duplicate-check windows to 4 hours at most.
const MAX_DUPLICATE_CHECK: Duration = Duration::from_secs(4 * 3600);
/// Pause between attempts while another app is sending the same welcome message (41096).
const WELCOME_BUSY_PAUSE: Duration = Duration::from_millis(500);

impl WecomClient {
    /// `message/send`. WeCom silently drops what is above its per-member limits: callers keep
    /// to them (the outbox does, from its record of attempts).
    pub async fn send_message(&self, message: &OutgoingMessage) -> Result<SendOutcome, WecomError> {
        self.post_message(message, &super::Once::retried()).await
    }

    async fn post_message(
        &self,
        message: &OutgoingMessage,
        policy: &super::Once<'_>,
    ) -> Result<SendOutcome, WecomError> {
        const CALL: &str = "message/send";
        if message.to_users.is_empty() {
            return Err(WecomError::Api {
                call: CALL,
                code: codes::INVALID_PARAMETER,
                message: "no recipient".into(),
            });
        }
        let request = SendMessageRequest {
            touser: message.to_users.join("|"),
            agentid: self.agent_id(),
            body: message.body.clone(),
            safe: 0,
            enable_duplicate_check: i32::from(message.duplicate_check.is_some()),
            duplicate_check_interval: message
                .duplicate_check
                .map(|d| d.min(MAX_DUPLICATE_CHECK).as_secs().max(1)),
        };
        let answer = self
            .call_with::<_, SendMessageResponse>(CALL, Method::POST, &[], Some(&request), policy)
            .await?;
        Ok(SendOutcome {
            msgid: answer.msgid,
            invalid_users: answer
                .invaliduser
                .split('|')
                .filter(|u| !u.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }

    /// `message/send` to one member, made once — no retry here: the caller retries — and only if
    /// `on_time` still holds once the token is in hand, right before the request goes out (else
    /// [`WecomError::Late`], and nothing was sent). Returns WeCom's msgid.
    pub async fn send_to_user_once(
        &self,
        user: &str,
        body: MessageBody,
        duplicate_check: Option<Duration>,
        on_time: &(dyn Fn() -> bool + Send + Sync),
    ) -> Result<String, WecomError> {
        let message = OutgoingMessage {
            to_users: vec![user.to_owned()],
            body,
            duplicate_check,
        };
        let policy = super::Once {
            retried: false,
            on_time,
        };
        let outcome = match self.post_message(&message, &policy).await {
            Err(WecomError::Api {
                code: codes::ALL_RECIPIENTS_INVALID,
                ..
            }) => return Err(WecomError::InvalidRecipient { user: user.to_owned() }),
            other => other?,
        };
        if outcome.invalid_users.iter().any(|u| u.eq_ignore_ascii_case(user)) {
            return Err(WecomError::InvalidRecipient { user: user.to_owned() });
        }
        Ok(outcome.msgid)
    }

    /// Sends to one member; an `invaliduser` answer for them is an error. Returns WeCom's msgid.
    pub async fn send_to_user(
        &self,
        user: &str,
        body: MessageBody,
        duplicate_check: Option<Duration>,
    ) -> Result<String, WecomError> {
        let message = OutgoingMessage {
            to_users: vec![user.to_owned()],
            body,
            duplicate_check,
        };
        let outcome = match self.send_message(&message).await {
            Err(WecomError::Api {
                code: codes::ALL_RECIPIENTS_INVALID,
                ..
            }) => {
                return Err(WecomError::InvalidRecipient { user: user.to_owned() });
            }
            other => other?,
        };
        if outcome.invalid_users.iter().any(|u| u.eq_ignore_ascii_case(user)) {
            return Err(WecomError::InvalidRecipient { user: user.to_owned() });
        }
        Ok(outcome.msgid)
    }

    /// `message/update_template_card` with `button.replace_name`: the member's copy of the card
    /// shows `replace_name` on its buttons, which no longer respond. `response_code` is the one the
    /// click brought; it works once, so a code already spent (60140) means an earlier call
    /// (perhaps unheard) did it: [`CardUpdate::CodeSpent`].
    pub async fn update_card_buttons(
        &self,
        userid: &str,
        response_code: &str,
        replace_name: &str,
    ) -> Result<CardUpdate, WecomError> {
        let body = json!({
            "userids": [userid],
            "agentid": self.agent_id(),
            "response_code": response_code,
            "button": { "replace_name": replace_name },
        });
        match self
            .call::<_, Empty>("message/update_template_card", Method::POST, &[], Some(&body))
            .await
        {
            Ok(_) => Ok(CardUpdate::Updated),
            Err(WecomError::Api {
                code: codes::RESPONSE_CODE_SPENT,
                ..
            }) => Ok(CardUpdate::CodeSpent),
            Err(e) => Err(e),
        }
    }

    /// `externalcontact/get`: the customer and every member following them (all cursor pages).
    pub async fn get_external_contact(&self, external_userid: &str) -> Result<ExternalContactDetail, WecomError> {
        let mut detail = ExternalContactDetail::default();
        let mut cursor = String::new();
        loop {
            let page: ExternalContactPage = self
                .call::<(), _>(
                    "externalcontact/get",
                    Method::GET,
                    &[("external_userid", external_userid), ("cursor", &cursor)],
                    None,
                )
                .await?;
            detail.external_contact = page.external_contact;
            detail.follow_user.extend(page.follow_user);
            if page.next_cursor.is_empty() || page.next_cursor == cursor {
                return Ok(detail);
            }
            cursor = page.next_cursor;
        }
    }

    /// `externalcontact/list`: a member's customers' ids (none when WeCom says 84061).
    pub async fn list_external_contacts(&self, userid: &str) -> Result<Vec<String>, WecomError> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            external_userid: Vec<String>,
        }
        match self
            .call::<(), Answer>("externalcontact/list", Method::GET, &[("userid", userid)], None)
            .await
        {
            Ok(answer) => Ok(answer.external_userid),
            Err(WecomError::Api {
                code: codes::NO_RELATIONSHIP,
                ..
            }) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// One page of `externalcontact/batch/get_by_user` (≤ 100 members, ≤ 100 rows per page).
    pub async fn batch_get_by_user(
        &self,
        userids: &[String],
        cursor: &str,
        limit: u32,
    ) -> Result<BatchPage, WecomError> {
        let body = json!({ "userid_list": userids, "cursor": cursor, "limit": limit.clamp(1, 100) });
        self.call("externalcontact/batch/get_by_user", Method::POST, &[], Some(&body))
            .await
    }

    /// Every customer of the given members, following the cursor to the end.
    pub async fn batch_get_all_by_user(&self, userids: &[String]) -> Result<Vec<ContactWithFollowInfo>, WecomError> {
        let mut all = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = self.batch_get_by_user(userids, &cursor, 100).await?;
            all.extend(page.external_contact_list);
            if page.next_cursor.is_empty() || page.next_cursor == cursor {
                return Ok(all);
            }
            cursor = page.next_cursor;
        }
    }

    /// `externalcontact/get_follow_user_list`: members with 客户联系 enabled.
    pub async fn get_follow_user_list(&self) -> Result<Vec<String>, WecomError> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            follow_user: Vec<String>,
        }
        let answer: Answer = self
            .call::<(), _>("externalcontact/get_follow_user_list", Method::GET, &[], None)
            .await?;
        Ok(answer.follow_user)
    }

    /// `externalcontact/send_welcome_msg`, before `deadline` (a welcome code is valid for 20 s).
    /// 41051 means the customer already has a welcome; 41096 (another app is sending) is retried
    /// until the deadline.
    pub async fn send_welcome_msg(
        &self,
        welcome_code: &str,
        message: &WelcomeMessage,
        deadline: Instant,
    ) -> Result<WelcomeOutcome, WecomError> {
        let body = json!({ "welcome_code": welcome_code, "text": { "content": message.text } });
        loop {
            match self
                .call::<_, Empty>("externalcontact/send_welcome_msg", Method::POST, &[], Some(&body))
                .await
            {
                Ok(_) => return Ok(WelcomeOutcome::Sent),
                Err(WecomError::Api {
                    code: codes::WELCOME_ALREADY_SENT,
                    ..
                }) => return Ok(WelcomeOutcome::AlreadySent),
                Err(
                    e @ WecomError::Api {
                        code: codes::WELCOME_BEING_SENT,
                        ..
                    },
                ) => {
                    if Instant::now() + WELCOME_BUSY_PAUSE >= deadline {
                        return Err(e);
                    }
                    tokio::time::sleep(WELCOME_BUSY_PAUSE).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// `externalcontact/remark`: changes only the fields given.
    pub async fn remark(&self, userid: &str, external_userid: &str, update: &RemarkUpdate) -> Result<(), WecomError> {
        let mut body = serde_json::to_value(update).expect("a remark update serializes");
        body["userid"] = json!(userid);
        body["external_userid"] = json!(external_userid);
        self.call::<_, Empty>("externalcontact/remark", Method::POST, &[], Some(&body))
            .await
            .map(|_| ())
    }

    /// `user/get`.
    pub async fn get_user(&self, userid: &str) -> Result<Member, WecomError> {
        self.call::<(), _>("user/get", Method::GET, &[("userid", userid)], None)
            .await
    }

    /// `user/list`: members of a department, with its sub-departments when `fetch_child`.
    pub async fn list_users(&self, department_id: i64, fetch_child: bool) -> Result<Vec<Member>, WecomError> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            userlist: Vec<Member>,
        }
        let department = department_id.to_string();
        let query = [
            ("department_id", department.as_str()),
            ("fetch_child", if fetch_child { "1" } else { "0" }),
        ];
        let answer: Answer = self.call::<(), _>("user/list", Method::GET, &query, None).await?;
        Ok(answer.userlist)
    }

    /// `department/list`: the whole tree, or the subtree under `id`.
    pub async fn list_departments(&self, id: Option<i64>) -> Result<Vec<Department>, WecomError> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            department: Vec<Department>,
        }
        let id = id.map(|i| i.to_string());
        let query: Vec<(&str, &str)> = id.as_deref().map(|i| vec![("id", i)]).unwrap_or_default();
        let answer: Answer = self.call::<(), _>("department/list", Method::GET, &query, None).await?;
        Ok(answer.department)
    }

    /// `externalcontact/resigned/transfer_customer`: hands a departed member's customers over
    /// (in batches of 100, WeCom's maximum).
    pub async fn resigned_transfer_customer(
        &self,
        handover_userid: &str,
        takeover_userid: &str,
        external_userids: &[String],
    ) -> Result<Vec<TransferCustomerResult>, WecomError> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            customer: Vec<TransferCustomerResult>,
        }
        let mut results = Vec::with_capacity(external_userids.len());
        for chunk in external_userids.chunks(100) {
            let body = json!({ "handover_userid": handover_userid, "takeover_userid": takeover_userid, "external_userid": chunk });
            let answer: Answer = self
                .call(
                    "externalcontact/resigned/transfer_customer",
                    Method::POST,
                    &[],
                    Some(&body),
                )
                .await?;
            results.extend(answer.customer);
        }
        Ok(results)
    }

    /// `externalcontact/resigned/transfer_result`: where each transfer stands (all pages).
    pub async fn resigned_transfer_result(
        &self,
        handover_userid: &str,
        takeover_userid: &str,
    ) -> Result<Vec<TransferStatus>, WecomError> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            customer: Vec<TransferStatus>,
            #[serde(default)]
            next_cursor: String,
        }
        let mut all = Vec::new();
        let mut cursor = String::new();
        loop {
            let body =
                json!({ "handover_userid": handover_userid, "takeover_userid": takeover_userid, "cursor": cursor });
            let answer: Answer = self
                .call(
                    "externalcontact/resigned/transfer_result",
                    Method::POST,
                    &[],
                    Some(&body),
                )
                .await?;
            all.extend(answer.customer);
            if answer.next_cursor.is_empty() || answer.next_cursor == cursor {
                return Ok(all);
            }
            cursor = answer.next_cursor;
        }
    }
}
