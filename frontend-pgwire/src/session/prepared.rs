//! SQL-level prepared statements: `PREPARE name [(types)] AS statement`, `EXECUTE
//! name(args)` and `DEALLOCATE [PREPARE] name | ALL`.
//!
//! A statement prepared in SQL belongs to the session, as in PostgreSQL. EXECUTE
//! evaluates its arguments as a `SELECT` of them (so any constant expression works), casts
//! each to the parameter's type (declared, or inferred from the statement as a protocol
//! Parse infers it) and runs the statement with them as the protocol's Bind would.
//!
//! Statements prepared through the protocol (Parse) live in the connection's store, which
//! SQL does not reach: `DEALLOCATE` of a name that SQL did not prepare succeeds without
//! effect (psycopg 3 deallocates its protocol statements this way), and EXECUTE cannot run
//! them.

use std::collections::HashMap;

use arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::ParamValues;
use datafusion::scalar::ScalarValue;
use datafusion::sql::sqlparser::ast::{self, Statement};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::error::{codes, SqlError, SqlResult};

/// The most statements one session may prepare in SQL.
pub const PREPARED_MAX: usize = 10_000;

/// A statement prepared in SQL.
pub struct SqlPrepared {
    pub stmt: Statement,
    /// Each parameter's type: declared in PREPARE, else inferred.
    pub param_types: Vec<Option<DataType>>,
    pub schema: Option<SchemaRef>,
}

/// The session's SQL-prepared statements, by name.
pub type Prepared = HashMap<String, SqlPrepared>;

pub fn does_not_exist(name: &str) -> SqlError {
    SqlError::new(
        codes::INVALID_SQL_STATEMENT_NAME,
        format!("prepared statement \"{name}\" does not exist"),
    )
}

/// Whether PostgreSQL lets `stmt` be prepared (SELECT, VALUES, INSERT, UPDATE, DELETE).
pub fn preparable(stmt: &Statement) -> SqlResult<()> {
    match stmt {
        Statement::Query(_)
        | Statement::Insert(_)
        | Statement::Update { .. }
        | Statement::Delete(_) => Ok(()),
        other => Err(SqlError::syntax(format!(
            "syntax error: {} cannot be prepared",
            other
                .to_string()
                .split_whitespace()
                .next()
                .unwrap_or("this")
        ))),
    }
}

/// The parameter types: those declared, then any the statement's own inference found for
/// the rest.
pub fn param_types(
    name: &str,
    declared: &[ast::DataType],
    inferred: Vec<Option<DataType>>,
) -> SqlResult<Vec<Option<DataType>>> {
    let mut out = Vec::with_capacity(declared.len().max(inferred.len()));
    for (i, d) in declared.iter().enumerate() {
        let ty = weft_engine::SqlType::from_ast(d).map_err(|e| {
            SqlError::new(
                codes::UNDEFINED_OBJECT,
                format!("type of parameter {} of \"{name}\": {e}", i + 1),
            )
        })?;
        out.push(Some(ty.arrow_type()));
    }
    for t in inferred.into_iter().skip(out.len()) {
        out.push(t);
    }
    Ok(out)
}

/// `SELECT args...`: the query EXECUTE evaluates its arguments with.
pub fn arguments_query(args: &[ast::Expr]) -> SqlResult<Statement> {
    let list: Vec<String> = args.iter().map(|a| format!("({a})")).collect();
    let sql = format!("SELECT {}", list.join(", "));
    let mut stmts = Parser::parse_sql(&PostgreSqlDialect {}, &sql)
        .map_err(|e| SqlError::syntax(e.to_string()))?;
    stmts
        .pop()
        .ok_or_else(|| SqlError::internal("EXECUTE's arguments parse to no statement"))
}

/// The values of the one row [`arguments_query`] returns.
pub fn first_row(batches: &[arrow::array::RecordBatch]) -> SqlResult<Vec<ScalarValue>> {
    let batch = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .ok_or_else(|| SqlError::internal("EXECUTE's arguments gave no row"))?;
    (0..batch.num_columns())
        .map(|c| ScalarValue::try_from_array(batch.column(c), 0))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SqlError::internal(e.to_string()))
}

/// The parameters of an EXECUTE of `p`: `values`, each cast to its parameter's type.
pub fn bind(name: &str, p: &SqlPrepared, values: Vec<ScalarValue>) -> SqlResult<ParamValues> {
    if values.len() != p.param_types.len() {
        return Err(SqlError::syntax(format!(
            "wrong number of parameters for prepared statement \"{name}\""
        ))
        .with_detail(format!(
            "Expected {} parameters but got {}.",
            p.param_types.len(),
            values.len()
        )));
    }
    let bound = values
        .into_iter()
        .zip(&p.param_types)
        .enumerate()
        .map(|(i, (v, t))| match t {
            Some(t) if v.data_type() != *t => v.cast_to(t).map_err(|_| {
                SqlError::new(
                    codes::INVALID_TEXT_REPRESENTATION,
                    format!("parameter ${} cannot be read as {t}: {v}", i + 1),
                )
            }),
            _ => Ok(v),
        })
        .collect::<SqlResult<Vec<ScalarValue>>>()?;
    Ok(ParamValues::List(
        bound.into_iter().map(Into::into).collect(),
    ))
}
