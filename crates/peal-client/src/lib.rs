//! The Peal Rust SDK: call signaling with the seed SDK's listener API, a
//! `Stream` of typed events, reconnect with jittered backoff, and resume.
//!
//! ```no_run
//! # async fn demo() -> Result<(), peal_client::ClientError> {
//! use peal_client::{Call, CallType, ClientConfig, PealClient, ReceiverType};
//! let client = PealClient::connect(ClientConfig::new("http://127.0.0.1:7300", "alice", "peal", "laptop")).await?;
//! let call = client.initiate_call(Call::new("bob", ReceiverType::User, CallType::Video)).await?;
//! client.cancel_call(&call.session_id).await?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! - [`client`]: [`PealClient`]: sign-in, the call actions, history, contacts.
//! - [`listener`]: [`CallListener`] (the five callbacks) and [`ClientEvent`]s.
//! - [`stream`]: the event socket task: catch-up, heartbeat watch, reconnect.
//! - [`resume`]: pure rules for catching up: collapsing a replay, reconciling a snapshot.
//! - [`backoff`]: jittered exponential backoff. [`tls`]: which servers we trust.
//! - [`error`]: [`ClientError`] and the CLI exit code each maps to.

pub mod backoff;
pub mod client;
pub mod error;
pub mod listener;
pub mod resume;
pub mod stream;
pub mod tls;

pub use client::{Call, ClientConfig, PealClient};
pub use error::ClientError;
pub use listener::{CallListener, ClientEvent, ConnectionState, EventStream};
pub use peal_proto::wire::{
    CallInfo, CallType, DeviceInfo, Event, EventKind, Reason, ReceiverType, RejectStatus, Status,
};
pub use peal_proto::{DeviceId, ErrorBody, ErrorCode, SessionId};
