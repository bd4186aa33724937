//! Customers and the members who follow them, written from WeCom's data. Upserts work on batches,
//! so the same code serves one callback and a sync of thousands of customers.

use std::collections::HashMap;

use sea_orm::sea_query::{Expr, Func, OnConflict, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityName, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, Set,
};

use super::members::json_list;
use super::search::search_forms;
use crate::db::entity::{customer, follow_up, follower};
use crate::wecom::api::types::{ExternalContact, FollowInfo, FollowUser};

/// Why a relation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemovedBy {
    /// The member deleted the customer (del_external_contact).
    Member,
    /// The customer deleted the member (del_follow_user, 客户删人).
    Customer,
    /// WeCom removed it in an on-the-job transfer.
    Transfer,
    /// Reconciliation found it gone in WeCom.
    Sync,
}

impl RemovedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Customer => "customer",
            Self::Transfer => "transfer",
            Self::Sync => "sync",
        }
    }
}

/// A member's relation to a customer, from either `externalcontact/get` or `batch/get_by_user`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FollowerInput {
    pub userid: String,
    pub remark: String,
    pub description: String,
    pub remark_corp_name: String,
    pub remark_mobiles: Vec<String>,
    /// Tag names (`externalcontact/get`) or tag ids (`batch/get_by_user`).
    pub tags: Vec<String>,
    pub add_way: i32,
    pub oper_userid: String,
    pub state: String,
    /// When the relation began, unix ms.
    pub added_at: Option<i64>,
}

impl From<&FollowUser> for FollowerInput {
    fn from(f: &FollowUser) -> Self {
        Self {
            userid: f.userid.clone(),
            remark: f.remark.clone(),
            description: f.description.clone(),
            remark_corp_name: f.remark_corp_name.clone(),
            remark_mobiles: f.remark_mobiles.clone(),
            tags: f
                .tags
                .iter()
                .map(|t| t.tag_name.clone())
                .filter(|t| !t.is_empty())
                .collect(),
            add_way: f.add_way,
            oper_userid: f.oper_userid.clone(),
            state: f.state.clone(),
            added_at: (f.createtime > 0).then(|| f.createtime * 1000),
        }
    }
}

impl From<&FollowInfo> for FollowerInput {
    fn from(f: &FollowInfo) -> Self {
        Self {
            userid: f.userid.clone(),
            remark: f.remark.clone(),
            description: f.description.clone(),
            remark_corp_name: f.remark_corp_name.clone(),
            remark_mobiles: f.remark_mobiles.clone(),
            tags: f.tag_id.clone(),
            add_way: f.add_way,
            oper_userid: f.oper_userid.clone(),
            state: f.state.clone(),
            added_at: (f.createtime > 0).then(|| f.createtime * 1000),
        }
    }
}

/// What happened to a relation in an upsert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowerChange {
    Created,
    /// It had ended and is active again.
    Reactivated,
    Updated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upserted {
    pub customer_id: i64,
    pub customer_created: bool,
    pub follower: FollowerChange,
}

fn customer_search_text(c: &ExternalContact) -> String {
    [
        search_forms(&c.name),
        search_forms(&c.corp_name),
        c.corp_full_name.to_lowercase(),
    ]
    .join(" ")
}

fn follower_search_text(f: &FollowerInput) -> String {
    [
        search_forms(&f.remark),
        f.description.to_lowercase(),
        search_forms(&f.remark_corp_name),
        f.remark_mobiles.join(" "),
    ]
    .join(" ")
}

