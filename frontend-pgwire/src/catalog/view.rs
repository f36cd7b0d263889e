//! What the statement being planned reads: its timestamp and its transaction's writes.

use std::collections::HashMap;
use std::sync::Arc;

use weft_engine::provider::{Overlay, ReadLog};
use weft_engine::Timestamp;

/// What the statement being planned reads: its timestamp and its transaction's writes.
#[derive(Debug, Clone, Default)]
pub struct View {
    pub read_ts: Timestamp,
    /// The database the statement works in.
    pub tables: weft_engine::schema::DatabaseTables,
    pub overlays: HashMap<u64, Arc<Overlay>>,
    /// The table that an UPDATE or DELETE targets: exposed with its hidden key column.
    pub dml_target: Option<String>,
    /// Where scans record what they read (SERIALIZABLE transactions only).
    pub reads: Option<Arc<ReadLog>>,
}
