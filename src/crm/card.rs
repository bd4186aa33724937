//! A customer as the customer page shows them — who they are, where they came from, who follows
//! them, where they stand, the last follow-ups and open reminders — and who may see or change them.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};

use super::risk::Risk;
use super::{channels, customers, deals, followups, members, reminders};
use crate::config::Config;
use crate::db::entity::{customer, follow_up, follower, member, reminder};

/// The follow-ups a card shows.
pub const CARD_FOLLOW_UPS: u64 = 10;

/// What a member may do with a customer. Anyone else is not told the customer exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// They own or follow the customer: see and change.
    Change,
    /// They lead a department whose member owns or follows the customer: see only.
    View,
}

/// `userid`'s access to `customer`, or `None`.
pub async fn access(
    db: &impl ConnectionTrait,
    userid: &str,
    customer: &customer::Model,
) -> Result<Option<Access>, DbErr> {
    if customers::accessible(db, customer, &[userid.to_owned()]).await? {
        return Ok(Some(Access::Change));
    }
    let team = members::visible_userids(db, userid).await?;
    if team.len() > 1 && customers::accessible(db, customer, &team).await? {
        return Ok(Some(Access::View));
    }
    Ok(None)
}

/// A member as a card names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub userid: String,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct CardFollower {
    pub person: Person,
    /// The rep's remark on the customer in WeCom.
    pub remark: String,
    pub added_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Card {
    pub customer: customer::Model,
    /// The lead channel's name, or how they were added.
    pub source: String,
    pub owner: Option<Person>,
    /// The reps who follow the customer now, owner first.
    pub followers: Vec<CardFollower>,
    pub tags: Vec<String>,
    /// The newest follow-ups, newest first, with their authors.
    pub follow_ups: Vec<(follow_up::Model, Person)>,
    /// Open reminders, soonest first, with their owners.
    pub reminders: Vec<(reminder::Model, Person)>,
    /// Why the customer is at risk, as [`Risk`] defines it.
    pub risk: Option<String>,
    /// The configured stages, in order.
    pub stages: Vec<String>,
}

/// The card of `customer`.
pub async fn card(
    db: &impl ConnectionTrait,
    config: &Config,
    customer: customer::Model,
    now: i64,
) -> Result<Card, DbErr> {
    let channel = channels::find_by_state(db, customer.first_state.as_deref().unwrap_or_default()).await?;
    let source = channels::source_name(channel.as_ref(), customer.first_state.as_deref());
    let followers = follower::Entity::find()
        .filter(follower::Column::CustomerId.eq(customer.id))
        .filter(follower::Column::RemovedAt.is_null())
        .order_by_asc(follower::Column::Id)
        .all(db)
        .await?;
    let notes = followups::recent(db, customer.id, CARD_FOLLOW_UPS).await?;
    let open = reminders::open_on_customer(db, customer.id).await?;

    let mut userids: Vec<String> = followers.iter().map(|f| f.userid.clone()).collect();
    userids.extend(customer.owner_userid.clone());
    userids.extend(notes.iter().map(|n| n.author_userid.clone()));
    userids.extend(open.iter().map(|r| r.owner_userid.clone()));
    userids.sort();
    userids.dedup();
    let names: HashMap<String, String> = member::Entity::find()
        .filter(member::Column::Userid.is_in(userids))
        .all(db)
        .await?
        .into_iter()
        .map(|m| (m.userid, m.name))
        .collect();
    let person = |userid: &str| Person {
        userid: userid.to_owned(),
        name: members::name_or_id(names.get(userid).cloned().unwrap_or_default(), userid),
    };

    let owner = customer.owner_userid.as_deref().map(person);
    let mut followers: Vec<CardFollower> = followers
        .into_iter()
        .map(|f| CardFollower {
            person: person(&f.userid),
            remark: f.remark,
            added_at: f.added_at,
        })
        .collect();
    followers.sort_by_key(|f| Some(&f.person.userid) != customer.owner_userid.as_ref());
    let follow_ups = notes
        .into_iter()
        .map(|n| {
            let author = person(&n.author_userid);
            (n, author)
        })
        .collect();
    let reminders = open
        .into_iter()
        .map(|r| {
            let owner = person(&r.owner_userid);
            (r, owner)
        })
        .collect();
    let risk = Risk::current(db, config, now).await?.reason(&customer);
    let stages = super::stages::current(db, config).await?;
    Ok(Card {
        tags: deals::tags_of(&customer),
        customer,
        source,
        owner,
        followers,
        follow_ups,
        reminders,
        risk,
        stages,
    })
}

/// The customers `userid` owns or follows, most recently followed up first (then newest), at
/// most `limit`: the sidebar's list outside a customer chat.
pub async fn recent_customers(
    db: &impl ConnectionTrait,
    userid: &str,
    limit: u64,
) -> Result<Vec<customer::Model>, DbErr> {
    use sea_orm::QuerySelect;
    use sea_orm::sea_query::{NullOrdering, Order};
    customer::Entity::find()
        .filter(customers::owned_or_followed_by(userid))
        .order_by_with_nulls(customer::Column::LastFollowUpAt, Order::Desc, NullOrdering::Last)
        .order_by_desc(customer::Column::Id)
        .limit(limit)
        .all(db)
        .await
}
