//! Sequences: `CREATE SEQUENCE`, `nextval`, `currval`, `setval`, and the ones behind
//! `SERIAL`, `BIGSERIAL` and `GENERATED ... AS IDENTITY` columns.
//!
//! A sequence is a row of the sequence table ([`SEQUENCE_TABLE_ID`]) holding its definition
//! and the last value any node has reserved. A node hands values out of a block it reserved
//! by committing a higher last value: an ordinary transaction, adjudicated and journaled, so
//! two nodes (or journals) that reserve at once conflict and one retries with the other's
//! value, and a restart resumes after the last reserved block. No value is ever handed out
//! twice; values a node reserved but did not hand out before it stopped are skipped, as
//! PostgreSQL skips the values it pre-logged before a crash. `nextval` is not transactional
//! (a rollback does not give values back), as in PostgreSQL.

use arrow::datatypes::SchemaRef;
use serde::{Deserialize, Serialize};
use weft_engine::key::catalog_key;
use weft_engine::schema::DatabaseTables;
use weft_engine::types::SqlType;
use weft_engine::Timestamp;

use crate::catalog::db::Db;
use crate::catalog::sequence_blocks::Block;
use crate::catalog::txn::{Isolation, Txn};
use crate::error::{codes, SqlError, SqlResult};

/// Values a node reserves at a time (PostgreSQL pre-logs 32 values the same way).
pub const BLOCK: i64 = 32;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeqDef {
    pub name: String,
    pub oid: u32,
    pub ty: SqlType,
    pub increment: i64,
    pub start: i64,
    pub min: i64,
    pub max: i64,
    pub cycle: bool,
    /// The table and column whose default draws from it (SERIAL, IDENTITY, OWNED BY).
    pub owned_by: Option<(String, String)>,
    /// The last value reserved by any node; `None` before the first `nextval`.
    pub last: Option<i64>,
    /// The owning role (`None`: the bootstrap superuser).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The sequence's ACL in `aclitem` text form (`None`: the owner's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<Vec<String>>,
}

impl SeqDef {
    /// The value after the last one reserved: the start, a step on, or round again when
    /// the sequence cycles (2200H at its bound when it does not).
    pub fn after_last(&self) -> SqlResult<i64> {
        let inc = self.increment;
        let next = match self.last {
            None => Some(self.start),
            Some(l) => l.checked_add(inc),
        };
        match next.filter(|f| *f >= self.min && *f <= self.max) {
            Some(f) => Ok(f),
            None if self.cycle => Ok(if inc > 0 { self.min } else { self.max }),
            None => Err(SqlError::new(
                "2200H",
                format!(
                    "nextval: reached {} value of sequence \"{}\" ({})",
                    if inc > 0 { "maximum" } else { "minimum" },
                    self.name,
                    if inc > 0 { self.max } else { self.min }
                ),
            )),
        }
    }

    /// A sequence with PostgreSQL's defaults for its type and increment.
    pub fn new(name: String, oid: u32, ty: SqlType, increment: i64) -> SeqDef {
        let type_max = match ty {
            SqlType::SmallInt => i16::MAX as i64,
            SqlType::Integer => i32::MAX as i64,
            _ => i64::MAX,
        };
        let (min, max) = if increment > 0 {
            (1, type_max)
        } else {
            (-type_max - 1, -1)
        };
        SeqDef {
            name,
            oid,
            ty,
            increment,
            start: if increment > 0 { min } else { max },
            min,
            max,
            cycle: false,
            owned_by: None,
            last: None,
            owner: None,
            acl: None,
        }
    }
}

pub fn sequence_schema() -> SchemaRef {
    weft_engine::schema::catalog_schema()
}

/// The sequence a column's default draws from: `nextval('name')`.
pub fn default_sequence(default: &str) -> Option<&str> {
    default
        .trim()
        .strip_prefix("nextval('")?
        .strip_suffix("')")
        .filter(|n| !n.contains('\''))
}

/// Writes a sequence definition (or drops it) in a transaction.
pub fn put(db: &Db, txn: &mut Txn, name: &str, def: Option<&SeqDef>) -> SqlResult<()> {
    let table = txn.database.sequences;
    crate::catalog::systable::put(db, txn, table, seq_schema_key(name), name, def)
}

/// The key DDL on a sequence conflicts on (a prefix keeps it apart from table names).
fn seq_schema_key(name: &str) -> Vec<u8> {
    catalog_key(&format!("\u{0}seq:{name}"))
}

