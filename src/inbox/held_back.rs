//! Rows held back together. When a row is deferred because a dependency is at capacity (a spent
//! per-minute call budget), the rows of the same kind waiting behind it would meet the same refusal:
//! left due, each would be claimed, tried and deferred on its own, and a backlog of them taken
//! oldest first would keep a member's chat, which came later, waiting. They are deferred with it, in
//! one statement, until the dependency said to come back. Rows already claimed meet the refusal
//! themselves and are deferred one by one.

use std::collections::HashMap;
use std::sync::Mutex;

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use super::Status;
use crate::db::entity::inbox;

/// Remembers, per kind, until when its waiting rows were last held back by this worker, so that
/// the rows of a claimed batch meeting the same refusal hold the kind back once, not once each.
#[derive(Default)]
pub(super) struct HeldBack {
    until_by_kind: Mutex<HashMap<String, i64>>,
}

impl HeldBack {
    fn kinds(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.until_by_kind
            .lock()
            .expect("the held-back kinds lock is never poisoned")
    }

    /// Defers every waiting row of `kind` due before `until` to `until`, unless this worker did so
    /// already for a time still ahead of `now`. Returns how many rows it deferred.
    pub(super) async fn hold_back(
        &self,
        db: &impl ConnectionTrait,
        kind: &str,
        until: i64,
        now: i64,
    ) -> Result<u64, DbErr> {
        {
            let mut held = self.kinds();
            if held.get(kind).is_some_and(|&until| until > now) {
                return Ok(0);
            }
            held.insert(kind.to_owned(), until);
        }
        use inbox::Column as C;
        let deferred = inbox::Entity::update_many()
            .col_expr(C::NextAttemptAt, Expr::val(until))
            .filter(C::Status.eq(Status::Pending.as_str()))
            .filter(C::Kind.eq(kind))
            .filter(C::NextAttemptAt.lt(until))
            .exec(db)
            .await;
        match deferred {
            Ok(result) => Ok(result.rows_affected),
            Err(e) => {
                // Not held back after all: the next refusal tries again.
                self.kinds().remove(kind);
                Err(e)
            }
        }
    }
}
