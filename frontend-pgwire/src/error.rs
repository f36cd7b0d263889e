//! SQL errors with PostgreSQL SQLSTATEs, and the mapping from DataFusion's and weft's own
//! errors to them.

use datafusion::error::DataFusionError;
use weft_engine::EngineError;
use weft_journal::CommitError;

#[derive(Debug, Clone)]
pub struct SqlError {
    pub code: &'static str,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// Ends the connection (severity FATAL), as PostgreSQL does for admin shutdown.
    pub fatal: bool,
}

pub type SqlResult<T> = Result<T, SqlError>;

impl SqlError {
    pub fn new(code: &'static str, message: impl Into<String>) -> SqlError {
        SqlError {
            code,
            message: message.into(),
            detail: None,
            hint: None,
            fatal: false,
        }
    }
    pub fn fatal(mut self) -> Self {
        self.fatal = true;
        self
    }
    pub fn with_detail(mut self, d: impl Into<String>) -> Self {
        self.detail = Some(d.into());
        self
    }
    pub fn with_hint(mut self, h: impl Into<String>) -> Self {
        self.hint = Some(h.into());
        self
    }
    pub fn unsupported(what: impl Into<String>) -> SqlError {
        SqlError::new(codes::FEATURE_NOT_SUPPORTED, what)
    }
    pub fn syntax(msg: impl Into<String>) -> SqlError {
        SqlError::new(codes::SYNTAX_ERROR, msg)
    }
    pub fn internal(msg: impl Into<String>) -> SqlError {
        SqlError::new(codes::INTERNAL_ERROR, msg)
    }
}

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

pub mod codes {
    pub const SUCCESSFUL_COMPLETION: &str = "00000";
    pub const WARNING: &str = "01000";
    pub const ACTIVE_SQL_TRANSACTION: &str = "25001";
    pub const NO_ACTIVE_SQL_TRANSACTION: &str = "25P01";
    pub const CANT_CHANGE_RUNTIME_PARAM: &str = "55P02";
    pub const IN_FAILED_SQL_TRANSACTION: &str = "25P02";
    pub const READ_ONLY_SQL_TRANSACTION: &str = "25006";
    pub const UNIQUE_VIOLATION: &str = "23505";
    pub const NOT_NULL_VIOLATION: &str = "23502";
    pub const CHECK_VIOLATION: &str = "23514";
    pub const FOREIGN_KEY_VIOLATION: &str = "23503";
    pub const UNDEFINED_INDEX_OR_OBJECT: &str = "42704";
    pub const WRONG_OBJECT_TYPE: &str = "42809";
    pub const DEPENDENT_OBJECTS_STILL_EXIST: &str = "2BP01";
    pub const UNDEFINED_TABLE: &str = "42P01";
    pub const INVALID_CATALOG_NAME: &str = "3D000";
    pub const DUPLICATE_DATABASE: &str = "42P04";
    pub const OBJECT_IN_USE: &str = "55006";
    pub const DUPLICATE_SCHEMA: &str = "42P06";
    pub const INVALID_SCHEMA_NAME: &str = "3F000";
    pub const UNDEFINED_COLUMN: &str = "42703";
    pub const UNDEFINED_OBJECT: &str = "42704";
    pub const UNDEFINED_FUNCTION: &str = "42883";
    pub const DUPLICATE_TABLE: &str = "42P07";
    pub const DUPLICATE_COLUMN: &str = "42701";
    pub const INVALID_TABLE_DEFINITION: &str = "42P16";
    pub const INVALID_NAME: &str = "42602";
    pub const AMBIGUOUS_COLUMN: &str = "42702";
    pub const SYNTAX_ERROR: &str = "42601";
    pub const SYNTAX_OR_ACCESS: &str = "42000";
    pub const DATATYPE_MISMATCH: &str = "42804";
    pub const INVALID_TEXT_REPRESENTATION: &str = "22P02";
    pub const OBJECT_NOT_IN_PREREQUISITE_STATE: &str = "55000";
    pub const DIVISION_BY_ZERO: &str = "22012";
    pub const NUMERIC_OUT_OF_RANGE: &str = "22003";
    pub const STRING_DATA_RIGHT_TRUNCATION: &str = "22001";
    pub const INVALID_DATETIME_FORMAT: &str = "22007";
    pub const DATETIME_FIELD_OVERFLOW: &str = "22008";
    pub const DATA_EXCEPTION: &str = "22000";
    pub const CARDINALITY_VIOLATION: &str = "21000";
    pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
    pub const SERIALIZATION_FAILURE: &str = "40001";
    pub const PROGRAM_LIMIT_EXCEEDED: &str = "54000";
    pub const QUERY_CANCELED: &str = "57014";
    pub const PROTOCOL_VIOLATION: &str = "08P01";
    pub const CONNECTION_FAILURE: &str = "08006";
    pub const ADMIN_SHUTDOWN: &str = "57P01";
    pub const TOO_MANY_CONNECTIONS: &str = "53300";
    pub const OUT_OF_MEMORY: &str = "53200";
    pub const INVALID_AUTHORIZATION: &str = "28000";
    pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
    pub const IDLE_IN_TRANSACTION_SESSION_TIMEOUT: &str = "25P03";
    pub const IO_ERROR: &str = "58030";
    pub const TRANSACTION_RESOLUTION_UNKNOWN: &str = "08007";
    pub const SYSTEM_ERROR: &str = "58000";
    pub const INTERNAL_ERROR: &str = "XX000";
    pub const INVALID_PARAMETER_VALUE: &str = "22023";
    pub const INVALID_SQL_STATEMENT_NAME: &str = "26000";
    pub const DUPLICATE_PREPARED_STATEMENT: &str = "42P05";
    pub const UNDEFINED_PARAMETER: &str = "42704";
    pub const SNAPSHOT_TOO_OLD: &str = "72000";
}

