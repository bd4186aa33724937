//! The org as the CRM sees it: departments, members, who leads whom, who may see which customers,
//! and what happens when a rep leaves (their customers and open reminders go to a successor; every
//! follow-up stays with its customer).

use std::collections::{BTreeSet, HashSet, VecDeque};

use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde_json::json;

use super::audit::{self, Actor};
use crate::db::entity::reminder::{DeliveryState, ReminderStatus};
use crate::db::entity::{customer, department, follow_up, follower, member, member_department, outbox, reminder};
use crate::wecom::api::types::{Department, Member};

/// WeCom's member status for someone who left the corp.
pub const STATUS_LEFT: i32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChange {
    Created,
    Updated,
    Unchanged,
}

/// What a departure did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handover {
    pub departed: String,
    pub departed_name: String,
    /// Who received the customers; `None` when nobody could (no leader, no fallback).
    pub successor: Option<String>,
    pub customers: u64,
    pub reminders: u64,
    /// Customers the departed member still followed in WeCom, for WeCom's own resigned transfer.
    pub followed_external_userids: Vec<String>,
}

/// A list as stored in a text column (tags, leaders, departments): a JSON array.
pub fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

/// A list stored by [`json_list`]; a damaged one reads as empty.
pub fn parse_list(json: &str) -> Vec<String> {
    serde_json::from_str(json).unwrap_or_default()
}

