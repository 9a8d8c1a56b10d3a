//! Peal's wire types and the pure call state machine.
//!
//! Nothing in this crate reads a clock, touches a socket or a database: time
//! comes in as [`Millis`], and every decision comes out as data
//! ([`fsm::Effect`]s) for the server to carry out.
//!
//! # Layout
//!
//! - [`time`]: [`Millis`], milliseconds since the Unix epoch, and its RFC 3339 form.
//! - [`ids`]: the identifier newtypes (users, groups, devices, call sessions).
//! - [`wire`]: what crosses the network: the call object, events, frames, requests, history rows.
//! - [`error`]: the closed set of public error codes.
//! - [`fsm`]: one call's state machine, `step(call, input, now) -> (call, effects)`.
//! - [`exchange`]: every live call at once: busy, glare, caller-busy, ring timers.
//! - [`limits`]: the named limits and a token bucket that takes time as an input.

pub mod error;
pub mod exchange;
pub mod fsm;
pub mod ids;
pub mod limits;
pub mod time;
pub mod wire;

pub use error::{ErrorBody, ErrorCode};
pub use ids::{DeviceId, GroupId, SessionId, UserId};
pub use time::Millis;
