//! Leads in from CSV — business cards from a trade fair — checked row by row, idempotent on a
//! natural key, and linked to the WeCom contact they become. The export is in [`super::export`].

use std::collections::HashMap;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::{AssignRule, Config, Plan};
use crate::crm::assign::{self, Among};
use crate::crm::audit::{self, Actor};
use crate::crm::export::BOM;
use crate::crm::listing::Scope;
use crate::crm::search::search_forms;
use crate::crm::{channels, plans};
use crate::db::begin_write;
use crate::db::entity::{channel, customer, member};

/// The external id of an imported lead until it is linked to a WeCom contact.
pub const LEAD_PREFIX: &str = "lead:";

/// The columns an import reads, by the names a sheet may give them (Chinese or English).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Column {
    Id,
    Name,
    Company,
    Position,
    Phone,
    Owner,
    Channel,
}

fn column_of(header: &str) -> Option<Column> {
    let h = header.trim().trim_start_matches('\u{feff}').to_lowercase();
    Some(match h.as_str() {
        "客户id" | "id" => Column::Id,
        "姓名" | "名字" | "客户" | "name" => Column::Name,
        "公司" | "单位" | "company" | "corp_name" => Column::Company,
        "职位" | "职务" | "position" | "title" => Column::Position,
        "电话" | "手机" | "手机号" | "phone" | "mobile" => Column::Phone,
        "负责人" | "owner" => Column::Owner,
        "渠道" | "来源" | "channel" | "source" => Column::Channel,
        _ => return None,
    })
}

/// A row left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RejectedRow {
    /// The line in the file (the header is line 1).
    pub line: u64,
    /// The column at fault.
    pub field: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    /// Data rows read (blank lines not counted).
    pub rows: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// New leads without an owner given to a rep by the assignment rules (`assignment.leads`).
    pub assigned: u64,
    /// New leads without an owner left in the pool (the rule is the pool, or nobody was eligible).
    pub pooled: u64,
    pub rejected: Vec<RejectedRow>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the file is not CSV: {0}")]
    Unreadable(String),
    #[error("the file has no {0} column (accepted names: {1})")]
    MissingColumn(&'static str, &'static str),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// A row that validated: what to write, and where it came from.
struct Lead {
    line: u64,
    id: Option<i64>,
    key: String,
    name: String,
    company: String,
    position: String,
    phone: String,
    /// `None`: the assignment rules find one (or the pool keeps it).
    owner: Option<String>,
    /// As written; a known channel's state or name, or the state an exported customer came with.
    channel_text: Option<String>,
    channel: Option<channel::Model>,
}

/// How new leads without an owner are placed: the rules and stages in force when the import starts.
struct Placing {
    rule: AssignRule,
    among: Among,
    max_open_leads: u32,
    stages: Vec<String>,
}

impl Placing {
    async fn for_leads(db: &impl ConnectionTrait, config: &Config) -> Result<Self, DbErr> {
        let rules = crate::crm::pool::rules(db, config).await?;
        Ok(Self {
            among: Among::configured(&rules.assignment),
            max_open_leads: rules.assignment.max_open_leads,
            rule: rules.assignment.leads,
            stages: crate::crm::stages::current(db, config).await?,
        })
    }
}

/// Rows written per transaction: a 3,000-card file is a handful of commits.
const BATCH: usize = 200;

