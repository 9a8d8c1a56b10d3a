//! The public error codes. Every refusal a client can see maps to one of these,
//! once, here; internals never reach the wire.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A stable, public error code.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// No valid credentials or token.
    Unauthorized,
    /// No such user, group or call, or a call you are not part of (we don't confirm it exists).
    NotFound,
    /// You called yourself.
    CallingSelf,
    /// You are already in an ongoing call.
    CallerBusy,
    /// The call already has the maximum number of joined participants.
    CallFull,
    /// The call is not in a state that allows this (accept after cancel, end before answer, a second answer…).
    InvalidState,
    /// The request is malformed or out of range.
    BadRequest,
    /// Too many requests; slow down.
    RateLimited,
    /// Something failed on the server; the request may be retried.
    Internal,
    /// The invite code is unknown, expired, used up or revoked (the message says which).
    InviteInvalid,
    /// That user id is taken.
    UserExists,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::NotFound => "not_found",
            ErrorCode::CallingSelf => "calling_self",
            ErrorCode::CallerBusy => "caller_busy",
            ErrorCode::CallFull => "call_full",
            ErrorCode::InvalidState => "invalid_state",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Internal => "internal",
            ErrorCode::InviteInvalid => "invite_invalid",
            ErrorCode::UserExists => "user_exists",
        }
    }

    /// The HTTP status this code travels with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::Unauthorized => 401,
            ErrorCode::NotFound => 404,
            ErrorCode::CallingSelf => 400,
            ErrorCode::CallerBusy => 409,
            ErrorCode::CallFull => 409,
            ErrorCode::InvalidState => 409,
            ErrorCode::BadRequest => 400,
            ErrorCode::RateLimited => 429,
            ErrorCode::Internal => 500,
            ErrorCode::InviteInvalid => 410,
            ErrorCode::UserExists => 409,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `{"code": ..., "message": ...}`, the body inside `{"error": ...}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            code,
            message: message.into(),
        }
    }
}

/// The envelope every HTTP error response and every CLI error line uses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}