/// Creates or refreshes customers and one relation each, in three statements however many rows.
/// New customers take the relation's member as owner and its `state` as lead source; existing ones
/// keep theirs. A relation that had ended is active again. `pending` marks customers added by a
/// half-add that the member has not confirmed yet.
pub async fn upsert_contacts(
    db: &impl ConnectionTrait,
    rows: &[(ExternalContact, FollowerInput)],
    pending: bool,
    now: i64,
) -> Result<Vec<Upserted>, DbErr> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let external_ids: Vec<&str> = rows.iter().map(|(c, _)| c.external_userid.as_str()).collect();
    let mobiles: Vec<(&str, &[String])> = rows
        .iter()
        .map(|(c, f)| (c.external_userid.as_str(), f.remark_mobiles.as_slice()))
        .collect();
    super::transfer::link_imported_leads(db, &mobiles).await?;
    let existing: HashMap<String, i64> = customer::Entity::find()
        .filter(customer::Column::ExternalUserid.is_in(external_ids.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(|c| (c.external_userid, c.id))
        .collect();

    let table = customer::Entity.table_name();
    let keep_first =
        |column: &str| Expr::cust(format!("COALESCE(\"{table}\".\"{column}\", \"excluded\".\"{column}\")"));
    let mut insert = Query::insert();
    insert
        .into_table(customer::Entity)
        .columns([
            customer::Column::ExternalUserid,
            customer::Column::Name,
            customer::Column::ContactType,
            customer::Column::Avatar,
            customer::Column::Gender,
            customer::Column::Unionid,
            customer::Column::CorpName,
            customer::Column::CorpFullName,
            customer::Column::Position,
            customer::Column::OwnerUserid,
            customer::Column::FirstState,
            customer::Column::FirstAddedBy,
            customer::Column::FirstAddedAt,
            customer::Column::Pending,
            customer::Column::SearchText,
            customer::Column::CreatedAt,
            customer::Column::UpdatedAt,
        ])
        .on_conflict(
            OnConflict::column(customer::Column::ExternalUserid)
                .update_columns([
                    customer::Column::Name,
                    customer::Column::ContactType,
                    customer::Column::Avatar,
                    customer::Column::Gender,
                    customer::Column::Unionid,
                    customer::Column::CorpName,
                    customer::Column::CorpFullName,
                    customer::Column::Position,
                    customer::Column::SearchText,
                    customer::Column::UpdatedAt,
                ])
                // A lead in the pool stays there until claimed or assigned, whoever it adds.
                .value(
                    customer::Column::OwnerUserid,
                    Expr::cust(format!(
                        "CASE WHEN \"{table}\".\"pooled_at\" IS NOT NULL THEN NULL \
                         ELSE COALESCE(\"{table}\".\"owner_userid\", \"excluded\".\"owner_userid\") END"
                    )),
                )
                .value(customer::Column::FirstState, keep_first("first_state"))
                .value(customer::Column::FirstAddedBy, keep_first("first_added_by"))
                .value(customer::Column::FirstAddedAt, keep_first("first_added_at"))
                // Once confirmed, a customer stays confirmed.
                .value(
                    customer::Column::Pending,
                    Expr::cust(format!("\"{table}\".\"pending\" AND \"excluded\".\"pending\"")),
                )
                .to_owned(),
        );
    let mut seen = HashMap::new();
    for (contact, follow) in rows {
        if seen.insert(contact.external_userid.as_str(), ()).is_some() {
            continue;
        }
        insert.values_panic([
            contact.external_userid.clone().into(),
            contact.name.clone().into(),
            contact.contact_type.into(),
            contact.avatar.clone().into(),
            contact.gender.into(),
            contact.unionid.clone().into(),
            contact.corp_name.clone().into(),
            contact.corp_full_name.clone().into(),
            contact.position.clone().into(),
            Some(follow.userid.clone()).into(),
            Some(follow.state.clone()).filter(|s| !s.is_empty()).into(),
            Some(follow.userid.clone()).into(),
            follow.added_at.or(Some(now)).into(),
            pending.into(),
            customer_search_text(contact).into(),
            now.into(),
            now.into(),
        ]);
    }
    db.execute(&insert).await?;

    let ids: HashMap<String, i64> = customer::Entity::find()
        .filter(customer::Column::ExternalUserid.is_in(external_ids.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(|c| (c.external_userid, c.id))
        .collect();
    let followers = upsert_followers(
        db,
        &rows
            .iter()
            .map(|(c, f)| (ids[&c.external_userid], f.clone()))
            .collect::<Vec<_>>(),
        now,
    )
    .await?;
    Ok(rows
        .iter()
        .zip(followers)
        .map(|((contact, _), follower)| Upserted {
            customer_id: ids[&contact.external_userid],
            customer_created: !existing.contains_key(&contact.external_userid),
            follower,
        })
        .collect())
}

/// Creates or refreshes relations (customer id, member); an ended one becomes active again.
pub async fn upsert_followers(
    db: &impl ConnectionTrait,
    rows: &[(i64, FollowerInput)],
    now: i64,
) -> Result<Vec<FollowerChange>, DbErr> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let customer_ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
    let before: HashMap<(i64, String), Option<i64>> = follower::Entity::find()
        .filter(follower::Column::CustomerId.is_in(customer_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|f| ((f.customer_id, f.userid), f.removed_at))
        .collect();
    let table = follower::Entity.table_name();
    let mut insert = Query::insert();
    insert
        .into_table(follower::Entity)
        .columns([
            follower::Column::CustomerId,
            follower::Column::Userid,
            follower::Column::Remark,
            follower::Column::Description,
            follower::Column::RemarkCorpName,
            follower::Column::RemarkMobiles,
            follower::Column::WecomTags,
            follower::Column::AddWay,
            follower::Column::OperUserid,
            follower::Column::State,
            follower::Column::AddedAt,
            follower::Column::RemovedAt,
            follower::Column::RemovedBy,
            follower::Column::SearchText,
            follower::Column::CreatedAt,
            follower::Column::UpdatedAt,
        ])
        .on_conflict(
            OnConflict::columns([follower::Column::CustomerId, follower::Column::Userid])
                .update_columns([
                    follower::Column::Remark,
                    follower::Column::Description,
                    follower::Column::RemarkCorpName,
                    follower::Column::RemarkMobiles,
                    follower::Column::WecomTags,
                    follower::Column::AddWay,
                    follower::Column::OperUserid,
                    follower::Column::State,
                    follower::Column::RemovedAt,
                    follower::Column::RemovedBy,
                    follower::Column::SearchText,
                    follower::Column::UpdatedAt,
                ])
                .value(
                    follower::Column::AddedAt,
                    Expr::cust(format!("COALESCE(\"excluded\".\"added_at\", \"{table}\".\"added_at\")")),
                )
                .to_owned(),
        );
    let mut changes = Vec::with_capacity(rows.len());
    let mut seen = HashMap::new();
    for (customer_id, f) in rows {
        changes.push(match before.get(&(*customer_id, f.userid.clone())) {
            None => FollowerChange::Created,
            Some(Some(_)) => FollowerChange::Reactivated,
            Some(None) => FollowerChange::Updated,
        });
        if seen.insert((*customer_id, f.userid.as_str()), ()).is_some() {
            continue;
        }
        insert.values_panic([
            (*customer_id).into(),
            f.userid.clone().into(),
            f.remark.clone().into(),
            f.description.clone().into(),
            f.remark_corp_name.clone().into(),
            json_list(&f.remark_mobiles).into(),
            json_list(&f.tags).into(),
            f.add_way.into(),
            f.oper_userid.clone().into(),
            f.state.clone().into(),
            f.added_at.into(),
            Option::<i64>::None.into(),
            Option::<String>::None.into(),
            follower_search_text(f).into(),
            now.into(),
            now.into(),
        ]);
    }
    db.execute(&insert).await?;
    Ok(changes)
}

/// The customer with this external id, creating a bare record when WeCom can no longer tell us who
/// it was (an edit or deletion we never saw the add for).
pub async fn ensure_customer(
    db: &impl ConnectionTrait,
    external_userid: &str,
    now: i64,
) -> Result<customer::Model, DbErr> {
    if let Some(existing) = find_by_external(db, external_userid).await? {
        return Ok(existing);
    }
    customer::Entity::insert(customer::ActiveModel {
        external_userid: Set(external_userid.to_owned()),
        name: Set(String::new()),
        contact_type: Set(0),
        avatar: Set(String::new()),
        gender: Set(0),
        unionid: Set(String::new()),
        corp_name: Set(String::new()),
        corp_full_name: Set(String::new()),
        position: Set(String::new()),
        tags: Set("[]".into()),
        score: Set(0),
        pending: Set(false),
        at_risk: Set(false),
        search_text: Set(String::new()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .on_conflict_do_nothing_on([customer::Column::ExternalUserid])
    .exec(db)
    .await?;
    find_by_external(db, external_userid)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("customer {external_userid}")))
}

pub async fn find_by_external(
    db: &impl ConnectionTrait,
    external_userid: &str,
) -> Result<Option<customer::Model>, DbErr> {
    customer::Entity::find()
        .filter(customer::Column::ExternalUserid.eq(external_userid))
        .one(db)
        .await
}

/// Ends a relation (keeping its row). Returns true when it was active until now. A relation we
/// never recorded is recorded as ended, so the history shows it.
pub async fn close_follower(
    db: &impl ConnectionTrait,
    customer_id: i64,
    userid: &str,
    by: RemovedBy,
    at: i64,
) -> Result<bool, DbErr> {
    let existing = follower::Entity::find()
        .filter(follower::Column::CustomerId.eq(customer_id))
        .filter(follower::Column::Userid.eq(userid))
        .one(db)
        .await?;
    match existing {
        Some(f) if f.removed_at.is_some() => Ok(false),
        Some(f) => {
            let mut active = f.into_active_model();
            active.removed_at = Set(Some(at));
            active.removed_by = Set(Some(by.as_str().to_owned()));
            active.updated_at = Set(at);
            active.update(db).await?;
            Ok(true)
        }
        None => {
            follower::ActiveModel {
                customer_id: Set(customer_id),
                userid: Set(userid.to_owned()),
                remark: Set(String::new()),
                description: Set(String::new()),
                remark_corp_name: Set(String::new()),
                remark_mobiles: Set("[]".into()),
                wecom_tags: Set("[]".into()),
                add_way: Set(0),
                oper_userid: Set(String::new()),
                state: Set(String::new()),
                added_at: Set(None),
                removed_at: Set(Some(at)),
                removed_by: Set(Some(by.as_str().to_owned())),
                search_text: Set(String::new()),
                created_at: Set(at),
                updated_at: Set(at),
                ..Default::default()
            }
            .insert(db)
            .await?;
            Ok(true)
        }
    }
}

/// The relation of one member to one customer, if any.
pub async fn follower_of(
    db: &impl ConnectionTrait,
    customer_id: i64,
    userid: &str,
) -> Result<Option<follower::Model>, DbErr> {
    follower::Entity::find()
        .filter(follower::Column::CustomerId.eq(customer_id))
        .filter(follower::Column::Userid.eq(userid))
        .one(db)
        .await
}

/// Flags a customer for managers' attention; the first reason and time are kept.
pub async fn mark_at_risk(db: &impl ConnectionTrait, customer_id: i64, reason: &str, at: i64) -> Result<(), DbErr> {
    customer::Entity::update_many()
        .col_expr(customer::Column::AtRisk, Expr::val(true))
        .col_expr(customer::Column::AtRiskReason, Expr::val(reason))
        .col_expr(
            customer::Column::AtRiskSince,
            Func::coalesce([Expr::col(customer::Column::AtRiskSince), Expr::val(at)]).into(),
        )
        .col_expr(customer::Column::UpdatedAt, Expr::val(at))
        .filter(customer::Column::Id.eq(customer_id))
        .exec(db)
        .await?;
    Ok(())
}

/// The newest follow-up on a customer that was not undone.
pub async fn last_follow_up(db: &impl ConnectionTrait, customer_id: i64) -> Result<Option<follow_up::Model>, DbErr> {
    follow_up::Entity::find()
        .filter(follow_up::Column::CustomerId.eq(customer_id))
        .filter(follow_up::Column::DeletedAt.is_null())
        .order_by_desc(follow_up::Column::CreatedAt)
        .order_by_desc(follow_up::Column::Id)
        .one(db)
        .await
}

/// Whether any of `members` owns the customer or follows it now.
pub async fn accessible(
    db: &impl ConnectionTrait,
    customer: &customer::Model,
    members: &[String],
) -> Result<bool, DbErr> {
    if customer.owner_userid.as_ref().is_some_and(|o| members.contains(o)) {
        return Ok(true);
    }
    Ok(follower::Entity::find()
        .filter(follower::Column::CustomerId.eq(customer.id))
        .filter(follower::Column::Userid.is_in(members.iter().cloned()))
        .filter(follower::Column::RemovedAt.is_null())
        .one(db)
        .await?
        .is_some())
}

/// The customers `userid` owns or follows now, as a filter.
pub fn owned_or_followed_by(userid: &str) -> sea_orm::Condition {
    sea_orm::Condition::any()
        .add(customer::Column::OwnerUserid.eq(userid))
        .add(
            customer::Column::Id.in_subquery(
                Query::select()
                    .column(follower::Column::CustomerId)
                    .from(follower::Entity)
                    .and_where(follower::Column::Userid.eq(userid))
                    .and_where(follower::Column::RemovedAt.is_null())
                    .to_owned(),
            ),
        )
}

/// The customers a member owns or follows now, with their names (for recognising a name at the
/// start of a message).
pub async fn own_names(db: &impl ConnectionTrait, userid: &str) -> Result<Vec<(i64, String)>, DbErr> {
    use sea_orm::QuerySelect;
    customer::Entity::find()
        .filter(owned_or_followed_by(userid))
        .filter(customer::Column::Name.ne(""))
        .select_only()
        .column(customer::Column::Id)
        .column(customer::Column::Name)
        .into_tuple()
        .all(db)
        .await
}

/// How a customer is named in chat: `张伟(华为)`, or the external id when we know nothing more.
pub fn display(customer: &customer::Model) -> String {
    let name = if customer.name.is_empty() {
        let short: String = customer.external_userid.chars().take(12).collect();
        format!("未知客户 {short}")
    } else {
        customer.name.clone()
    };
    if customer.corp_name.is_empty() {
        name
    } else {
        format!("{name}({})", customer.corp_name)
    }
}