/// Imports leads from CSV. Rows that fail validation are reported and left out; the others are
/// created, or update the customer they match (by 客户ID, else the phone, else name and company),
/// so importing the same file again changes nothing. A new lead without an owner goes by the
/// assignment rules (`assignment.leads`: a rep, or the pool). `progress` hears (rows done, rows).
pub async fn import_customers(
    db: &DatabaseConnection,
    scope: &Scope,
    actor: &Actor,
    config: &Config,
    file: &[u8],
    now: i64,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<ImportReport, ImportError> {
    let text = std::str::from_utf8(file)
        .map_err(|e| ImportError::Unreadable(format!("not UTF-8 (save the sheet as CSV UTF-8): {e}")))?;
    let text = text.strip_prefix(BOM).unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| ImportError::Unreadable(e.to_string()))?
        .clone();
    let columns: HashMap<Column, usize> = headers
        .iter()
        .enumerate()
        .filter_map(|(i, h)| column_of(h).map(|c| (c, i)))
        .collect();
    if !columns.contains_key(&Column::Name) {
        return Err(ImportError::MissingColumn("name", "姓名, name"));
    }
    let members: Vec<member::Model> = member::Entity::find()
        .filter(member::Column::Active.eq(true))
        .all(db)
        .await?;
    let channels = channels::list(db).await?;
    let placing = Placing::for_leads(db, config).await?;

    let mut report = ImportReport::default();
    let mut leads = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for record in reader.records() {
        let record = record.map_err(|e| ImportError::Unreadable(e.to_string()))?;
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(|v| v.trim().is_empty()) {
            continue;
        }
        report.rows += 1;
        let cell = |c: Column| {
            columns
                .get(&c)
                .and_then(|&i| record.get(i))
                .map(|v| v.trim().to_owned())
                .unwrap_or_default()
        };
        match validate(&cell, scope, &members, &channels) {
            Ok(mut lead) => {
                lead.line = line;
                if let Some(first) = seen.insert(lead.key.clone(), line) {
                    report.rejected.push(RejectedRow {
                        line,
                        field: "姓名".into(),
                        reason: format!("the same lead as line {first}"),
                    });
                } else {
                    leads.push(lead);
                }
            }
            Err((field, reason)) => report.rejected.push(RejectedRow {
                line,
                field: field.into(),
                reason,
            }),
        }
    }

    let total = report.rows;
    let mut done = total - leads.len() as u64;
    progress(done, total);
    for batch in leads.chunks(BATCH) {
        let txn = begin_write(db).await?;
        for lead in batch {
            match write(&txn, (scope, actor), (&config.plans, &placing), lead, now).await? {
                Written::Created(placed) => {
                    report.created += 1;
                    match placed {
                        Placed::Named => {}
                        Placed::Assigned => report.assigned += 1,
                        Placed::Pooled => report.pooled += 1,
                    }
                }
                Written::Updated => report.updated += 1,
                Written::Unchanged => report.unchanged += 1,
                Written::Refused(field, reason) => report.rejected.push(RejectedRow {
                    line: lead.line,
                    field: field.into(),
                    reason,
                }),
            }
        }
        txn.commit().await?;
        done += batch.len() as u64;
        progress(done, total);
    }
    report.rejected.sort_by_key(|r| r.line);
    Ok(report)
}

/// A row's lead, or the column at fault and why.
fn validate(
    cell: &dyn Fn(Column) -> String,
    scope: &Scope,
    members: &[member::Model],
    channels: &[channel::Model],
) -> Result<Lead, (&'static str, String)> {
    let id = match cell(Column::Id) {
        text if text.is_empty() => None,
        text => Some(
            text.parse::<i64>()
                .map_err(|_| ("客户ID", "must be a customer id from an export".to_owned()))?,
        ),
    };
    let name = cell(Column::Name);
    if name.is_empty() {
        return Err(("姓名", "a name is required".into()));
    }
    if name.chars().count() > 64 {
        return Err(("姓名", "longer than 64 characters".into()));
    }
    let company = cell(Column::Company);
    if company.chars().count() > 128 {
        return Err(("公司", "longer than 128 characters".into()));
    }
    let position = cell(Column::Position);
    if position.chars().count() > 64 {
        return Err(("职位", "longer than 64 characters".into()));
    }
    let phone = normalize_phone(&cell(Column::Phone))?;
    let owner_text = cell(Column::Owner);
    let owner = if owner_text.is_empty() {
        // A token limited to departments cannot leave a lead to rules reaching beyond them.
        if !matches!(scope, Scope::All) {
            return Err((
                "负责人",
                "an owner is required with a token limited to departments".into(),
            ));
        }
        None
    } else {
        Some(member_named(&owner_text, scope, members)?)
    };
    let channel_text = Some(cell(Column::Channel)).filter(|t| !t.is_empty());
    let channel = channel_text
        .as_ref()
        .and_then(|text| channels.iter().find(|c| &c.state == text || &c.name == text).cloned());
    let key = if let Some(key) = phone_key(&phone) {
        key
    } else {
        format!("name:{}|company:{}", name.to_lowercase(), company.to_lowercase())
    };
    Ok(Lead {
        line: 0,
        id,
        key,
        name,
        company,
        position,
        phone,
        owner,
        channel_text,
        channel,
    })
}

/// The active member `owner_text` names (a userid, or a name only one member has) within `scope`.
fn member_named(owner_text: &str, scope: &Scope, members: &[member::Model]) -> Result<String, (&'static str, String)> {
    let matching: Vec<&member::Model> = members
        .iter()
        .filter(|m| m.userid == owner_text || m.name == owner_text)
        .collect();
    let owner = match matching.as_slice() {
        [one] => one.userid.clone(),
        [] => return Err(("负责人", format!("no active member {owner_text:?}"))),
        _ => {
            return Err((
                "负责人",
                format!("{owner_text:?} names several members; use the userid"),
            ));
        }
    };
    if !scope.includes_member(&owner) {
        return Err(("负责人", format!("{owner} is outside this token's departments")));
    }
    Ok(owner)
}

/// The natural key of a lead with this phone number, if it is one.
pub fn phone_key(text: &str) -> Option<String> {
    normalize_phone(text)
        .ok()
        .filter(|p| !p.is_empty())
        .map(|p| format!("phone:{p}"))
}

