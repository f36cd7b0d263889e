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
    #[error("journal {journal} is fenced: sequence {sequence} was written by another writer")]
    Fenced { journal: u32, sequence: u64 },
    /// The store failed; the write did not happen (or its outcome is unknown).
    #[error("journal store error: {0}")]
    Store(String),
    #[error("journal {0} is not accepting writes after an earlier failure")]
    Unavailable(u32),
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
}

impl From<JournalError> for CommitError {
    fn from(e: JournalError) -> Self {
        CommitError::Unavailable(e.to_string())
    }
}
