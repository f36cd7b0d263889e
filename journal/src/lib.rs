//! # weft-journal
//!
//! Where a commit becomes durable. The pieces:
//!
//! - [`format`]: the journal object format: one object per group-commit batch, a checksummed
//!   header, length- and CRC-framed records (rows as Arrow IPC), a checksummed footer.
//! - [`writer`]: the group-commit writer of one journal: every commit waiting when a write
//!   starts goes into the same object; commits are acknowledged only once it is durable.
//! - [`reader`]: reads and verifies a journal's objects, for recovery and inspection.
//! - [`conflict`]: the conflict table the adjudicator checks commits against.
//! - [`adjudicator`]: optimistic concurrency control (first committer wins), commit
//!   timestamps, routing of each commit to one journal, and journal watermarks.
//!
//! Layout: `clusters/<cluster>/journal/<journal-id>/<sequence:020>.wj`.

pub mod adjudicator;
pub mod conflict;
pub mod error;
pub mod format;
pub mod reader;
pub mod sequencer;
pub mod writer;

pub use adjudicator::{Adjudicator, AdjudicatorConfig, CommitRequest};
pub use error::{CommitError, JournalError};
pub use sequencer::{JournalEvent, Sequencer};

use object_store::path::Path;

/// The object-store prefix of one journal.
pub fn journal_prefix(cluster: &str, journal_id: u32) -> Path {
    Path::from(format!("clusters/{cluster}/journal/{journal_id:04}"))
}

/// The path of one journal object.
pub fn object_path(cluster: &str, journal_id: u32, sequence: u64) -> Path {
    journal_prefix(cluster, journal_id).join(format!("{sequence:020}.wj"))
}
