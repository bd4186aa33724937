//! Read-side queries for the admin API: customers filtered and paged by id, a customer with
//! everything about them, members and departments — always within a [`Scope`].

use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr, Query};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::crm::members;
use crate::crm::risk::Risk;
use crate::crm::search::escape_like;
use crate::db::entity::{audit, customer, department, follow_up, follower, member, member_department, reminder};

/// What a caller may see: everything, or the customers these members own or follow (and these
/// members, and the departments they belong to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Members(Vec<String>),
}

impl Scope {
    /// The scope of a manager acting for `userid`: the departments they lead, and themselves.
    pub async fn of_member(db: &impl ConnectionTrait, userid: &str) -> Result<Self, DbErr> {
        Ok(Self::Members(members::visible_userids(db, userid).await?))
    }

    pub fn includes_member(&self, userid: &str) -> bool {
        match self {
            Self::All => true,
            Self::Members(members) => members.iter().any(|m| m == userid),
        }
    }

    /// The ids of the customers in scope, as a subquery.
    fn customer_ids(&self) -> sea_orm::sea_query::SelectStatement {
        Query::select()
            .column(customer::Column::Id)
            .from(customer::Entity)
            .cond_where(self.customers())
            .to_owned()
    }

    /// Customers the scope's members own or follow now.
    fn customers(&self) -> Condition {
        match self {
            Self::All => Condition::all(),
            Self::Members(members) => Condition::any()
                .add(customer::Column::OwnerUserid.is_in(members.iter().cloned()))
                .add(
                    customer::Column::Id.in_subquery(
                        Query::select()
                            .column(follower::Column::CustomerId)
                            .from(follower::Entity)
                            .and_where(follower::Column::Userid.is_in(members.iter().cloned()))
                            .and_where(follower::Column::RemovedAt.is_null())
                            .to_owned(),
                    ),
                ),
        }
    }
}

/// Filters on the customer list; every one optional.
#[derive(Debug, Clone, Default)]
pub struct CustomerFilter {
    pub owner: Option<String>,
    /// Owned by a member of this department or one under it.
    pub department: Option<i64>,
    pub stage: Option<String>,
    pub status: Option<String>,
    pub rating: Option<String>,
    pub tag: Option<String>,
    /// The lead channel's state.
    pub channel: Option<String>,
    /// At risk or not, as [`Risk`] defines it.
    pub at_risk: Option<bool>,
    pub updated_since: Option<i64>,
    /// In this segment (its key: important, main, normal, at_risk).
    pub segment: Option<String>,
    /// Scoring at least this.
    pub min_score: Option<i64>,
    /// Highest score first (then id, descending) instead of id order.
    pub by_score: bool,
}

/// One page of customers in id order, after the customer `after`; at most `limit`.
pub async fn customers(
    db: &impl ConnectionTrait,
    scope: &Scope,
    filter: &CustomerFilter,
    risk: &Risk,
    after: Option<i64>,
    limit: u64,
) -> Result<Vec<customer::Model>, DbErr> {
    use customer::Column as C;
    let mut query = customer::Entity::find().filter(scope.customers());
    if let Some(owner) = &filter.owner {
        query = query.filter(C::OwnerUserid.eq(owner.as_str()));
    }
    if let Some(department) = filter.department {
        let tree = members::department_tree(db, &[department]).await?;
        let owners = members::members_of(db, &tree).await?;
        query = query.filter(C::OwnerUserid.is_in(owners));
    }
    if let Some(stage) = &filter.stage {
        query = query.filter(C::Stage.eq(stage.as_str()));
    }
    if let Some(status) = &filter.status {
        query = query.filter(C::LeadStatus.eq(status.as_str()));
    }
    if let Some(rating) = &filter.rating {
        query = query.filter(C::Rating.eq(rating.as_str()));
    }
    if let Some(tag) = &filter.tag {
        // Tags are stored as a JSON array of strings: match the quoted, escaped element.
        let element = serde_json::to_string(tag).expect("a string serializes");
        let pattern = LikeExpr::new(format!("%{}%", escape_like(&element))).escape('\\');
        query = query.filter(ExprTrait::like(Expr::col(C::Tags), pattern));
    }
    if let Some(channel) = &filter.channel {
        query = query.filter(C::FirstState.eq(channel.as_str()));
    }
    match filter.at_risk {
        Some(true) => query = query.filter(risk.condition()),
        Some(false) => query = query.filter(risk.condition().not()),
        None => {}
    }
    if let Some(since) = filter.updated_since {
        query = query.filter(C::UpdatedAt.gte(since));
    }
    if let Some(segment) = &filter.segment {
        query = query.filter(C::Segment.eq(segment.as_str()));
    }
    if let Some(min) = filter.min_score {
        query = query.filter(C::Score.gte(min));
    }
    if filter.by_score {
        // The cursor is the last row's id; its score (read now) continues the order.
        if let Some(after) = after {
            let score = customer::Entity::find_by_id(after)
                .one(db)
                .await?
                .map_or(i32::MAX, |c| c.score);
            query = query.filter(
                sea_orm::Condition::any()
                    .add(C::Score.lt(score))
                    .add(sea_orm::Condition::all().add(C::Score.eq(score)).add(C::Id.lt(after))),
            );
        }
        return query
            .order_by_desc(C::Score)
            .order_by_desc(C::Id)
            .limit(limit)
            .all(db)
            .await;
    }
    if let Some(after) = after {
        query = query.filter(C::Id.gt(after));
    }
    query.order_by_asc(C::Id).limit(limit).all(db).await
}