/// A sequence as of `read_ts`, seeing the transaction's own DDL.
pub async fn lookup(
    db: &Db,
    tables: DatabaseTables,
    txn: Option<&Txn>,
    read_ts: Timestamp,
    name: &str,
) -> SqlResult<Option<SeqDef>> {
    crate::catalog::systable::lookup(db, txn, tables.sequences, read_ts, name, "sequence").await
}

/// Every sequence as of `read_ts`, seeing the transaction's own DDL.
pub async fn list(
    db: &Db,
    tables: DatabaseTables,
    read_ts: Timestamp,
    overlay: Option<&weft_engine::provider::Overlay>,
) -> SqlResult<Vec<SeqDef>> {
    crate::catalog::systable::list(db, tables.sequences, read_ts, overlay, "sequence").await
}

fn undefined(name: &str) -> SqlError {
    SqlError::new(
        codes::UNDEFINED_TABLE,
        format!("relation \"{name}\" does not exist"),
    )
}

/// Commits a sequence's new state in a transaction of its own, read at `ts`. `Ok(false)`
/// when another node changed it since (the caller reads again and retries).
async fn commit_state(
    db: &Db,
    tables: DatabaseTables,
    ts: Timestamp,
    name: &str,
    def: &SeqDef,
) -> SqlResult<bool> {
    let mut txn = Txn::new(false, Isolation::RepeatableRead, false)
        .reading_at(ts)
        .in_database(tables);
    txn.snapshot(&*db.adjudicator, &*db.storage);
    put(db, &mut txn, name, Some(def))?;
    // Only the row conflicts: reserving values is not DDL.
    txn.schema_keys.clear();
    match db.adjudicator.commit(txn.into_commit_request()).await {
        Ok(_) => Ok(true),
        Err(e) => {
            let e: SqlError = e.into();
            if e.code == codes::SERIALIZATION_FAILURE {
                Ok(false)
            } else {
                Err(e)
            }
        }
    }
}

/// Where a sequence's state is read: the linearizable read point, or, after losing a
/// reservation to another commit, the last timestamp assigned. The read point leaves out
/// commits still in flight, among them the one that won, and a retry reading there would
/// lose again at once, until its attempts ran out; at the last assigned timestamp, the
/// storage read waits for the winner to be applied.
fn fresh_ts(db: &Db, lost: bool) -> Timestamp {
    let ts = db.adjudicator.read_ts();
    if lost {
        ts.max(db.adjudicator.last_assigned())
    } else {
        ts
    }
}

/// `want` values of a sequence, from this node's block, reserving more as needed.
pub async fn next_values(
    db: &Db,
    tables: DatabaseTables,
    name: &str,
    want: usize,
) -> SqlResult<Vec<i64>> {
    let mut out = Vec::with_capacity(want);
    let mut key: Option<(String, u32)> = None;
    let mut lost = false;
    for _attempt in 0..64 {
        if let Some(k) = &key {
            db.sequences.take(k, want, &mut out);
            if out.len() == want {
                return Ok(out);
            }
        }
        let ts = fresh_ts(db, lost);
        let Some(mut def) = lookup(db, tables, None, ts, name).await? else {
            return Err(undefined(name));
        };
        let k = (def.name.clone(), def.oid);
        if key.as_ref() != Some(&k) {
            key = Some(k.clone());
            db.sequences.take(&k, want, &mut out);
            if out.len() == want {
                return Ok(out);
            }
        }
        let inc = def.increment;
        let first = def.after_last()?;
        let count = BLOCK.max((want - out.len()) as i64);
        // The last value of the block, within the sequence's bounds.
        let span = (count - 1).saturating_mul(inc);
        let mut last = first.saturating_add(span);
        if inc > 0 {
            last = last.min(def.max);
        } else {
            last = last.max(def.min);
        }
        // Land on a value the increment reaches.
        last -= (last - first) % inc;
        def.last = Some(last);
        // On a conflict another node reserved first: read its value and go again.
        lost = !commit_state(db, tables, ts, name, &def).await?;
        if !lost {
            db.sequences
                .held
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(
                    k,
                    Block {
                        next: first,
                        remaining: ((last - first) / inc) as u64 + 1,
                        increment: inc,
                    },
                );
        }
    }
    Err(SqlError::new(
        codes::SERIALIZATION_FAILURE,
        format!(
            "could not reserve values of sequence \"{name}\": too many concurrent reservations"
        ),
    ))
}

