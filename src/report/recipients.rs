//! Who gets a summary, and of whom: every department leader for their department(s) and those
//! under them, and `summary.extra_recipients` for the whole org.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect};

use crate::crm::members::parse_list;
use crate::db::entity::{department, member, member_department};
use crate::services::Services;

#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error("{0} 不是部门负责人，也不在 summary.extra_recipients 中，没有日报可发")]
    NotRecipient(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Who gets a summary, and of whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub userid: String,
    /// The departments they lead, or empty for the whole org.
    pub departments: Vec<String>,
    /// The active members whose figures the summary shows.
    pub team: Vec<String>,
    /// The sub-departments directly under theirs, with their active members: a leader of
    /// leaders sees a line per department.
    pub units: Vec<(String, Vec<String>)>,
}

/// The org chart as stored by the org sync.
struct OrgChart {
    departments: Vec<department::Model>,
    links: Vec<member_department::Model>,
    active: BTreeSet<String>,
}

impl OrgChart {
    async fn load(db: &impl ConnectionTrait) -> Result<Self, DbErr> {
        Ok(Self {
            departments: department::Entity::find().all(db).await?,
            links: member_department::Entity::find().all(db).await?,
            active: member::Entity::find()
                .filter(member::Column::Active.eq(true))
                .select_only()
                .column(member::Column::Userid)
                .into_tuple::<String>()
                .all(db)
                .await?
                .into_iter()
                .collect(),
        })
    }

    fn name(&self, id: i64) -> String {
        self.departments
            .iter()
            .find(|d| d.id == id)
            .map_or_else(|| format!("#{id}"), |d| d.name.clone())
    }

    /// `heads` and every department below them.
    fn subtree(&self, heads: &BTreeSet<i64>) -> BTreeSet<i64> {
        crate::crm::members::subtree(&self.departments, heads.iter().copied())
    }

    fn members_of(&self, tree: &BTreeSet<i64>) -> Vec<String> {
        let members: BTreeSet<&String> = self
            .links
            .iter()
            .filter(|l| tree.contains(&l.department_id) && self.active.contains(&l.userid))
            .map(|l| &l.userid)
            .collect();
        members.into_iter().cloned().collect()
    }

    /// The departments directly under `heads` (but not themselves heads), with their members.
    fn units(&self, heads: &BTreeSet<i64>) -> Vec<(String, Vec<String>)> {
        let mut children: Vec<&department::Model> = self
            .departments
            .iter()
            .filter(|d| d.id != d.parent_id && heads.contains(&d.parent_id) && !heads.contains(&d.id))
            .collect();
        children.sort_by_key(|d| (d.sort_order, d.id));
        children
            .into_iter()
            .map(|d| (d.name.clone(), self.members_of(&self.subtree(&BTreeSet::from([d.id])))))
            .collect()
    }
}

/// Every active department leader, and the configured extra recipients (whole org).
pub async fn recipients(db: &impl ConnectionTrait, extra: &[String]) -> Result<Vec<Recipient>, DbErr> {
    let org = OrgChart::load(db).await?;
    let mut led: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    for l in org.links.iter().filter(|l| l.is_leader) {
        led.entry(l.userid.clone()).or_default().insert(l.department_id);
    }
    for d in &org.departments {
        for leader in parse_list(&d.leaders) {
            led.entry(leader).or_default().insert(d.id);
        }
    }
    let mut out = Vec::new();
    let ids: BTreeSet<i64> = org.departments.iter().map(|d| d.id).collect();
    let roots: BTreeSet<i64> = org
        .departments
        .iter()
        .filter(|d| d.parent_id == d.id || !ids.contains(&d.parent_id))
        .map(|d| d.id)
        .collect();
    for userid in extra.iter().filter(|u| org.active.contains(*u)) {
        out.push(Recipient {
            userid: userid.clone(),
            departments: Vec::new(),
            team: org.active.iter().cloned().collect(),
            units: org.units(&roots),
        });
    }
    for (userid, heads) in led {
        if !org.active.contains(&userid) || extra.contains(&userid) {
            continue;
        }
        out.push(Recipient {
            departments: heads.iter().map(|d| org.name(*d)).collect(),
            team: org.members_of(&org.subtree(&heads)),
            units: org.units(&heads),
            userid,
        });
    }
    Ok(out)
}

pub async fn member_names(db: &impl ConnectionTrait) -> Result<HashMap<String, String>, DbErr> {
    Ok(member::Entity::find()
        .select_only()
        .column(member::Column::Userid)
        .column(member::Column::Name)
        .into_tuple::<(String, String)>()
        .all(db)
        .await?
        .into_iter()
        .collect())
}

/// The recipients for `date` (all, or only `only`).
pub async fn chosen(s: &Services, only: Option<&str>) -> Result<Vec<Recipient>, SummaryError> {
    let all = recipients(&s.db, &s.config.summary.extra_recipients).await?;
    match only {
        None => Ok(all),
        Some(userid) => {
            let one: Vec<Recipient> = all.into_iter().filter(|r| r.userid == userid).collect();
            if one.is_empty() {
                return Err(SummaryError::NotRecipient(userid.to_owned()));
            }
            Ok(one)
        }
    }
}