/// A customer with who follows them (now and before), their follow-ups and reminders.
pub struct CustomerDetail {
    pub customer: customer::Model,
    pub followers: Vec<follower::Model>,
    pub follow_ups: Vec<follow_up::Model>,
    pub reminders: Vec<reminder::Model>,
}

/// Follow-ups and reminders shown with a customer: the newest this many.
pub const DETAIL_ITEMS: u64 = 100;

/// The customer `id` if the scope includes them.
pub async fn customer(db: &impl ConnectionTrait, scope: &Scope, id: i64) -> Result<Option<CustomerDetail>, DbErr> {
    let Some(customer) = customer::Entity::find_by_id(id)
        .filter(scope.customers())
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let followers = follower::Entity::find()
        .filter(follower::Column::CustomerId.eq(id))
        .order_by_asc(follower::Column::Id)
        .all(db)
        .await?;
    let follow_ups = follow_up::Entity::find()
        .filter(follow_up::Column::CustomerId.eq(id))
        .filter(follow_up::Column::DeletedAt.is_null())
        .order_by_desc(follow_up::Column::CreatedAt)
        .order_by_desc(follow_up::Column::Id)
        .limit(DETAIL_ITEMS)
        .all(db)
        .await?;
    let reminders = reminder::Entity::find()
        .filter(reminder::Column::CustomerId.eq(id))
        .order_by_desc(reminder::Column::DueAt)
        .order_by_desc(reminder::Column::Id)
        .limit(DETAIL_ITEMS)
        .all(db)
        .await?;
    Ok(Some(CustomerDetail {
        customer,
        followers,
        follow_ups,
        reminders,
    }))
}

/// A member with the departments they belong to and lead.
pub struct MemberDetail {
    pub member: member::Model,
    pub departments: Vec<i64>,
    pub leads: Vec<i64>,
}

/// The members in scope, by userid.
pub async fn members(db: &impl ConnectionTrait, scope: &Scope) -> Result<Vec<MemberDetail>, DbErr> {
    let mut query = member::Entity::find().order_by_asc(member::Column::Userid);
    if let Scope::Members(userids) = scope {
        query = query.filter(member::Column::Userid.is_in(userids.iter().cloned()));
    }
    let rows = query.all(db).await?;
    let links = member_department::Entity::find()
        .filter(member_department::Column::Userid.is_in(rows.iter().map(|m| m.userid.clone())))
        .order_by_asc(member_department::Column::DepartmentId)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|member| {
            let mine = links.iter().filter(|l| l.userid == member.userid);
            MemberDetail {
                departments: mine.clone().map(|l| l.department_id).collect(),
                leads: mine.filter(|l| l.is_leader).map(|l| l.department_id).collect(),
                member,
            }
        })
        .collect())
}

/// The departments in scope — for a manager, those their members belong to — by id.
pub async fn departments(db: &impl ConnectionTrait, scope: &Scope) -> Result<Vec<department::Model>, DbErr> {
    let mut query = department::Entity::find().order_by_asc(department::Column::Id);
    if let Scope::Members(userids) = scope {
        query = query.filter(
            department::Column::Id.in_subquery(
                Query::select()
                    .column(member_department::Column::DepartmentId)
                    .from(member_department::Entity)
                    .and_where(member_department::Column::Userid.is_in(userids.iter().cloned()))
                    .to_owned(),
            ),
        );
    }
    query.all(db).await
}