pub async fn upsert_departments(
    db: &impl ConnectionTrait,
    departments: &[Department],
    now: i64,
) -> Result<usize, DbErr> {
    for chunk in departments.chunks(200) {
        let rows = chunk.iter().map(|d| department::ActiveModel {
            id: Set(d.id),
            name: Set(d.name.clone()),
            parent_id: Set(d.parentid),
            leaders: Set(json_list(&d.department_leader)),
            sort_order: Set(d.order),
            updated_at: Set(now),
        });
        department::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::column(department::Column::Id)
                    .update_columns([
                        department::Column::Name,
                        department::Column::ParentId,
                        department::Column::Leaders,
                        department::Column::SortOrder,
                        department::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec(db)
            .await?;
    }
    Ok(departments.len())
}

/// Creates or updates a member and their department memberships. A member WeCom reports as left
/// (status 5) is stored with that status; the caller runs [`depart`] for them.
pub async fn upsert_member(db: &impl ConnectionTrait, m: &Member, now: i64) -> Result<MemberChange, DbErr> {
    let existing = member::Entity::find_by_id(m.userid.clone()).one(db).await?;
    let main_department = (m.main_department != 0)
        .then_some(m.main_department)
        .or(m.department.first().copied());
    let change = match existing {
        None => {
            member::ActiveModel {
                userid: Set(m.userid.clone()),
                name: Set(m.name.clone()),
                position: Set(m.position.clone()),
                main_department: Set(main_department),
                status: Set(m.status),
                active: Set(m.status != STATUS_LEFT),
                direct_leaders: Set(json_list(&m.direct_leader)),
                left_at: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
            }
            .insert(db)
            .await?;
            MemberChange::Created
        }
        Some(current) => {
            let same = current.name == m.name
                && current.position == m.position
                && current.main_department == main_department
                // A departure is not an update: `depart` records it.
                && (current.status == m.status || m.status == STATUS_LEFT || !current.active)
                && parse_list(&current.direct_leaders) == m.direct_leader;
            if same {
                MemberChange::Unchanged
            } else {
                let mut active = current.into_active_model();
                active.name = Set(m.name.clone());
                active.position = Set(m.position.clone());
                active.main_department = Set(main_department);
                active.direct_leaders = Set(json_list(&m.direct_leader));
                // A departure is recorded by `depart`, which also hands the customers over.
                if m.status != STATUS_LEFT {
                    active.status = Set(m.status);
                }
                active.updated_at = Set(now);
                active.update(db).await?;
                MemberChange::Updated
            }
        }
    };
    set_departments(db, &m.userid, &m.department, &m.is_leader_in_dept).await?;
    Ok(change)
}

/// Replaces a member's department links. Leadership comes from the member's `is_leader_in_dept`
/// and from the departments' own `department_leader` lists.
async fn set_departments(
    db: &impl ConnectionTrait,
    userid: &str,
    departments: &[i64],
    leader_flags: &[i32],
) -> Result<(), DbErr> {
    if departments.is_empty() {
        return Ok(());
    }
    member_department::Entity::delete_many()
        .filter(member_department::Column::Userid.eq(userid))
        .exec(db)
        .await?;
    let led_by_list: HashSet<i64> = department::Entity::find()
        .filter(department::Column::Id.is_in(departments.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .filter(|d| parse_list(&d.leaders).iter().any(|l| l == userid))
        .map(|d| d.id)
        .collect();
    let unique: BTreeSet<i64> = departments.iter().copied().collect();
    let rows = unique.into_iter().map(|d| {
        let flagged = departments
            .iter()
            .position(|x| *x == d)
            .and_then(|i| leader_flags.get(i))
            .copied()
            == Some(1);
        member_department::ActiveModel {
            userid: Set(userid.to_owned()),
            department_id: Set(d),
            is_leader: Set(flagged || led_by_list.contains(&d)),
        }
    });
    member_department::Entity::insert_many(rows).exec(db).await?;
    Ok(())
}

/// A member's userid changed (`NewUserID`): every reference follows.
pub async fn rename_member(db: &impl ConnectionTrait, old: &str, new: &str, now: i64) -> Result<(), DbErr> {
    if old == new {
        return Ok(());
    }
    let new_exists = member::Entity::find_by_id(new.to_owned()).one(db).await?.is_some();
    if new_exists {
        member::Entity::delete_by_id(old.to_owned()).exec(db).await?;
    } else {
        member::Entity::update_many()
            .col_expr(member::Column::Userid, Expr::val(new))
            .col_expr(member::Column::UpdatedAt, Expr::val(now))
            .filter(member::Column::Userid.eq(old))
            .exec(db)
            .await?;
    }
    member_department::Entity::delete_many()
        .filter(member_department::Column::Userid.eq(old))
        .exec(db)
        .await?;
    macro_rules! repoint {
        ($entity:ident, $column:ident) => {
            $entity::Entity::update_many()
                .col_expr($entity::Column::$column, Expr::val(new))
                .filter($entity::Column::$column.eq(old))
                .exec(db)
                .await?;
        };
    }
    repoint!(customer, OwnerUserid);
    repoint!(customer, FirstAddedBy);
    repoint!(follower, Userid);
    repoint!(reminder, OwnerUserid);
    repoint!(reminder, CreatedBy);
    repoint!(follow_up, AuthorUserid);
    repoint!(outbox, Recipient);
    audit::record(
        db,
        &Actor::Wecom,
        "member.renamed",
        None,
        Some(new),
        json!({ "from": old, "to": new }),
    )
    .await
}

/// The leaders responsible for a member: the leaders of their departments, walking up the tree
/// until a level has one (other than the member, and still active).
pub async fn leaders_of(db: &impl ConnectionTrait, userid: &str) -> Result<Vec<String>, DbErr> {
    let member = member::Entity::find_by_id(userid.to_owned()).one(db).await?;
    let mut start: Vec<i64> = member_department::Entity::find()
        .filter(member_department::Column::Userid.eq(userid))
        .all(db)
        .await?
        .into_iter()
        .map(|l| l.department_id)
        .collect();
    // Their main department decides first.
    if let Some(main) = member.and_then(|m| m.main_department) {
        start.sort_by_key(|d| *d != main);
    }
    let mut queue: VecDeque<i64> = start.into();
    let mut seen = HashSet::new();
    while let Some(department_id) = queue.pop_front() {
        if !seen.insert(department_id) {
            continue;
        }
        let mut candidates: BTreeSet<String> = member_department::Entity::find()
            .filter(member_department::Column::DepartmentId.eq(department_id))
            .filter(member_department::Column::IsLeader.eq(true))
            .all(db)
            .await?
            .into_iter()
            .map(|l| l.userid)
            .collect();
        let dept = department::Entity::find_by_id(department_id).one(db).await?;
        if let Some(d) = &dept {
            candidates.extend(parse_list(&d.leaders));
        }
        candidates.remove(userid);
        let active: Vec<String> = if candidates.is_empty() {
            Vec::new()
        } else {
            member::Entity::find()
                .filter(member::Column::Userid.is_in(candidates))
                .filter(member::Column::Active.eq(true))
                .order_by_asc(member::Column::Userid)
                .all(db)
                .await?
                .into_iter()
                .map(|m| m.userid)
                .collect()
        };
        if !active.is_empty() {
            return Ok(active);
        }
        if let Some(d) = dept
            && d.parent_id != 0
            && d.parent_id != d.id
        {
            queue.push_back(d.parent_id);
        }
    }
    Ok(Vec::new())
}

/// Everyone whose customers `userid` may see: themselves, and for a leader every member of the
/// departments they lead (sub-departments included).
pub async fn visible_userids(db: &impl ConnectionTrait, userid: &str) -> Result<Vec<String>, DbErr> {
    let led = led_departments(db, userid).await?;
    let mut visible = BTreeSet::from([userid.to_owned()]);
    visible.extend(members_of(db, &led).await?);
    Ok(visible.into_iter().collect())
}

/// The departments `userid` leads, with every department under them.
pub async fn led_departments(db: &impl ConnectionTrait, userid: &str) -> Result<Vec<i64>, DbErr> {
    let mut led: Vec<i64> = member_department::Entity::find()
        .filter(member_department::Column::Userid.eq(userid))
        .filter(member_department::Column::IsLeader.eq(true))
        .all(db)
        .await?
        .into_iter()
        .map(|l| l.department_id)
        .collect();
    led.extend(
        department::Entity::find()
            .all(db)
            .await?
            .into_iter()
            .filter(|d| parse_list(&d.leaders).iter().any(|l| l == userid))
            .map(|d| d.id),
    );
    if led.is_empty() {
        return Ok(led);
    }
    department_tree(db, &led).await
}

/// `roots` and every department under them, in id order.
pub async fn department_tree(db: &impl ConnectionTrait, roots: &[i64]) -> Result<Vec<i64>, DbErr> {
    let all_departments = department::Entity::find().all(db).await?;
    Ok(subtree(&all_departments, roots.iter().copied()).into_iter().collect())
}

/// `roots` and every department under them, among `departments`.
pub fn subtree(departments: &[department::Model], roots: impl IntoIterator<Item = i64>) -> BTreeSet<i64> {
    let mut tree: BTreeSet<i64> = roots.into_iter().collect();
    loop {
        let before = tree.len();
        for d in departments {
            if d.parent_id != d.id && tree.contains(&d.parent_id) {
                tree.insert(d.id);
            }
        }
        if tree.len() == before {
            return tree;
        }
    }
}

/// Whether `userid` is a member who has not left.
pub async fn is_active(db: &impl ConnectionTrait, userid: &str) -> Result<bool, DbErr> {
    Ok(member::Entity::find_by_id(userid.to_owned())
        .filter(member::Column::Active.eq(true))
        .one(db)
        .await?
        .is_some())
}

/// The members of `departments` (not of the departments under them), each once.
pub async fn members_of(db: &impl ConnectionTrait, departments: &[i64]) -> Result<Vec<String>, DbErr> {
    if departments.is_empty() {
        return Ok(Vec::new());
    }
    let members: BTreeSet<String> = member_department::Entity::find()
        .filter(member_department::Column::DepartmentId.is_in(departments.iter().copied()))
        .select_only()
        .column(member_department::Column::Userid)
        .into_tuple::<String>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    Ok(members.into_iter().collect())
}

/// A member left: mark them inactive and hand their customers (and open reminders) over to their
/// department leader, or to `fallback`. Returns `None` when they had already left — replaying the
/// event changes nothing.
pub async fn depart(
    db: &impl ConnectionTrait,
    userid: &str,
    at: i64,
    fallback: Option<&str>,
    actor: &Actor,
) -> Result<Option<Handover>, DbErr> {
    let existing = member::Entity::find_by_id(userid.to_owned()).one(db).await?;
    let departed_name = match existing {
        Some(m) if !m.active => return Ok(None),
        Some(m) => {
            let name = m.name.clone();
            let mut active = m.into_active_model();
            active.active = Set(false);
            active.status = Set(STATUS_LEFT);
            active.left_at = Set(Some(at));
            active.updated_at = Set(at);
            active.update(db).await?;
            name
        }
        None => {
            // Order-tolerant: a departure of someone we never saw is still recorded.
            member::ActiveModel {
                userid: Set(userid.to_owned()),
                name: Set(userid.to_owned()),
                position: Set(String::new()),
                main_department: Set(None),
                status: Set(STATUS_LEFT),
                active: Set(false),
                direct_leaders: Set("[]".into()),
                left_at: Set(Some(at)),
                created_at: Set(at),
                updated_at: Set(at),
            }
            .insert(db)
            .await?;
            userid.to_owned()
        }
    };

    let mut successor = leaders_of(db, userid).await?.into_iter().next();
    if successor.is_none()
        && let Some(fallback) = fallback.filter(|f| !f.is_empty() && *f != userid)
        && member::Entity::find_by_id(fallback.to_owned())
            .one(db)
            .await?
            .is_some_and(|m| m.active)
    {
        successor = Some(fallback.to_owned());
    }

    let owned: Vec<i64> = customer::Entity::find()
        .filter(customer::Column::OwnerUserid.eq(userid))
        .select_only()
        .column(customer::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    let followed_external_userids: Vec<String> = customer::Entity::find()
        .filter(
            customer::Column::Id.in_subquery(
                Query::select()
                    .column(follower::Column::CustomerId)
                    .from(follower::Entity)
                    .and_where(follower::Column::Userid.eq(userid))
                    .and_where(follower::Column::RemovedAt.is_null())
                    .to_owned(),
            ),
        )
        .select_only()
        .column(customer::Column::ExternalUserid)
        .into_tuple()
        .all(db)
        .await?;

    let mut reminders = 0;
    if let Some(successor) = &successor {
        customer::Entity::update_many()
            .col_expr(customer::Column::OwnerUserid, Expr::val(successor.as_str()))
            .col_expr(customer::Column::UpdatedAt, Expr::val(at))
            .filter(customer::Column::OwnerUserid.eq(userid))
            .exec(db)
            .await?;
        // A push not yet delivered to the departed rep goes to the successor instead: claimed,
        // queued (the queued message no longer carries it and is dropped) or failed ones start
        // again from pending; sent ones stay sent.
        reminder::Entity::update_many()
            .col_expr(reminder::Column::DeliveryState, Expr::val(DeliveryState::Pending))
            .col_expr(reminder::Column::OutboxId, Expr::val(Option::<i64>::None))
            .col_expr(reminder::Column::ClaimedBy, Expr::val(Option::<String>::None))
            .col_expr(reminder::Column::LeaseUntil, Expr::val(Option::<i64>::None))
            .col_expr(reminder::Column::RetryAt, Expr::val(0))
            .filter(reminder::Column::OwnerUserid.eq(userid))
            .filter(reminder::Column::Status.eq(ReminderStatus::Open))
            .filter(reminder::Column::DeliveryState.is_in([
                DeliveryState::Claimed,
                DeliveryState::Queued,
                DeliveryState::Failed,
            ]))
            .exec(db)
            .await?;
        reminders = reminder::Entity::update_many()
            .col_expr(reminder::Column::OwnerUserid, Expr::val(successor.as_str()))
            .col_expr(reminder::Column::UpdatedAt, Expr::val(at))
            .filter(reminder::Column::OwnerUserid.eq(userid))
            .filter(reminder::Column::Status.eq(ReminderStatus::Open))
            .exec(db)
            .await?
            .rows_affected;
        for chunk in owned.chunks(500) {
            let rows = chunk.iter().map(|id| crate::db::entity::audit::ActiveModel {
                at: Set(at),
                actor: Set(actor.name()),
                action: Set("customer.handover".into()),
                customer_id: Set(Some(*id)),
                member_userid: Set(Some(successor.clone())),
                detail: Set(json!({ "from": userid, "to": successor }).to_string()),
                ..Default::default()
            });
            crate::db::entity::audit::Entity::insert_many(rows).exec(db).await?;
        }
    }
    audit::record(
        db,
        actor,
        "member.departed",
        None,
        Some(userid),
        json!({ "successor": successor, "customers": owned.len(), "reminders": reminders }),
    )
    .await?;
    Ok(Some(Handover {
        departed: userid.to_owned(),
        departed_name,
        successor,
        customers: owned.len() as u64,
        reminders,
        followed_external_userids,
    }))
}

/// A member's display name, or the userid when unknown.
pub async fn display_name(db: &impl ConnectionTrait, userid: &str) -> Result<String, DbErr> {
    let name = member::Entity::find_by_id(userid.to_owned())
        .one(db)
        .await?
        .map(|m| m.name);
    Ok(name_or_id(name.unwrap_or_default(), userid))
}

/// A member's name as shown, or their userid when the name is unknown.
pub fn name_or_id(name: String, userid: &str) -> String {
    if name.is_empty() { userid.to_owned() } else { name }
}
