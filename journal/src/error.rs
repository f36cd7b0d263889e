//! Journal and commit errors, grouped by what the caller should do.

use thiserror::Error;

#[derive(Debug, Error, Clone)]
pub enum JournalError {
    /// A journal object failed verification. Never skipped, never half-applied.
    #[error("corrupt journal object {path} at byte {offset}: {detail}")]
    Corrupt {
        path: String,
        offset: u64,
        detail: String,
    },
    /// Another writer holds this journal (it created the object we tried to create).
    #[error("journal {journal} is fenced: sequence {sequence} was written by another writer (epoch {by_epoch})")]
    Fenced {
        journal: u32,
        sequence: u64,
        by_epoch: u64,
    },
    /// The store failed; the write did not happen (or its outcome is unknown).
    #[error("journal store error: {0}")]
    Store(String),
    #[error("journal {0} is not accepting writes after an earlier failure")]
    Unavailable(u32),
    /// The store did not answer in time: the object may or may not become durable.
    #[error("journal {journal}: the store did not confirm object {sequence} in time")]
    Unknown { journal: u32, sequence: u64 },
}

/// Why a commit did not happen. Every variant means: nothing of the transaction is durable,
/// except `Unknown`, whose outcome the caller cannot know.
#[derive(Debug, Error, Clone)]
pub enum CommitError {
    /// Another transaction committed a conflicting write first. Retrying is safe.
    #[error("{code}: {detail}")]
    Conflict { code: &'static str, detail: String },
    /// No journal could make the commit durable.
    #[error("commit failed: {0}")]
    Unavailable(String),
    /// Certainly not committed, for a reason a retry may not meet (e.g. the journal was
    /// taken over by another writer). Retrying is safe.
    #[error("commit failed, nothing was written: {0}")]
    Retry(String),
    /// A newer owner has taken over the store: nothing was written, and this process
    /// serves no more.
    #[error("{0}")]
    Fenced(String),
    /// The commit may or may not have become durable: the store did not answer in time.
    #[error("commit outcome unknown: {0}")]
    Unknown(String),
}

impl From<JournalError> for CommitError {
    fn from(e: JournalError) -> Self {
        match e {
            JournalError::Fenced { .. } => CommitError::Retry(e.to_string()),
            JournalError::Unknown { .. } => CommitError::Unknown(e.to_string()),
            e => CommitError::Unavailable(e.to_string()),
        }
    }
}