use codes::*;

impl From<EngineError> for SqlError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Corrupt { .. } => SqlError::new("XX001", e.to_string()),
            EngineError::Store { .. } => SqlError::new(IO_ERROR, e.to_string()),
            EngineError::ReadTimeout { .. } => SqlError::new(SYSTEM_ERROR, e.to_string()),
            EngineError::InvalidValue(m) => SqlError::new(DATA_EXCEPTION, m),
            EngineError::SnapshotTooOld { .. } => SqlError::new(SNAPSHOT_TOO_OLD, e.to_string())
                .with_hint("read at a later timestamp (see weft.as_of and --version-retention)"),
            EngineError::Fenced { .. } => fenced(e.to_string()),
            EngineError::OwnershipUnconfirmed { .. } => SqlError::new(SYSTEM_ERROR, e.to_string())
                .with_hint("the object store is not answering; retry once it is"),
            EngineError::Unavailable(_) => SqlError::new(CONNECTION_FAILURE, e.to_string())
                .with_hint("the process that serves storage is not answering; retry once it is"),
            EngineError::DataFusion(d) => d.into(),
            other => SqlError::internal(other.to_string()),
        }
    }
}

impl From<CommitError> for SqlError {
    fn from(e: CommitError) -> Self {
        match e {
            CommitError::Conflict { code, detail } => SqlError::new(
                SERIALIZATION_FAILURE,
                format!("change conflicts with another transaction, please retry: ({code})"),
            )
            .with_detail(detail)
            .with_hint("retry the transaction"),
            CommitError::Unavailable(m) => SqlError::new(IO_ERROR, format!("commit failed: {m}"))
                .with_detail("the transaction was not committed"),
            CommitError::Retry(m) => SqlError::new(
                SERIALIZATION_FAILURE,
                format!("could not commit, please retry: {m}"),
            )
            .with_detail("the transaction was not committed")
            .with_hint("retry the transaction"),
            CommitError::Fenced(m) => fenced(m),
            CommitError::Unknown(m) => SqlError::new(
                TRANSACTION_RESOLUTION_UNKNOWN,
                format!("commit outcome unknown: {m}"),
            )
            .with_detail("the transaction may or may not have committed; check before retrying"),
        }
    }
}

impl From<DataFusionError> for SqlError {
    fn from(e: DataFusionError) -> Self {
        map_datafusion(e)
    }
}

/// A SQL type weft does not have is 0A000; a type modifier out of range 22023.
impl From<weft_engine::TypeError> for SqlError {
    fn from(e: weft_engine::TypeError) -> Self {
        match e {
            weft_engine::TypeError::Unsupported(m) => SqlError::unsupported(m),
            weft_engine::TypeError::InvalidModifier(m) => SqlError::new(INVALID_PARAMETER_VALUE, m),
        }
    }
}

/// A `SqlError` raised inside DataFusion (a weft function, rule or provider) travels as
/// DataFusion's external error and comes out unchanged: its SQLSTATE is decided where it
/// is raised.
impl From<SqlError> for DataFusionError {
    fn from(e: SqlError) -> Self {
        DataFusionError::External(Box::new(e))
    }
}

fn strip_prefixes(mut s: &str) -> &str {
    for p in [
        "Error during planning: ",
        "Execution error: ",
        "Optimizer rule ",
        "This feature is not implemented: ",
        "Arrow error: ",
        "Schema error: ",
        "Invalid argument error: ",
        "Cast error: ",
        "Compute error: ",
        "External error: ",
        "SQL error: ",
        "ParserError(\"",
    ] {
        if let Some(rest) = s.strip_prefix(p) {
            s = rest;
        }
    }
    s.trim_end_matches("\")")
}

