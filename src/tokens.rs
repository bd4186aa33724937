//! Admin API tokens: created and revoked from the command line, presented as bearer tokens.
//!
//! A token reads `scrm_<public id>_<secret>`. The public id finds the row; only the SHA-256 of the
//! secret is stored, and it is compared in constant time, so neither the database nor the timing of
//! a failed check gives a token away.

use std::fmt;

use base64::Engine as _;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, Set};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::crm::members;
use crate::db::entity::api_token;

const PREFIX: &str = "scrm_";
/// A token used within this long is not written back as used again: no write per request.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Sees and changes everything.
    Admin,
    /// Acts for a member: sees the departments they lead (and themselves).
    Manager { member: String },
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Manager { .. } => "manager",
        }
    }
}

/// Who presented a valid token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("a token name is 1 to 64 characters: letters, digits, '-', '_' or '.'")]
    BadName,
    #[error("unknown role {0:?}: use admin or manager")]
    BadRole(String),
    #[error("a manager token needs --member USERID (the member it acts for)")]
    MemberRequired,
    #[error("an admin token sees everything; --member is only for manager tokens")]
    MemberNotAllowed,
    #[error("no active member {0:?} (run `wecom-scrm sync` first if they joined recently)")]
    UnknownMember(String),
    #[error("a token named {0:?} exists; revoke it first or choose another name")]
    NameTaken(String),
    #[error("no active token named {0:?}")]
    NotFound(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// A token just created: the only moment its full text exists.
pub struct Created {
    pub token: String,
    pub row: api_token::Model,
}

impl fmt::Debug for Created {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Created")
            .field("name", &self.row.name)
            .finish_non_exhaustive()
    }
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn secret_hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Creates a token. A revoked token's name may be taken again (the new token replaces the row).
pub async fn create(
    db: &impl ConnectionTrait,
    name: &str,
    role: &str,
    member_userid: Option<&str>,
    now: i64,
) -> Result<Created, TokenError> {
    if !valid_name(name) {
        return Err(TokenError::BadName);
    }
    let member_userid = match (role, member_userid) {
        ("admin", None) => None,
        ("admin", Some(_)) => return Err(TokenError::MemberNotAllowed),
        ("manager", None) => return Err(TokenError::MemberRequired),
        ("manager", Some(userid)) => {
            if !members::is_active(db, userid).await? {
                return Err(TokenError::UnknownMember(userid.to_owned()));
            }
            Some(userid.to_owned())
        }
        (other, _) => return Err(TokenError::BadRole(other.to_owned())),
    };
    let existing = api_token::Entity::find()
        .filter(api_token::Column::Name.eq(name))
        .one(db)
        .await?;
    if existing.as_ref().is_some_and(|t| t.revoked_at.is_none()) {
        return Err(TokenError::NameTaken(name.to_owned()));
    }
    let public_id: String = rand::random::<[u8; 6]>().iter().map(|b| format!("{b:02x}")).collect();
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let mut row = api_token::ActiveModel {
        name: Set(name.to_owned()),
        role: Set(role.to_owned()),
        member_userid: Set(member_userid),
        public_id: Set(public_id.clone()),
        secret_hash: Set(secret_hash(&secret)),
        created_at: Set(now),
        last_used_at: Set(None),
        revoked_at: Set(None),
        ..Default::default()
    };
    let row = match existing {
        Some(old) => {
            row.id = Set(old.id);
            row.update(db).await?
        }
        None => row.insert(db).await?,
    };
    Ok(Created {
        token: format!("{PREFIX}{public_id}_{secret}"),
        row,
    })
}

/// Revokes the active token named `name`: it stops working at once.
pub async fn revoke(db: &impl ConnectionTrait, name: &str, now: i64) -> Result<(), TokenError> {
    let revoked = api_token::Entity::update_many()
        .col_expr(api_token::Column::RevokedAt, Expr::val(now))
        .filter(api_token::Column::Name.eq(name))
        .filter(api_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    if revoked.rows_affected == 0 {
        return Err(TokenError::NotFound(name.to_owned()));
    }
    Ok(())
}

/// Every token, active first, by name.
pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<api_token::Model>, DbErr> {
    let mut rows = api_token::Entity::find()
        .order_by_asc(api_token::Column::Name)
        .all(db)
        .await?;
    rows.sort_by_key(|t| t.revoked_at.is_some());
    Ok(rows)
}

/// The caller a presented token stands for, or `None` when it is malformed, unknown, revoked, or
/// its manager has left.
pub async fn authenticate(db: &impl ConnectionTrait, presented: &str, now: i64) -> Result<Option<Caller>, DbErr> {
    let Some((public_id, secret)) = presented.strip_prefix(PREFIX).and_then(|rest| rest.split_once('_')) else {
        return Ok(None);
    };
    if public_id.len() != 12 || !public_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let Some(row) = api_token::Entity::find()
        .filter(api_token::Column::PublicId.eq(public_id))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let matches: bool = secret_hash(secret).as_bytes().ct_eq(row.secret_hash.as_bytes()).into();
    if !matches || row.revoked_at.is_some() {
        return Ok(None);
    }
    let role = match (row.role.as_str(), row.member_userid.clone()) {
        ("admin", _) => Role::Admin,
        ("manager", Some(member)) => {
            if !members::is_active(db, &member).await? {
                return Ok(None);
            }
            Role::Manager { member }
        }
        _ => return Ok(None),
    };
    if row.last_used_at.is_none_or(|at| now - at >= LAST_USED_RESOLUTION_MS) {
        api_token::Entity::update_many()
            .col_expr(api_token::Column::LastUsedAt, Expr::val(now))
            .filter(api_token::Column::Id.eq(row.id))
            .exec(db)
            .await?;
    }
    Ok(Some(Caller { name: row.name, role }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_and_plain() {
        assert!(valid_name("crm-sync_1.0"));
        assert!(valid_name("王经理"));
        assert!(!valid_name(""));
        assert!(!valid_name("two words"));
        assert!(!valid_name(&"x".repeat(65)));
    }

    #[test]
    fn the_secret_hash_is_sha256_hex() {
        assert_eq!(
            secret_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
