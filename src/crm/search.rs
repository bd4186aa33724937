//! Finding customers the way reps type: a name, their own remark, the company, a phone number in
//! the remark, or pinyin (`zhangwei` or `zw` find 张伟). Only customers the asking member may see
//! are searched, and the results are ranked: exact and prefix name matches first.

use std::collections::HashMap;

use pinyin::ToPinyin;
use sea_orm::sea_query::{Condition, Expr, ExprTrait, LikeExpr, Query, UnionType};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::members::visible_userids;
use crate::db::entity::{customer, follower};

/// Pinyin of the Chinese characters in `text`: (`zhangwei`, `zw`). Other letters and digits are
/// kept, lower-cased.
pub fn pinyin(text: &str) -> (String, String) {
    let mut full = String::new();
    let mut initials = String::new();
    for (c, p) in text.chars().zip(text.to_pinyin()) {
        match p {
            Some(p) => {
                full.push_str(p.plain());
                initials.push_str(p.first_letter());
            }
            None if c.is_ascii_alphanumeric() => {
                full.push(c.to_ascii_lowercase());
                initials.push(c.to_ascii_lowercase());
            }
            None => {}
        }
    }
    (full, initials)
}

/// Everything a search should find `text` by: itself lower-cased, its full pinyin and initials.
pub fn search_forms(text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    let (full, initials) = pinyin(text);
    format!("{} {full} {initials}", text.to_lowercase())
}

/// One result: the customer, the asking member's remark on them (or a visible colleague's), and
/// how well it matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub customer: customer::Model,
    pub remark: Option<String>,
    pub score: u32,
}

/// `q` with the LIKE wildcards (and the escape character) escaped, for `ESCAPE '\\'`.
pub(crate) fn escape_like(q: &str) -> String {
    q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// Customers `viewer` may see (their own; a leader's team's too) matching `query`, best first.
pub async fn search_customers(
    db: &impl ConnectionTrait,
    viewer: &str,
    query: &str,
    limit: usize,
) -> Result<Vec<Hit>, DbErr> {
    let visible = visible_userids(db, viewer).await?;
    search_among(db, viewer, &visible, query, limit).await
}

/// Only the customers `viewer` follows or owns: those they may change.
pub async fn search_own(db: &impl ConnectionTrait, viewer: &str, query: &str, limit: usize) -> Result<Vec<Hit>, DbErr> {
    search_among(db, viewer, &[viewer.to_owned()], query, limit).await
}

/// Customers followed or owned by any of `visible`, matching `query`, best first.
pub async fn search_among(
    db: &impl ConnectionTrait,
    viewer: &str,
    visible: &[String],
    query: &str,
    limit: usize,
) -> Result<Vec<Hit>, DbErr> {
    let q = query.trim().to_lowercase();
    if q.is_empty() {
        return Ok(Vec::new());
    }
    let visible = visible.to_vec();
    let pattern = LikeExpr::new(format!("%{}%", escape_like(&q))).escape('\\');
    // The customers of `visible` first (each side by its own index), the text matched among them:
    // as `owner IN … OR id IN (followed)`, the planner walked every customer by recency instead.
    let theirs = Query::select()
        .column(follower::Column::CustomerId)
        .from(follower::Entity)
        .and_where(follower::Column::Userid.is_in(visible.clone()))
        .and_where(follower::Column::RemovedAt.is_null())
        .union(
            UnionType::Distinct,
            Query::select()
                .column(customer::Column::Id)
                .from(customer::Entity)
                .and_where(customer::Column::OwnerUserid.is_in(visible.clone()))
                .to_owned(),
        )
        .to_owned();
    let remark_matches = Query::select()
        .column(follower::Column::CustomerId)
        .from(follower::Entity)
        .and_where(follower::Column::Userid.is_in(visible.clone()))
        .and_where(Expr::col(follower::Column::SearchText).like(pattern.clone()))
        .to_owned();
    let candidates = customer::Entity::find()
        .filter(customer::Column::Id.in_subquery(theirs))
        .filter(
            Condition::any()
                .add(Expr::col(customer::Column::SearchText).like(pattern))
                .add(customer::Column::Id.in_subquery(remark_matches)),
        )
        .order_by_desc(customer::Column::UpdatedAt)
        .limit(500)
        .all(db)
        .await?;
    if candidates.is_empty() {
        return Ok(Vec::new());
    }

    let mut relations: HashMap<i64, Vec<follower::Model>> = HashMap::new();
    for f in follower::Entity::find()
        .filter(follower::Column::CustomerId.is_in(candidates.iter().map(|c| c.id)))
        .filter(follower::Column::Userid.is_in(visible))
        .all(db)
        .await?
    {
        relations.entry(f.customer_id).or_default().push(f);
    }
    let mut hits: Vec<Hit> = candidates
        .into_iter()
        .map(|customer| {
            let related = relations.remove(&customer.id).unwrap_or_default();
            let own = related.iter().find(|f| f.userid == viewer && f.removed_at.is_none());
            let best = own.or_else(|| related.iter().find(|f| f.removed_at.is_none()));
            let remark = best.map(|f| f.remark.clone()).filter(|r| !r.is_empty());
            let score = related
                .iter()
                .map(|f| rank_relation(&q, f))
                .chain([rank_customer(&q, &customer)])
                .max()
                .unwrap_or(0);
            Hit {
                customer,
                remark,
                score,
            }
        })
        .filter(|hit| hit.score > 0)
        .collect();
    hits.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then(b.customer.updated_at.cmp(&a.customer.updated_at))
            .then(a.customer.id.cmp(&b.customer.id))
    });
    hits.truncate(limit);
    Ok(hits)
}

fn rank_customer(q: &str, c: &customer::Model) -> u32 {
    let name = c.name.to_lowercase();
    let (full, initials) = pinyin(&c.name);
    if name == q {
        100
    } else if name.starts_with(q) {
        90
    } else if name.contains(q) {
        80
    } else if c.corp_name.to_lowercase().contains(q) || c.corp_full_name.to_lowercase().contains(q) {
        60
    } else if initials == q || full.starts_with(q) {
        55
    } else if full.contains(q) || initials.starts_with(q) {
        45
    } else if c.search_text.contains(q) {
        30
    } else {
        0
    }
}

fn rank_relation(q: &str, f: &follower::Model) -> u32 {
    let remark = f.remark.to_lowercase();
    if remark.is_empty() && f.search_text.trim().is_empty() {
        return 0;
    }
    let (full, initials) = pinyin(&f.remark);
    if remark == q || (!remark.is_empty() && remark.starts_with(q)) {
        85
    } else if remark.contains(q) {
        70
    } else if !full.is_empty() && (initials == q || full.starts_with(q)) {
        50
    } else if f.search_text.contains(q) {
        30
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinyin_full_and_initials() {
        assert_eq!(pinyin("张三"), ("zhangsan".into(), "zs".into()));
        assert_eq!(pinyin("张总-华为A1"), ("zhangzonghuaweia1".into(), "zzhwa1".into()));
        assert_eq!(search_forms("张伟"), "张伟 zhangwei zw");
        assert_eq!(search_forms(""), "");
    }

    #[test]
    fn like_patterns_are_escaped() {
        assert_eq!(escape_like("50%_off\\"), "50\\%\\_off\\\\");
    }
}