/// DataFusion's own errors that carry only a message (it reports most semantic errors as
/// `Plan` or `Execution` strings): the SQLSTATE for each, by words the message holds (every
/// word of one group). weft's own errors never come through here: they travel as
/// `DataFusionError::External(SqlError)`.
const DATAFUSION_MESSAGES: &[(&str, &[&[&str]])] = &[
    (
        DIVISION_BY_ZERO,
        &[&["divide by zero"], &["division by zero"]],
    ),
    (
        NUMERIC_OUT_OF_RANGE,
        &[&["overflow"], &["out of range"], &["too large to store"]],
    ),
    (
        INVALID_TEXT_REPRESENTATION,
        &[
            &["cannot cast string"],
            &["cannot parse"],
            &["error parsing"],
            &["invalid input syntax"],
            &["cannot cast value"],
        ],
    ),
    (
        DATATYPE_MISMATCH,
        &[
            &["cannot automatically convert"],
            &["cannot coerce"],
            &["unsupported cast"],
            &["does not support", "type"],
            &["cannot infer common"],
            &["no function matches"],
            &["types are incompatible"],
        ],
    ),
    (
        UNDEFINED_FUNCTION,
        &[&["invalid function"], &["function '", "not found"]],
    ),
];

/// Maps DataFusion's errors to SQLSTATEs: weft's own errors (external) as raised; then by
/// DataFusion's and Arrow's error kinds; then, for what DataFusion raises only as a message,
/// by [`DATAFUSION_MESSAGES`].
pub fn map_datafusion(e: DataFusionError) -> SqlError {
    use datafusion::common::SchemaError;
    let root = e.find_root();
    if let DataFusionError::External(inner) = root {
        if let Some(engine) = inner.downcast_ref::<EngineError>() {
            return SqlError::from(clone_engine(engine));
        }
        if let Some(sql) = inner.downcast_ref::<SqlError>() {
            return sql.clone();
        }
    }
    let text = root.to_string();
    let msg = strip_prefixes(&text).to_string();
    match root {
        DataFusionError::SQL(..) => return SqlError::syntax(msg),
        DataFusionError::NotImplemented(m) => return SqlError::unsupported(m.clone()),
        DataFusionError::SchemaError(se, _) => match se.as_ref() {
            SchemaError::FieldNotFound { field, .. } => {
                return SqlError::new(
                    UNDEFINED_COLUMN,
                    format!("column \"{}\" does not exist", field.name),
                )
            }
            SchemaError::AmbiguousReference { field } => {
                return SqlError::new(
                    AMBIGUOUS_COLUMN,
                    format!("column reference \"{}\" is ambiguous", field.name),
                )
            }
            _ => return SqlError::new(SYNTAX_OR_ACCESS, msg),
        },
        _ => {}
    }
    // Arrow's kernels say what went wrong by kind.
    if let DataFusionError::ArrowError(ae, _) = root {
        use datafusion::arrow::error::ArrowError;
        match ae.as_ref() {
            ArrowError::DivideByZero => return SqlError::new(DIVISION_BY_ZERO, "division by zero"),
            ArrowError::ArithmeticOverflow(_) => return SqlError::new(NUMERIC_OUT_OF_RANGE, msg),
            ArrowError::CastError(m) | ArrowError::ParseError(m) => {
                if let Some(e) = cast_error(strip_prefixes(m)) {
                    return e;
                }
            }
            _ => {}
        }
    }
    if let Some(e) = cast_error(&msg) {
        return e;
    }
    if let Some(t) = table_not_found(&msg) {
        return SqlError::new(UNDEFINED_TABLE, format!("relation \"{t}\" does not exist"));
    }
    // What DataFusion itself raises only as a plan or execution message: no kind to match,
    // so its words are matched, in one table.
    let lower = msg.to_lowercase();
    for (code, any_of) in DATAFUSION_MESSAGES {
        if any_of
            .iter()
            .any(|words| words.iter().all(|w| lower.contains(w)))
        {
            return if *code == DIVISION_BY_ZERO {
                SqlError::new(DIVISION_BY_ZERO, "division by zero")
            } else {
                SqlError::new(code, msg)
            };
        }
    }
    match root {
        DataFusionError::Plan(_) => SqlError::new(SYNTAX_OR_ACCESS, msg),
        DataFusionError::ArrowError(..) | DataFusionError::Execution(_) => {
            SqlError::new(DATA_EXCEPTION, msg)
        }
        // The query's share of memory, or the node's pool, is used up (crate::catalog::memory).
        DataFusionError::ResourcesExhausted(_) => SqlError::new(OUT_OF_MEMORY, "out of memory")
            .with_detail(msg)
            .with_hint(
                "the query needs more memory than --query-memory-max or what is left of \
                 --memory-max; ask for fewer rows at once, or raise the limits",
            ),
        _ => SqlError::internal(msg),
    }
}

