//! Errors of the admin API, answered as problem details (RFC 9457, `application/problem+json`),
//! naming the field at fault when there is one. Mapped to statuses here and nowhere else.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// A problem details document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemDocument {
    /// A URI reference naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The fields at fault, for input that does not validate.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The query parameter or body field (a JSON pointer into the body), e.g. `limit`, `/name`.
    pub field: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error("a valid bearer token is required (Authorization: Bearer scrm_…)")]
    Unauthorized,
    /// A web page's API without a session: sign in through WeCom (open a page) first.
    #[error("sign in through WeCom first (open the page again)")]
    SignInRequired,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("the request does not validate")]
    Invalid(Vec<FieldError>),
    #[error("{0}")]
    Conflict(String),
    #[error("this resource does not answer that method")]
    MethodNotAllowed,
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the request body must be {0}")]
    UnsupportedMediaType(&'static str),
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// A service we depend on (WeCom) did not answer; the detail says which.
    #[error("{0}")]
    Upstream(String),
}

impl Problem {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized | Self::SignInRequired => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Database(_) | Self::Upstream(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::SignInRequired => "sign-in-required",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not-found",
            Self::Invalid(_) => "invalid-request",
            Self::Conflict(_) => "conflict",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::TooLarge(_) => "body-too-large",
            Self::UnsupportedMediaType(_) => "unsupported-media-type",
            Self::Database(_) | Self::Upstream(_) => "unavailable",
        }
    }

    pub fn document(&self) -> ProblemDocument {
        let status = self.status();
        ProblemDocument {
            kind: format!("/api/v1/problems/{}", self.kind()),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            // The cause of an outage is for the log, not for the caller.
            detail: match self {
                Self::Database(_) => "the database is unavailable; retry later".to_owned(),
                Self::Invalid(errors) if errors.len() == 1 => format!("{}: {}", errors[0].field, errors[0].message),
                other => other.to_string(),
            },
            errors: match self {
                Self::Invalid(errors) => errors.clone(),
                _ => Vec::new(),
            },
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %self, "API request failed");
        } else {
            tracing::info!(status = status.as_u16(), error = %self, "API request refused");
        }
        let mut response = (status, axum::Json(self.document())).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if matches!(self, Self::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The problem responses the routes share, written once for the OpenAPI document: each is one
/// status answered with a problem document (`responses((status = 200, …), Unauthorized, Invalid)`).
pub mod responses {
    use std::collections::BTreeMap;

    use utoipa::openapi::response::{Response, ResponseBuilder};
    use utoipa::openapi::{ContentBuilder, Ref, RefOr};

    fn problem(status: &str, description: &str) -> BTreeMap<String, RefOr<Response>> {
        let content = ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ProblemDocument")))
            .build();
        let response = ResponseBuilder::new()
            .description(description)
            .content("application/problem+json", content)
            .build();
        BTreeMap::from([(status.to_owned(), RefOr::T(response))])
    }

    macro_rules! problem_response {
        ($(#[$doc:meta])* $name:ident, $status:literal, $description:literal) => {
            $(#[$doc])*
            pub struct $name;

            impl utoipa::IntoResponses for $name {
                fn responses() -> BTreeMap<String, RefOr<Response>> {
                    problem($status, $description)
                }
            }
        };
    }

    problem_response!(
        /// Every route: the bearer token is missing, wrong, expired or revoked.
        Unauthorized, "401", "no valid bearer token"
    );
    problem_response!(
        /// Writes an admin token must make.
        AdminOnly, "403", "the token may not do this"
    );
    problem_response!(
        /// Lists filtered by a member or department a manager's token does not cover.
        OutOfScope, "403", "a member or department filter outside the token's scope"
    );
    problem_response!(
        /// One resource, absent or outside the token's scope (the two are not told apart).
        NotFound, "404", "not found, or outside the token's scope"
    );
    problem_response!(
        /// Query parameters or a body that do not validate.
        Invalid, "422", "the input does not validate; the fields at fault are named"
    );
}
