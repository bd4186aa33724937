//! Every error an HTTP handler can return, mapped to a status in exactly one place. Clients get a
//! short, safe message; the detail goes to the log (4xx at `warn` for callbacks, since a real WeCom
//! request never fails verification unless the configuration is wrong).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing signature parameters (msg_signature, timestamp, nonce)")]
    MissingSignature,
    #[error("signature does not match")]
    BadSignature,
    #[error("timestamp is invalid or outside the accepted window")]
    StaleTimestamp,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("service unavailable: {0}")]
    Unavailable(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingSignature | Self::BadSignature | Self::StaleTimestamp => StatusCode::UNAUTHORIZED,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %self, "request failed");
        } else {
            tracing::warn!(status = status.as_u16(), error = %self, "request rejected");
        }
        let body = match &self {
            // The cause of an outage is for the log, not for the caller.
            Self::Unavailable(_) => "service unavailable, retry later".to_owned(),
            other => other.to_string(),
        };
        (status, [("content-type", "text/plain; charset=utf-8")], body).into_response()
    }
}
