//! The PostgreSQL wire protocol: the listener, startup and authentication, the simple and
//! extended query handlers, cancel requests, the COPY sub-protocol, deferred flushing and
//! the answer encoders (Arrow to PostgreSQL text and binary). The only layer that imports
//! `pgwire`.
//!
//! - [`server`]: the listener; one task and one session per connection; [`frame_guard`]:
//!   message sizes bounded as their headers arrive;
//! - [`handlers`]: one connection's handlers over its session;
//! - [`startup`], [`auth`], [`scram`], [`tls`]: startup, SCRAM, tokens and TLS;
//! - [`simple`], [`extended`], [`execute`], [`copy`], [`cancel`]: the protocol's flows;
//! - [`encode`]: Arrow results as PostgreSQL rows; [`conform`]: results in their described
//!   types; [`deferred`]: batched flushing.

pub mod auth;
pub mod cancel;
pub mod conform;
pub mod connection;
pub mod copy;
pub mod decode_panics;
pub mod deferred;
pub mod encode;
pub mod errors;
pub mod execute;
pub mod extended;
pub mod frame_guard;
pub mod handlers;
pub mod messages;
pub mod scram;
pub mod server;
pub mod simple;
pub mod startup;
pub mod tls;