/// `setval(name, value, is_called)`: the next `nextval` returns `value` (+ increment when
/// `is_called`). Committed at once, like nextval; this node's block is dropped.
pub async fn set_value(
    db: &Db,
    tables: DatabaseTables,
    name: &str,
    value: i64,
    is_called: bool,
) -> SqlResult<i64> {
    let mut lost = false;
    for _attempt in 0..64 {
        let ts = fresh_ts(db, lost);
        let Some(mut def) = lookup(db, tables, None, ts, name).await? else {
            return Err(undefined(name));
        };
        if value < def.min || value > def.max {
            return Err(SqlError::new(
                "22003",
                format!(
                    "setval: value {value} is out of bounds for sequence \"{name}\" ({}..{})",
                    def.min, def.max
                ),
            ));
        }
        def.last = if is_called {
            Some(value)
        } else {
            value.checked_sub(def.increment)
        };
        if commit_state(db, tables, ts, name, &def).await? {
            db.sequences.forget(name);
            return Ok(value);
        }
        lost = true;
    }
    Err(SqlError::new(
        codes::SERIALIZATION_FAILURE,
        format!("could not set sequence \"{name}\": too many concurrent reservations"),
    ))
}

/// Drops this node's blocks of a sequence (after DROP, TRUNCATE ... RESTART IDENTITY).
pub fn forget(db: &Db, name: &str) {
    db.sequences.forget(name);
}

/// Reads a sequence option's integer value.
pub fn option_value(e: &datafusion::sql::sqlparser::ast::Expr) -> SqlResult<i64> {
    use datafusion::sql::sqlparser::ast::{Expr, UnaryOperator, Value};
    match e {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n
                .parse()
                .map_err(|_| SqlError::syntax(format!("invalid sequence option value {n}"))),
            other => Err(SqlError::syntax(format!(
                "invalid sequence option value {other}"
            ))),
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => Ok(-option_value(expr)?),
        Expr::UnaryOp {
            op: UnaryOperator::Plus,
            expr,
        } => option_value(expr),
        other => Err(SqlError::syntax(format!(
            "invalid sequence option value {other}"
        ))),
    }
}

/// Applies CREATE SEQUENCE's options to a definition with the type's defaults.
pub fn apply_options(
    def: &mut SeqDef,
    opts: &[datafusion::sql::sqlparser::ast::SequenceOptions],
) -> SqlResult<()> {
    use datafusion::sql::sqlparser::ast::SequenceOptions as O;
    let mut increment = def.increment;
    let (mut min, mut max, mut start) = (None, None, None);
    for o in opts {
        match o {
            O::IncrementBy(e, _) => increment = option_value(e)?,
            O::MinValue(e) => min = e.as_ref().map(option_value).transpose()?,
            O::MaxValue(e) => max = e.as_ref().map(option_value).transpose()?,
            O::StartWith(e, _) => start = Some(option_value(e)?),
            O::Cache(e) => {
                if option_value(e)? < 1 {
                    return Err(SqlError::new(
                        codes::INVALID_PARAMETER_VALUE,
                        "CACHE must be positive",
                    ));
                }
            }
            O::Cycle(c) => def.cycle = *c,
        }
    }
    if increment == 0 {
        return Err(SqlError::new(
            codes::INVALID_PARAMETER_VALUE,
            "INCREMENT must not be zero",
        ));
    }
    let base = SeqDef::new(def.name.clone(), def.oid, def.ty.clone(), increment);
    def.increment = increment;
    def.min = min.unwrap_or(base.min);
    def.max = max.unwrap_or(base.max);
    if def.min >= def.max {
        return Err(SqlError::new(
            codes::INVALID_PARAMETER_VALUE,
            format!(
                "MINVALUE ({}) must be less than MAXVALUE ({})",
                def.min, def.max
            ),
        ));
    }
    def.start = start.unwrap_or(if increment > 0 { def.min } else { def.max });
    if def.start < def.min || def.start > def.max {
        return Err(SqlError::new(
            codes::INVALID_PARAMETER_VALUE,
            format!(
                "START value ({}) cannot be outside the sequence's bounds ({}..{})",
                def.start, def.min, def.max
            ),
        ));
    }
    Ok(())
}
