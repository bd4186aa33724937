//! What every admin API handler extracts: the authenticated caller with their scope, and query
//! parameters checked one by one so that a bad one is named in the answer.

use std::cell::RefCell;
use std::ops::RangeInclusive;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::problem::{FieldError, Problem};
use crate::crm::audit::Actor;
use crate::crm::listing::Scope;
use crate::db::now_ms;
use crate::http::AppState;
use crate::tokens::{self, Caller, Role};

/// The caller of an admin API request and what they may see.
pub struct Auth {
    pub caller: Caller,
    pub scope: Scope,
}

impl Auth {
    pub fn actor(&self) -> Actor {
        Actor::Token(self.caller.name.clone())
    }

    /// A filter on a member (`field` = `userid`) must stay within the caller's scope: a manager
    /// asking about someone outside the departments they lead is refused, not shown an empty list.
    pub fn require_member_in_scope(&self, field: &str, userid: Option<&str>) -> Result<(), Problem> {
        match userid {
            Some(userid) if !self.scope.includes_member(userid) => Err(Problem::Forbidden(format!(
                "{field}={userid} is outside this token's scope (the departments its member leads)"
            ))),
            _ => Ok(()),
        }
    }

    /// A filter on a department must be one the caller's member leads, or one under it.
    pub async fn require_department_in_scope(
        &self,
        db: &impl sea_orm::ConnectionTrait,
        department: Option<i64>,
    ) -> Result<(), Problem> {
        let (Some(department), Role::Manager { member }) = (department, &self.caller.role) else {
            return Ok(());
        };
        let led = crate::crm::members::led_departments(db, member).await?;
        if crate::crm::members::department_tree(db, &led)
            .await?
            .contains(&department)
        {
            return Ok(());
        }
        Err(Problem::Forbidden(format!(
            "department={department} is outside this token's scope (the departments its member leads)"
        )))
    }

    /// Only admin tokens may change the org's configuration.
    pub fn require_admin(&self) -> Result<(), Problem> {
        match self.caller.role {
            Role::Admin => Ok(()),
            Role::Manager { .. } => Err(Problem::Forbidden("this needs an admin token".into())),
        }
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .ok_or(Problem::Unauthorized)?;
        let caller = tokens::authenticate(&state.db, presented, now_ms())
            .await?
            .ok_or(Problem::Unauthorized)?;
        let scope = match &caller.role {
            Role::Admin => Scope::All,
            Role::Manager { member } => Scope::of_member(&state.db, member).await?,
        };
        Ok(Self { caller, scope })
    }
}

/// Whether the request's Content-Type is `media_type` (parameters such as charset aside).
pub fn has_media_type(headers: &axum::http::HeaderMap, media_type: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(media_type))
}

/// A JSON request body: `application/json`, within the size limit (`LIMIT`, which the router's
/// `DefaultBodyLimit` enforces), every field known. A field that does not fit is named as a JSON
/// pointer (`/name`).
pub struct JsonBody<T, const LIMIT: usize = { super::JSON_BODY_LIMIT }>(pub T);

impl<T: serde::de::DeserializeOwned, const LIMIT: usize> axum::extract::FromRequest<AppState> for JsonBody<T, LIMIT> {
    type Rejection = Problem;

    async fn from_request(request: axum::extract::Request, state: &AppState) -> Result<Self, Problem> {
        if !has_media_type(request.headers(), "application/json") {
            return Err(Problem::UnsupportedMediaType("application/json"));
        }
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|e| match e.status() {
                axum::http::StatusCode::PAYLOAD_TOO_LARGE => Problem::TooLarge(LIMIT),
                _ => Problem::invalid("", format!("the body could not be read: {e}")),
            })?;
        let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
        match serde_path_to_error::deserialize(&mut deserializer) {
            Ok(value) => Ok(Self(value)),
            Err(e) => {
                let path = e.path().to_string();
                let mut pointer = if path == "." {
                    String::new()
                } else {
                    format!("/{}", path.replace('.', "/"))
                };
                let message = e.into_inner().to_string();
                // An unknown field is the field at fault, not the object holding it.
                if let Some(name) = message
                    .strip_prefix("unknown field `")
                    .and_then(|rest| rest.split('`').next())
                    && !pointer.ends_with(&format!("/{name}"))
                {
                    pointer = format!("{pointer}/{name}");
                }
                Err(Problem::invalid(pointer, message))
            }
        }
    }
}

/// For `Option<Option<T>>` body fields (with `#[serde(default)]`): absent → `None`, `null` →
/// `Some(None)`, a value → `Some(Some(value))` — so that `null` can clear what leaving a field out
/// keeps.
pub fn double_option<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(deserializer).map(Some)
}

