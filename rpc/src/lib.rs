//! # weft-rpc
//!
//! weft's components in separate processes: a frontend (pgwire and DataFusion) whose
//! storage and adjudicator run in another process, reached over Arrow Flight on tonic
//! (gRPC).
//!
//! - [`server`]: a process's storage node and adjudicator behind a Flight service.
//! - [`client`]: [`client::RemoteStorage`] and [`client::RemoteCommits`], the frontend's
//!   side of the same traits the in-process components answer
//!   ([`weft_engine::service::StorageService`], [`weft_journal::CommitService`]).
//! - [`peer`]: the connection to the serving process, one call over it, and errors rebuilt.
//! - [`scan`]: a scan run by the remote storage node as a DataFusion plan, its batches
//!   streamed.
//! - [`wire`]: the messages (prost), rows (Arrow IPC) and errors that travel.
//! - [`written`]: catalog write timestamps remembered per read timestamp, so that one call
//!   answers every catalog check of a statement.
//!
//! Read timestamps of a remote frontend come from its own clock's latest bound; the
//! serving process makes every later commit's timestamp greater than any timestamp read
//! at, and a remote commit is acknowledged only after commit wait (see
//! docs/decisions.md, "Frontends in other processes").

use std::time::Duration;

pub mod client;
pub mod peer;
pub mod scan;
pub mod server;
pub mod wire;
pub mod written;

/// The largest message either side accepts (a commit's rows, a reply's rows, one batch of
/// a scan).
pub const MESSAGE_BYTES_MAX: usize = 256 << 20;

/// Concurrent calls on one frontend's connection.
pub const STREAMS_PER_CONNECTION_MAX: u32 = 1024;

/// How far ahead of the serving process's clock a read timestamp may be.
pub const READ_AHEAD_MAX: Duration = Duration::from_secs(1);
