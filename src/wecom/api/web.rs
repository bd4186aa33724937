//! What WeCom's web pages need from the server API: the member behind a sign-in code
//! (`auth/getuserinfo`), and the JS-SDK tickets — the corp's (`get_jsapi_ticket`) and the app's
//! (`ticket/get?type=agent_config`). Tickets live 7,200 s and WeCom limits how often they may be
//! fetched, so they are kept in the cache and fetched through the access token's single flight,
//! once for every instance.

use reqwest::Method;
use serde::Deserialize;

use super::{WecomClient, WecomError};

/// Who a sign-in code belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedIn {
    /// A member of the corp.
    Member { userid: String },
    /// Someone outside it (a WeChat user): WeCom answers an `openid` instead of a `userid`.
    Outsider,
}

#[derive(Deserialize)]
struct UserInfo {
    #[serde(default, alias = "UserId")]
    userid: String,
    #[serde(default, alias = "OpenId")]
    openid: String,
}

#[derive(Deserialize)]
struct Ticket {
    #[serde(default)]
    ticket: String,
    #[serde(default)]
    expires_in: u64,
}

impl WecomClient {
    /// Exchanges a sign-in code (single use, valid 5 minutes) for the member it was issued to.
    /// An invalid or used code is WeCom's 40029, returned as the error.
    pub async fn user_of_code(&self, code: &str) -> Result<SignedIn, WecomError> {
        const CALL: &str = "auth/getuserinfo";
        let info: UserInfo = self.call::<(), _>(CALL, Method::GET, &[("code", code)], None).await?;
        if !info.userid.is_empty() {
            Ok(SignedIn::Member { userid: info.userid })
        } else if !info.openid.is_empty() {
            Ok(SignedIn::Outsider)
        } else {
            Err(WecomError::Decode {
                call: CALL,
                message: "neither userid nor openid in the answer".into(),
            })
        }
    }

    /// The corp's JS-SDK ticket (for `wx.config` / `getConfigSignature`).
    pub async fn corp_ticket(&self) -> Result<String, WecomError> {
        let key = format!("wecom:jsapi_ticket:corp:{}", self.inner.corp_id);
        self.single_flight(&key, &self.inner.tickets, || self.fetch_ticket("get_jsapi_ticket", &[]))
            .await
    }

    /// The app's JS-SDK ticket (for `wx.agentConfig` / `getAgentConfigSignature`): it belongs to
    /// this app, and signing with the corp's ticket instead fails in the WeCom client.
    pub async fn agent_ticket(&self) -> Result<String, WecomError> {
        let key = format!(
            "wecom:jsapi_ticket:agent:{}:{}",
            self.inner.corp_id, self.inner.agent_id
        );
        self.single_flight(&key, &self.inner.tickets, || {
            self.fetch_ticket("ticket/get", &[("type", "agent_config")])
        })
        .await
    }

    async fn fetch_ticket(&self, call: &'static str, query: &[(&str, &str)]) -> Result<(String, u64), WecomError> {
        let answer: Ticket = self.call::<(), _>(call, Method::GET, query, None).await?;
        if answer.ticket.is_empty() {
            return Err(WecomError::Decode {
                call,
                message: "no ticket in the answer".into(),
            });
        }
        tracing::info!(call, expires_in = answer.expires_in, "JS-SDK ticket fetched");
        Ok((answer.ticket, answer.expires_in.max(60)))
    }
}