/// PostgreSQL's name of an Arrow type in input errors.
fn pg_type_name(arrow: &str) -> Option<&'static str> {
    Some(match arrow {
        "Int16" => "smallint",
        "Int32" => "integer",
        "Int64" => "bigint",
        "Float32" => "real",
        "Float64" => "double precision",
        "Boolean" => "boolean",
        "Date32" => "date",
        t if t.starts_with("Decimal") => "numeric",
        t if t.starts_with("Timestamp(") && t.contains(',') && !t.contains("None") => {
            "timestamp with time zone"
        }
        t if t.starts_with("Timestamp(") => "timestamp without time zone",
        t if t.starts_with("Time64") => "time without time zone",
        t if t.starts_with("Interval") => "interval",
        _ => return None,
    })
}

/// Arrow's cast failures, as PostgreSQL reports the same input: an integer out of its
/// type's range is 22003, text that is not a value of the type 22P02 (22007 for dates and
/// times), a date whose fields are out of range 22008.
fn cast_error(msg: &str) -> Option<SqlError> {
    if let Some(rest) = msg.strip_prefix("Can't cast value ") {
        let (_, ty) = rest.split_once(" to type ")?;
        let name = pg_type_name(ty.trim())?;
        return Some(SqlError::new(
            NUMERIC_OUT_OF_RANGE,
            format!("{name} out of range"),
        ));
    }
    let rest = msg
        .strip_prefix("Cannot cast string '")
        .or_else(|| msg.strip_prefix("Cannot cast value '"))?;
    let (value, ty) = rest.rsplit_once("' to value of ")?;
    let name = pg_type_name(ty.trim_end_matches(" type").trim())?;
    let datetime = name.starts_with("date") || name.starts_with("time");
    if datetime {
        let fields: Vec<&str> = value.trim().split(['-', ' ', 'T', ':']).collect();
        let numeric_date = fields.len() >= 3
            && fields[..3]
                .iter()
                .all(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()));
        if numeric_date {
            return Some(SqlError::new(
                DATETIME_FIELD_OVERFLOW,
                format!("date/time field value out of range: \"{value}\""),
            ));
        }
    }
    Some(SqlError::new(
        if datetime {
            INVALID_DATETIME_FORMAT
        } else {
            INVALID_TEXT_REPRESENTATION
        },
        format!("invalid input syntax for type {name}: \"{value}\""),
    ))
}

fn table_not_found(msg: &str) -> Option<String> {
    // "table 'weft.public.foo' not found"
    let start = msg.find("table '")? + 7;
    let rest = &msg[start..];
    let end = rest.find('\'')?;
    if !rest[end..].starts_with("' not found") {
        return None;
    }
    Some(rest[..end].rsplit('.').next().unwrap_or("").to_string())
}

/// A fenced process ends every session (FATAL 57P01, admin_shutdown): a newer owner
/// serves the store now, and clients reconnect to it.
fn fenced(message: String) -> SqlError {
    SqlError::new(ADMIN_SHUTDOWN, format!("terminating connection: {message}"))
        .with_detail("the transaction, if any, was not committed")
        .with_hint("reconnect to the process that owns the store now")
        .fatal()
}

fn clone_engine(e: &EngineError) -> EngineError {
    match e {
        EngineError::Fenced {
            epoch,
            by_epoch,
            detail,
        } => EngineError::Fenced {
            epoch: *epoch,
            by_epoch: *by_epoch,
            detail: detail.clone(),
        },
        EngineError::Corrupt { path, detail } => EngineError::Corrupt {
            path: path.clone(),
            detail: detail.clone(),
        },
        EngineError::ReadTimeout {
            wanted,
            applied,
            waited_ms,
        } => EngineError::ReadTimeout {
            wanted: *wanted,
            applied: *applied,
            waited_ms: *waited_ms,
        },
        EngineError::InvalidValue(m) => EngineError::InvalidValue(m.clone()),
        EngineError::Unavailable(m) => EngineError::Unavailable(m.clone()),
        EngineError::SnapshotTooOld { read_ts, horizon } => EngineError::SnapshotTooOld {
            read_ts: *read_ts,
            horizon: *horizon,
        },
        other => EngineError::Internal(other.to_string()),
    }
}

impl std::error::Error for SqlError {}
