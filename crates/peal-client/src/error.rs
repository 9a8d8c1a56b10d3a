//! What can go wrong, typed, with the `peal` exit code for each.

use peal_proto::{ErrorBody, ErrorCode};

#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached (refused, DNS, timeout, connection lost).
    #[error("server unreachable: {0}")]
    Unreachable(String),
    /// Sign-in failed or the token is no longer valid.
    #[error("authentication failed: {0}")]
    Unauthorized(String),
    /// The server refused the request with a typed error.
    #[error("{0}")]
    Refused(ErrorBody),
    /// The server answered something this SDK does not understand.
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl ClientError {
    /// The `peal` exit code: 3 unreachable, 4 authentication failed, 5 refused.
    pub fn exit_code(&self) -> i32 {
        match self {
            ClientError::Unreachable(_) => 3,
            ClientError::Unauthorized(_) => 4,
            ClientError::Refused(b) if b.code == ErrorCode::Unauthorized => 4,
            ClientError::Refused(_) => 5,
            ClientError::Protocol(_) => 5,
        }
    }

    /// The `{"code","message"}` the CLI prints for this error.
    pub fn body(&self) -> (String, String) {
        match self {
            ClientError::Unreachable(m) => ("unreachable".into(), m.clone()),
            ClientError::Unauthorized(m) => ("unauthorized".into(), m.clone()),
            ClientError::Refused(b) => (b.code.as_str().into(), b.message.clone()),
            ClientError::Protocol(m) => ("protocol".into(), m.clone()),
        }
    }

    /// The typed code when the server refused.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Refused(b) => Some(b.code),
            ClientError::Unauthorized(_) => Some(ErrorCode::Unauthorized),
            ClientError::Unreachable(_) | ClientError::Protocol(_) => None,
        }
    }
}
