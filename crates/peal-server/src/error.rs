//! The server's one error type, mapped once to a public code and status.
//! Internal details are logged, never sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use peal_proto::error::ErrorEnvelope;
use peal_proto::{ErrorBody, ErrorCode};

use crate::store::StoreError;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub body: ErrorBody,
    /// Sent as `Retry-After` (seconds) with a refusal that passes with time.
    pub retry_after_secs: Option<u32>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError::from(ErrorBody::new(code, message))
    }

    /// `rate_limited` (429) with `Retry-After: secs`.
    pub fn rate_limited(message: impl Into<String>, secs: u32) -> Self {
        ApiError {
            body: ErrorBody::new(ErrorCode::RateLimited, message),
            retry_after_secs: Some(secs.max(1)),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::BadRequest, message)
    }

    pub fn unauthorized() -> Self {
        ApiError::new(
            ErrorCode::Unauthorized,
            "missing, invalid or expired credentials",
        )
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::new(ErrorCode::NotFound, format!("no such {what}"))
    }

    pub fn internal() -> Self {
        ApiError::new(ErrorCode::Internal, "the server failed; try again")
    }

    pub fn code(&self) -> ErrorCode {
        self.body.code
    }
}

impl From<ErrorBody> for ApiError {
    fn from(e: ErrorBody) -> Self {
        ApiError {
            body: e,
            retry_after_secs: None,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "storage failed");
        ApiError::internal()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.body.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(ErrorEnvelope { error: self.body })).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}
