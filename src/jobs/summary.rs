//! The managers' daily summary, sent: every department leader (and each `summary.extra_recipients`
//! member, for the whole org) gets one message a day for their team (written by [`crate::report`]).
//! Exactly one per recipient and date: the run record and the queued message share a transaction.

use chrono::NaiveDate;
use serde::Serialize;

use crate::db::entity::job_run::RunStatus;
use crate::db::{begin_write, runs};
use crate::notify;
use crate::report::{SummaryError, chosen, render_for};
use crate::services::Services;
use crate::wecom::api::MessageBody;

#[derive(Debug, Clone, Default, Serialize)]
pub struct SendReport {
    pub date: String,
    pub sent: Vec<String>,
    pub already_sent: Vec<String>,
    /// The outbox messages this run queued, per recipient.
    #[serde(skip)]
    pub queued: Vec<(String, Vec<i64>)>,
}

/// Sends the summaries of `date` to every recipient (or only `only`) who has not had theirs.
pub async fn send(s: &Services, date: NaiveDate, only: Option<&str>, now: i64) -> Result<SendReport, SummaryError> {
    let period = date.to_string();
    let mut report = SendReport {
        date: period.clone(),
        ..Default::default()
    };
    let mut pending = Vec::new();
    for r in chosen(s, only).await? {
        if runs::exists(&s.db, "summary", &r.userid, &period).await? {
            report.already_sent.push(r.userid);
        } else {
            pending.push(r);
        }
    }
    for rendered in render_for(s, &pending, date, now).await? {
        let txn = begin_write(&s.db).await?;
        if runs::try_start(&txn, "summary", &rendered.userid, &period).await? {
            let mut queued = Vec::new();
            for (i, part) in rendered.parts.iter().enumerate() {
                let key = format!("summary:{}:{period}:{}", rendered.userid, i + 1);
                let body = MessageBody::markdown(part.clone());
                queued.extend(notify::enqueue(&txn, &key, &rendered.userid, &body).await?);
            }
            let detail = format!("{} part(s)", rendered.parts.len());
            runs::finish(&txn, "summary", &rendered.userid, &period, RunStatus::Done, &detail).await?;
            txn.commit().await?;
            report.queued.push((rendered.userid.clone(), queued));
            report.sent.push(rendered.userid);
        } else {
            txn.rollback().await?;
            report.already_sent.push(rendered.userid);
        }
    }
    s.notifier.wake();
    Ok(report)
}