/// Imported leads become the WeCom contacts that turn up with their phone number among a
/// member's remark mobiles (the rep noted the number when the person added them): the lead's
/// record takes the contact's external id — so the add or edit that follows updates it instead of
/// creating a second customer — and keeps its owner, channel and history. Contacts already known
/// are left alone. Returns the ids of the leads linked.
pub async fn link_imported_leads(db: &impl ConnectionTrait, contacts: &[(&str, &[String])]) -> Result<Vec<i64>, DbErr> {
    let mut wanted: HashMap<String, &str> = HashMap::new();
    for (external_userid, mobiles) in contacts {
        for mobile in mobiles.iter() {
            if let Some(key) = phone_key(mobile) {
                wanted.entry(key).or_insert(external_userid);
            }
        }
    }
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let mut known: std::collections::HashSet<String> = customer::Entity::find()
        .filter(customer::Column::ExternalUserid.is_in(wanted.values().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(|c| c.external_userid)
        .collect();
    let leads = customer::Entity::find()
        .filter(customer::Column::ImportKey.is_in(wanted.keys().cloned()))
        .filter(customer::Column::ExternalUserid.starts_with(LEAD_PREFIX))
        .all(db)
        .await?;
    let mut linked = Vec::new();
    for lead in leads {
        let Some(external) = lead.import_key.as_ref().and_then(|k| wanted.get(k)).copied() else {
            continue;
        };
        if !known.insert(external.to_owned()) {
            continue;
        }
        customer::Entity::update_many()
            .col_expr(
                customer::Column::ExternalUserid,
                sea_orm::sea_query::Expr::val(external),
            )
            .filter(customer::Column::Id.eq(lead.id))
            .exec(db)
            .await?;
        let detail =
            serde_json::json!({ "lead": lead.external_userid, "external_userid": external, "phone": lead.phone });
        audit::record(
            db,
            &Actor::Wecom,
            "customer.link",
            Some(lead.id),
            lead.owner_userid.as_deref(),
            detail,
        )
        .await?;
        linked.push(lead.id);
    }
    Ok(linked)
}

/// Digits (and a leading +) of a phone number written any usual way: `138-0000-0001`,
/// `+86 138 0000 0001`.
fn normalize_phone(text: &str) -> Result<String, (&'static str, String)> {
    let mut phone = String::new();
    for (i, c) in text.chars().enumerate() {
        match c {
            '0'..='9' => phone.push(c),
            '+' if i == 0 => phone.push(c),
            ' ' | '-' | '(' | ')' | '.' => {}
            _ => return Err(("电话", format!("{text:?} is not a phone number"))),
        }
    }
    let digits = phone.trim_start_matches('+').len();
    if digits != 0 && !(6..=20).contains(&digits) {
        return Err(("电话", format!("{text:?} is not a phone number")));
    }
    Ok(phone)
}

/// Where a new lead went.
enum Placed {
    /// To the owner its row named.
    Named,
    Assigned,
    Pooled,
}

enum Written {
    Created(Placed),
    Updated,
    Unchanged,
    Refused(&'static str, String),
}

async fn write(
    db: &impl ConnectionTrait,
    (scope, actor): (&Scope, &Actor),
    (plans_config, placing): (&[Plan], &Placing),
    lead: &Lead,
    now: i64,
) -> Result<Written, DbErr> {
    let existing = match lead.id {
        Some(id) => match customer::Entity::find_by_id(id).one(db).await? {
            Some(c) => Some(c),
            None => return Ok(Written::Refused("客户ID", format!("no customer {id}"))),
        },
        None => {
            customer::Entity::find()
                .filter(customer::Column::ImportKey.eq(lead.key.as_str()))
                .one(db)
                .await?
        }
    };
    let search_text = format!(
        "{} {} {}",
        search_forms(&lead.name),
        search_forms(&lead.company),
        lead.phone
    );
    let state = match (&lead.channel, &lead.channel_text) {
        (Some(c), _) => Some(c.state.clone()),
        // A state without a channel record is kept only as the customer already has it.
        (None, Some(text)) if existing.as_ref().and_then(|c| c.first_state.as_ref()) == Some(text) => {
            Some(text.clone())
        }
        (None, Some(text)) => {
            return Ok(Written::Refused(
                "渠道",
                format!("no channel {text:?}; create it first"),
            ));
        }
        (None, None) => None,
    };
    let Some(existing) = existing else {
        let digest = Sha256::digest(lead.key.as_bytes());
        let external: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        let status = lead.channel.as_ref().and_then(|c| c.follow_up_plan.clone());
        let created = customer::ActiveModel {
            external_userid: Set(format!("{LEAD_PREFIX}{external}")),
            name: Set(lead.name.clone()),
            contact_type: Set(0),
            avatar: Set(String::new()),
            gender: Set(0),
            unionid: Set(String::new()),
            corp_name: Set(lead.company.clone()),
            corp_full_name: Set(String::new()),
            position: Set(lead.position.clone()),
            phone: Set(lead.phone.clone()),
            import_key: Set(Some(lead.key.clone())),
            owner_userid: Set(lead.owner.clone()),
            owner_since: Set(lead.owner.as_ref().map(|_| now)),
            first_state: Set(state),
            lead_status: Set(status.clone()),
            tags: Set("[]".into()),
            score: Set(0),
            pending: Set(false),
            at_risk: Set(false),
            search_text: Set(search_text),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(db)
        .await?;
        let detail = serde_json::json!({
            "name": created.name, "company": created.corp_name, "phone": created.phone,
            "owner": created.owner_userid, "channel": created.first_state,
        });
        audit::record(
            db,
            actor,
            "customer.import",
            Some(created.id),
            lead.owner.as_deref(),
            detail,
        )
        .await?;
        let (created, placed) = match &lead.owner {
            Some(_) => (created, Placed::Named),
            None => {
                let to_rule = (&placing.rule, placing.among, placing.max_open_leads);
                let owner = assign::place(db, actor, to_rule, &placing.stages, (&created, None), "导入", now).await?;
                let placed = if owner.is_some() {
                    Placed::Assigned
                } else {
                    Placed::Pooled
                };
                let now_placed = customer::Entity::find_by_id(created.id)
                    .one(db)
                    .await?
                    .unwrap_or(created);
                (now_placed, placed)
            }
        };
        // A plan's reminders need an owner; a pooled lead gets them when claimed.
        if let Some(status) = status
            && created.owner_userid.is_some()
        {
            plans::apply(db, plans_config, &created, &status, now).await?;
        }
        return Ok(Written::Created(placed));
    };
    let in_scope = match scope {
        Scope::All => true,
        Scope::Members(_) => existing
            .owner_userid
            .as_deref()
            .is_some_and(|o| scope.includes_member(o)),
    };
    if !in_scope {
        return Ok(Written::Refused("客户ID", "outside this token's departments".into()));
    }
    let changed = existing.name != lead.name
        || existing.corp_name != lead.company
        || existing.position != lead.position
        || existing.phone != lead.phone
        || lead
            .owner
            .as_ref()
            .is_some_and(|o| existing.owner_userid.as_ref() != Some(o))
        || (state.is_some() && existing.first_state != state);
    if !changed {
        return Ok(Written::Unchanged);
    }
    let before = serde_json::json!({
        "name": existing.name, "company": existing.corp_name, "phone": existing.phone,
        "owner": existing.owner_userid, "channel": existing.first_state,
    });
    let id = existing.id;
    let existing_owner = existing.owner_userid.clone();
    let mut row: customer::ActiveModel = existing.into();
    row.name = Set(lead.name.clone());
    row.corp_name = Set(lead.company.clone());
    row.position = Set(lead.position.clone());
    row.phone = Set(lead.phone.clone());
    if let Some(owner) = &lead.owner {
        if existing_owner.as_ref() != Some(owner) {
            row.owner_since = Set(Some(now));
            // A lead in the pool given an owner by name leaves it.
            row.pooled_at = Set(None);
        }
        row.owner_userid = Set(Some(owner.clone()));
    }
    if state.is_some() {
        row.first_state = Set(state);
    }
    row.search_text = Set(search_text);
    row.updated_at = Set(now);
    let after = row.update(db).await?;
    let detail = serde_json::json!({
        "before": before,
        "after": {
            "name": after.name, "company": after.corp_name, "phone": after.phone,
            "owner": after.owner_userid, "channel": after.first_state,
        },
    });
    audit::record(
        db,
        actor,
        "customer.import_update",
        Some(id),
        after.owner_userid.as_deref(),
        detail,
    )
    .await?;
    Ok(Written::Updated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_normalized_or_refused() {
        assert_eq!(normalize_phone("138-0000-0001").unwrap(), "13800000001");
        assert_eq!(normalize_phone("+86 138 0000 0001").unwrap(), "+8613800000001");
        assert_eq!(normalize_phone("").unwrap(), "");
        assert!(normalize_phone("call me").is_err());
        assert!(normalize_phone("123").is_err());
    }

    #[test]
    fn headers_are_read_in_chinese_or_english() {
        assert_eq!(column_of("\u{feff}姓名"), Some(Column::Name));
        assert_eq!(column_of(" Phone "), Some(Column::Phone));
        assert_eq!(column_of("手机号"), Some(Column::Phone));
        assert_eq!(column_of("备注"), None);
    }
}