/// Filters on follow-ups, reminders and the audit log; every one optional.
#[derive(Debug, Clone, Default)]
pub struct RecordFilter {
    pub customer: Option<i64>,
    /// The author of a follow-up, the owner of a reminder, the member an audit entry is about.
    pub member: Option<String>,
    /// Follow-ups and audit entries from, reminders due from (inclusive).
    pub since: Option<i64>,
    /// … until (exclusive).
    pub until: Option<i64>,
    /// A reminder's status (open, done, cancelled); an audit entry's action.
    pub kind: Option<String>,
}

/// Follow-ups on customers in scope, newest first, before the follow-up `before`.
pub async fn follow_ups(
    db: &impl ConnectionTrait,
    scope: &Scope,
    filter: &RecordFilter,
    before: Option<i64>,
    limit: u64,
) -> Result<Vec<follow_up::Model>, DbErr> {
    use follow_up::Column as C;
    let mut query = follow_up::Entity::find().filter(C::DeletedAt.is_null());
    if let Scope::Members(_) = scope {
        query = query.filter(C::CustomerId.in_subquery(scope.customer_ids()));
    }
    if let Some(customer) = filter.customer {
        query = query.filter(C::CustomerId.eq(customer));
    }
    if let Some(member) = &filter.member {
        query = query.filter(C::AuthorUserid.eq(member.as_str()));
    }
    if let Some(since) = filter.since {
        query = query.filter(C::CreatedAt.gte(since));
    }
    if let Some(until) = filter.until {
        query = query.filter(C::CreatedAt.lt(until));
    }
    if let Some(before) = before {
        query = query.filter(C::Id.lt(before));
    }
    query.order_by_desc(C::Id).limit(limit).all(db).await
}

/// Reminders of the scope's members (or on its customers), in id order, after the reminder `after`.
pub async fn reminders(
    db: &impl ConnectionTrait,
    scope: &Scope,
    filter: &RecordFilter,
    after: Option<i64>,
    limit: u64,
) -> Result<Vec<reminder::Model>, DbErr> {
    use reminder::Column as C;
    let mut query = reminder::Entity::find();
    if let Scope::Members(members) = scope {
        query = query.filter(
            Condition::any()
                .add(C::OwnerUserid.is_in(members.iter().cloned()))
                .add(C::CustomerId.in_subquery(scope.customer_ids())),
        );
    }
    if let Some(customer) = filter.customer {
        query = query.filter(C::CustomerId.eq(customer));
    }
    if let Some(member) = &filter.member {
        query = query.filter(C::OwnerUserid.eq(member.as_str()));
    }
    if let Some(since) = filter.since {
        query = query.filter(C::DueAt.gte(since));
    }
    if let Some(until) = filter.until {
        query = query.filter(C::DueAt.lt(until));
    }
    if let Some(status) = &filter.kind {
        query = query.filter(C::Status.eq(status.as_str()));
    }
    if let Some(after) = after {
        query = query.filter(C::Id.gt(after));
    }
    query.order_by_asc(C::Id).limit(limit).all(db).await
}

/// Audit entries about the scope's customers or members, newest first, before the entry `before`.
pub async fn audit_log(
    db: &impl ConnectionTrait,
    scope: &Scope,
    filter: &RecordFilter,
    before: Option<i64>,
    limit: u64,
) -> Result<Vec<audit::Model>, DbErr> {
    use audit::Column as C;
    let mut query = audit::Entity::find();
    if let Scope::Members(members) = scope {
        query = query.filter(
            Condition::any()
                .add(C::MemberUserid.is_in(members.iter().cloned()))
                .add(C::CustomerId.in_subquery(scope.customer_ids())),
        );
    }
    if let Some(customer) = filter.customer {
        query = query.filter(C::CustomerId.eq(customer));
    }
    if let Some(member) = &filter.member {
        query = query.filter(C::MemberUserid.eq(member.as_str()));
    }
    if let Some(since) = filter.since {
        query = query.filter(C::At.gte(since));
    }
    if let Some(until) = filter.until {
        query = query.filter(C::At.lt(until));
    }
    if let Some(action) = &filter.kind {
        query = query.filter(C::Action.eq(action.as_str()));
    }
    if let Some(before) = before {
        query = query.filter(C::Id.lt(before));
    }
    query.order_by_desc(C::Id).limit(limit).all(db).await
}