/// Query parameters, checked against the names a handler accepts. Reading a parameter records
/// what is wrong with it; [`Params::finish`] answers every fault at once.
pub struct Params {
    pairs: Vec<(String, String)>,
    errors: RefCell<Vec<FieldError>>,
}

impl Params {
    pub fn parse(raw: Option<&str>, accepted: &[&str]) -> Self {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let mut errors = Vec::new();
        for (i, (name, _)) in pairs.iter().enumerate() {
            if !accepted.contains(&name.as_str()) {
                errors.push(field_error(
                    name,
                    format!("unknown parameter; accepted: {}", accepted.join(", ")),
                ));
            } else if pairs[..i].iter().any(|(earlier, _)| earlier == name) {
                errors.push(field_error(name, "given more than once"));
            }
        }
        Self {
            pairs,
            errors: RefCell::new(errors),
        }
    }

    /// Records what is wrong with a parameter read by the caller itself.
    pub fn report(&self, name: &str, message: impl Into<String>) {
        self.fault(name, message);
    }

    fn fault(&self, name: &str, message: impl Into<String>) {
        self.errors.borrow_mut().push(field_error(name, message));
    }

    /// A non-empty text parameter.
    pub fn text(&self, name: &str) -> Option<String> {
        let value = self.pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.trim())?;
        if value.is_empty() {
            self.fault(name, "must not be empty");
            return None;
        }
        if value.chars().count() > 200 {
            self.fault(name, "is longer than 200 characters");
            return None;
        }
        Some(value.to_owned())
    }

    /// One of `options`.
    pub fn choice(&self, name: &str, options: &[&str]) -> Option<String> {
        let text = self.text(name)?;
        if options.contains(&text.as_str()) {
            Some(text)
        } else {
            self.fault(name, format!("must be one of {}", options.join(", ")));
            None
        }
    }

    pub fn int(&self, name: &str, range: RangeInclusive<i64>) -> Option<i64> {
        let text = self.text(name)?;
        match text.parse::<i64>() {
            Ok(n) if range.contains(&n) => Some(n),
            _ => {
                self.fault(
                    name,
                    format!("must be a whole number from {} to {}", range.start(), range.end()),
                );
                None
            }
        }
    }

    pub fn bool(&self, name: &str) -> Option<bool> {
        match self.text(name)?.as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => {
                self.fault(name, "must be true or false");
                None
            }
        }
    }

    /// An instant in RFC 3339, e.g. `2026-12-01T09:00:00+08:00`; as Unix milliseconds.
    pub fn time(&self, name: &str) -> Option<i64> {
        let text = self.text(name)?;
        match chrono::DateTime::parse_from_rfc3339(&text) {
            Ok(t) => Some(t.timestamp_millis()),
            Err(_) => {
                self.fault(name, "must be an RFC 3339 time, e.g. 2026-12-01T09:00:00+08:00");
                None
            }
        }
    }

    /// A page cursor from an earlier answer's `next_cursor`.
    pub fn cursor(&self, name: &str) -> Option<i64> {
        let text = self.text(name)?;
        match decode_cursor(&text) {
            Some(after) => Some(after),
            None => {
                self.fault(name, "is not a cursor this API gave out");
                None
            }
        }
    }

    /// Every fault found while reading, or none.
    pub fn finish(self) -> Result<(), Problem> {
        let errors = self.errors.into_inner();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Problem::Invalid(errors))
        }
    }
}

fn field_error(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Cursors are opaque to clients: the last id of a page, in a form that says it is a cursor.
pub fn encode_cursor(last_id: i64) -> String {
    format!("c{last_id:x}")
}

fn decode_cursor(text: &str) -> Option<i64> {
    i64::from_str_radix(text.strip_prefix('c')?, 16)
        .ok()
        .filter(|id| *id > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_repeated_and_bad_parameters_are_all_named() {
        let params = Params::parse(Some("limit=0&limit=5&colour=red&at_risk=maybe"), &["limit", "at_risk"]);
        assert_eq!(params.int("limit", 1..=500), None);
        assert_eq!(params.bool("at_risk"), None);
        let Err(Problem::Invalid(errors)) = params.finish() else {
            panic!("expected invalid");
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["limit", "colour", "limit", "at_risk"]);
    }

    #[test]
    fn chinese_values_and_cursors_round_trip() {
        let params = Params::parse(Some("stage=%E8%B5%A2%E5%8D%95&cursor=c2a"), &["stage", "cursor"]);
        assert_eq!(params.text("stage").as_deref(), Some("赢单"));
        assert_eq!(params.cursor("cursor"), Some(42));
        assert!(params.finish().is_ok());
        assert_eq!(encode_cursor(42), "c2a");
        assert_eq!(decode_cursor("42"), None);
        assert_eq!(decode_cursor("c-1"), None);
    }
}
