//! The PostgreSQL wire protocol: the listener, startup and authentication, the simple and
//! extended query handlers, cancel requests, the COPY sub-protocol, deferred flushing and
//! the answer encoders (Arrow to PostgreSQL text and binary). The only layer that imports
//! `pgwire`.

pub mod auth;
pub mod deferred;
pub mod encode;
pub mod server;
pub mod tls;
