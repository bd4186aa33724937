//! Synchronisation with WeCom: the org (departments and members), every customer relation (the
//! `sync` command and the first start), and the periodic reconciliation that repairs what missed
//! callbacks left behind. All of it is idempotent; the customer import is also resumable. It sits
//! above the domain and the callback handlers: a member WeCom reports as left is handled exactly as
//! the `change_contact` event would (`events::apply_departure`).

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use sea_orm::sea_query::Query;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::crm::audit::{self, Actor};
use crate::crm::customers::{self, FollowerChange, FollowerInput, RemovedBy};
use crate::crm::members::{self, MemberChange};
use crate::db::entity::{customer, follower, kv_state, member};
use crate::db::{begin_write, now_ms};
use crate::events::{apply_departure, sync_member};
use crate::inbox::HandlerError;
use crate::services::Services;
use crate::wecom::api::{WecomError, codes};

/// Where an interrupted customer import resumes.
const CUSTOMER_SYNC_STATE: &str = "sync.customers";
/// `batch/get_by_user` takes at most 100 members and returns at most 100 rows per page.
const MEMBERS_PER_CALL: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("WeCom")]
    Wecom(#[from] WecomError),
    #[error("database")]
    Db(#[from] sea_orm::DbErr),
    #[error("handling a member")]
    Handler(#[from] HandlerError),
}

/// Progress of a long sync, for the terminal and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Departments(usize),
    Members {
        total: usize,
        created: usize,
        updated: usize,
        departed: usize,
    },
    FollowUsers(usize),
    /// After each page: relations seen so far, and members covered of all.
    Customers {
        relations: u64,
        members_done: usize,
        members_total: usize,
    },
    Resumed {
        members_done: usize,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OrgReport {
    pub departments: usize,
    pub members: usize,
    pub created: usize,
    pub updated: usize,
    pub departed: usize,
}

/// Reads departments and members from WeCom and applies every change: new, changed and departed
/// members (status 5, or gone from WeCom altogether) are handled as their events would be.
pub async fn sync_org(
    s: &Services,
    actor: &Actor,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<OrgReport, SyncError> {
    let mut report = OrgReport::default();
    let departments = s.wecom.list_departments(None).await?;
    members::upsert_departments(&s.db, &departments, now_ms()).await?;
    report.departments = departments.len();
    progress(Progress::Departments(report.departments));

    let root = departments
        .iter()
        .find(|d| d.parentid == 0)
        .or(departments.first())
        .map_or(1, |d| d.id);
    let listed = s.wecom.list_users(root, true).await?;
    let mut seen = HashSet::new();
    for m in &listed {
        if !seen.insert(m.userid.clone()) {
            continue;
        }
        let was_active = member::Entity::find_by_id(m.userid.clone())
            .one(&s.db)
            .await?
            .map(|x| x.active);
        match sync_member(s, m, actor).await? {
            MemberChange::Created => report.created += 1,
            MemberChange::Updated => report.updated += 1,
            MemberChange::Unchanged => {}
        }
        if m.status == members::STATUS_LEFT && was_active != Some(false) {
            report.departed += 1;
        }
    }
    report.members = seen.len();

    // Active members WeCom no longer lists: left, or merely outside the app's visibility now.
    if !listed.is_empty() {
        let active: Vec<String> = member::Entity::find()
            .filter(member::Column::Active.eq(true))
            .select_only()
            .column(member::Column::Userid)
            .into_tuple()
            .all(&s.db)
            .await?;
        for userid in active.into_iter().filter(|u| !seen.contains(u)) {
            let left = match s.wecom.get_user(&userid).await {
                Ok(m) => m.status == members::STATUS_LEFT,
                Err(WecomError::Api {
                    code: codes::USER_NOT_FOUND,
                    ..
                }) => true,
                Err(e) => {
                    tracing::warn!(userid, error = %e, "member missing from the org list and not readable; left as is");
                    false
                }
            };
            if left && apply_departure(s, &userid, now_ms(), actor).await?.is_some() {
                report.departed += 1;
            }
        }
    }
    progress(Progress::Members {
        total: report.members,
        created: report.created,
        updated: report.updated,
        departed: report.departed,
    });
    Ok(report)
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CustomerReport {
    pub follow_users: usize,
    pub relations: u64,
    pub customers_created: u64,
    pub relations_created: u64,
    pub relations_reactivated: u64,
    pub seconds: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ResumePoint {
    /// Members (in `get_follow_user_list` order) whose customers are all imported.
    members_done: usize,
    /// The page cursor within the next group of members.
    cursor: String,
    relations: u64,
}

async fn load_resume_point(s: &Services) -> Result<Option<ResumePoint>, SyncError> {
    Ok(kv_state::Entity::find_by_id(CUSTOMER_SYNC_STATE.to_owned())
        .one(&s.db)
        .await?
        .and_then(|row| serde_json::from_str(&row.value).ok()))
}

/// Whether a customer import was interrupted and should be resumed.
pub async fn customer_sync_interrupted(s: &Services) -> Result<bool, SyncError> {
    Ok(load_resume_point(s).await?.is_some())
}

/// Imports every customer of every member with 客户联系, a page at a time; each page is one
/// transaction that also records where to resume, so an interrupted import continues where it
/// stopped.
pub async fn sync_customers(
    s: &Services,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<CustomerReport, SyncError> {
    let started = Instant::now();
    let follow_users = s.wecom.get_follow_user_list().await?;
    progress(Progress::FollowUsers(follow_users.len()));
    let mut report = CustomerReport {
        follow_users: follow_users.len(),
        ..Default::default()
    };
    let mut point = load_resume_point(s).await?.unwrap_or_default();
    if point.members_done > 0 || !point.cursor.is_empty() {
        progress(Progress::Resumed {
            members_done: point.members_done,
        });
    }
    report.relations = point.relations;

    while point.members_done < follow_users.len() {
        let group: Vec<String> = follow_users
            .iter()
            .skip(point.members_done)
            .take(MEMBERS_PER_CALL)
            .cloned()
            .collect();
        let page = s.wecom.batch_get_by_user(&group, &point.cursor, 100).await?;
        let rows: Vec<_> = page
            .external_contact_list
            .iter()
            .map(|c| (c.external_contact.clone(), FollowerInput::from(&c.follow_info)))
            .collect();
        let last_page = page.next_cursor.is_empty() || page.next_cursor == point.cursor;
        if last_page {
            point.members_done += group.len();
            point.cursor.clear();
        } else {
            point.cursor = page.next_cursor.clone();
        }
        point.relations += rows.len() as u64;

        let txn = begin_write(&s.db).await?;
        for upserted in customers::upsert_contacts(&txn, &rows, false, now_ms()).await? {
            report.customers_created += u64::from(upserted.customer_created);
            match upserted.follower {
                FollowerChange::Created => report.relations_created += 1,
                FollowerChange::Reactivated => report.relations_reactivated += 1,
                FollowerChange::Updated => {}
            }
        }
        save_resume_point(&txn, &point).await?;
        txn.commit().await?;
        report.relations = point.relations;
        progress(Progress::Customers {
            relations: point.relations,
            members_done: point.members_done,
            members_total: follow_users.len(),
        });
    }
    kv_state::Entity::delete_by_id(CUSTOMER_SYNC_STATE.to_owned())
        .exec(&s.db)
        .await?;
    report.seconds = started.elapsed().as_secs_f64();
    audit::record(&s.db, &Actor::Sync, "sync.customers", None, None, json!(report)).await?;
    Ok(report)
}

async fn save_resume_point(db: &sea_orm::DatabaseTransaction, point: &ResumePoint) -> Result<(), sea_orm::DbErr> {
    let value = serde_json::to_string(point).expect("serializes");
    crate::db::put_state(db, CUSTOMER_SYNC_STATE, &value, now_ms()).await
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    pub members: usize,
    /// Relations WeCom has and we did not (missed add events).
    pub added: u64,
    /// Relations we had as ended that WeCom shows active again.
    pub reactivated: u64,
    /// Relations we had as active that WeCom no longer has (missed deletions).
    pub closed: u64,
}

/// Compares every member's customer relations with WeCom and repairs the difference: missing
/// relations are added (without welcome or notice — the moment has passed), vanished ones are ended
/// and their customers marked at risk.
pub async fn reconcile(s: &Services) -> Result<ReconcileReport, SyncError> {
    let follow_users = s.wecom.get_follow_user_list().await?;
    let mut report = ReconcileReport {
        members: follow_users.len(),
        ..Default::default()
    };
    for group in follow_users.chunks(MEMBERS_PER_CALL) {
        let contacts = s.wecom.batch_get_all_by_user(group).await?;
        let in_wecom: HashSet<(String, String)> = contacts
            .iter()
            .map(|c| (c.external_contact.external_userid.clone(), c.follow_info.userid.clone()))
            .collect();
        let rows: Vec<_> = contacts
            .iter()
            .map(|c| (c.external_contact.clone(), FollowerInput::from(&c.follow_info)))
            .collect();

        let txn = begin_write(&s.db).await?;
        for chunk in rows.chunks(200) {
            for (upserted, (_, follow)) in customers::upsert_contacts(&txn, chunk, false, now_ms())
                .await?
                .into_iter()
                .zip(chunk)
            {
                let action = match upserted.follower {
                    FollowerChange::Created => {
                        report.added += 1;
                        "follower.restored"
                    }
                    FollowerChange::Reactivated => {
                        report.reactivated += 1;
                        "follower.restored"
                    }
                    FollowerChange::Updated => continue,
                };
                let detail = json!({ "reason": "present in WeCom, missing here" });
                audit::record(
                    &txn,
                    &Actor::Sync,
                    action,
                    Some(upserted.customer_id),
                    Some(&follow.userid),
                    detail,
                )
                .await?;
            }
        }
        // Active relations of these members that WeCom no longer has.
        let active: Vec<(i64, String)> = follower::Entity::find()
            .filter(follower::Column::Userid.is_in(group.iter().cloned()))
            .filter(follower::Column::RemovedAt.is_null())
            .select_only()
            .column(follower::Column::CustomerId)
            .column(follower::Column::Userid)
            .into_tuple()
            .all(&txn)
            .await?;
        let external: HashMap<i64, String> = customer::Entity::find()
            .filter(
                customer::Column::Id.in_subquery(
                    Query::select()
                        .column(follower::Column::CustomerId)
                        .from(follower::Entity)
                        .and_where(follower::Column::Userid.is_in(group.iter().cloned()))
                        .and_where(follower::Column::RemovedAt.is_null())
                        .to_owned(),
                ),
            )
            .select_only()
            .column(customer::Column::Id)
            .column(customer::Column::ExternalUserid)
            .into_tuple()
            .all(&txn)
            .await?
            .into_iter()
            .collect();
        let now = now_ms();
        for (customer_id, userid) in active {
            let Some(external_userid) = external.get(&customer_id) else {
                continue;
            };
            if in_wecom.contains(&(external_userid.clone(), userid.clone())) {
                continue;
            }
            if customers::close_follower(&txn, customer_id, &userid, RemovedBy::Sync, now).await? {
                report.closed += 1;
                customers::mark_at_risk(&txn, customer_id, "同步发现客户关系已解除", now).await?;
                let detail = json!({ "reason": "missing in WeCom" });
                audit::record(
                    &txn,
                    &Actor::Sync,
                    "follower.vanished",
                    Some(customer_id),
                    Some(&userid),
                    detail,
                )
                .await?;
            }
        }
        txn.commit().await?;
    }
    Ok(report)
}
