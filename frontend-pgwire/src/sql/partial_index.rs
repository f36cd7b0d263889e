//! Partial indexes (`CREATE [UNIQUE] INDEX ... WHERE predicate`): which rows have entries.
//!
//! A row has an entry when the predicate is true for it; false and NULL leave it out, as in
//! PostgreSQL. A partial unique index therefore checks uniqueness among the rows it holds
//! only (the usual "unique while not deleted").
//!
//! The predicate is stored as SQL text over the table's columns, checked when the index is
//! made (a boolean of the table's columns, immutable functions only, no subqueries), and
//! compiled once per session and table layout into a DataFusion physical expression that
//! each written row is evaluated against. The planner and the point fast path do not read
//! partial indexes; writers, index builds and ON CONFLICT do.

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::DFSchema;
use datafusion::logical_expr::{Expr, ExprSchemable, Volatility};
use datafusion::physical_expr::PhysicalExpr;
use weft_engine::index::IndexDef;
use weft_engine::row::{rows_to_batch, Row};
use weft_engine::schema::TableDef;

use crate::error::{codes, SqlError, SqlResult};
use crate::sql::exec::Executor;

/// Most compiled predicates a session keeps; past it the cache starts over.
const COMPILED_MAX: usize = 256;

impl Executor {
    /// Plans `predicate` over the table's columns: the expression, once it is known to be
    /// a boolean of those columns that an index may hold (42804, 0A000 and 42P17 as in
    /// PostgreSQL otherwise).
    fn plan_predicate(&self, def: &TableDef, predicate: &str) -> SqlResult<(Expr, DFSchema)> {
        let ctx = self.db.scratch_context();
        let schema = def.arrow_schema();
        let df_schema = DFSchema::try_from_qualified_schema(def.name.as_str(), &schema)?;
        let expr = ctx.parse_sql_expr(predicate, &df_schema)?;
        let mut refusal: Option<SqlError> = None;
        expr.apply(|e| {
            refusal = match e {
                Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_) => Some(
                    SqlError::unsupported("cannot use subquery in index predicate"),
                ),
                Expr::AggregateFunction(_) => Some(SqlError::new(
                    "42803",
                    "aggregate functions are not allowed in index predicates",
                )),
                Expr::WindowFunction(_) => Some(SqlError::new(
                    "42P20",
                    "window functions are not allowed in index predicates",
                )),
                Expr::ScalarFunction(f)
                    if f.func.signature().volatility != Volatility::Immutable =>
                {
                    Some(SqlError::new(
                        "42P17",
                        "functions in index predicate must be marked IMMUTABLE",
                    ))
                }
                _ => None,
            };
            Ok(if refusal.is_some() {
                TreeNodeRecursion::Stop
            } else {
                TreeNodeRecursion::Continue
            })
        })?;
        if let Some(e) = refusal {
            return Err(e);
        }
        let ty = expr.get_type(&df_schema)?;
        if !matches!(ty, DataType::Boolean | DataType::Null) {
            let field = arrow::datatypes::Field::new("", ty.clone(), true);
            let name = crate::types::column_type::pg_type_of(&field)
                .map(|t| t.name().to_string())
                .unwrap_or_else(|_| ty.to_string());
            return Err(SqlError::new(
                codes::DATATYPE_MISMATCH,
                format!("argument of WHERE must be type boolean, not type {name}"),
            ));
        }
        Ok((expr, df_schema))
    }

    /// Checks a new partial index's predicate (see [`Executor::plan_predicate`]).
    pub(crate) fn validate_predicate(&self, def: &TableDef, predicate: &str) -> SqlResult<()> {
        self.plan_predicate(def, predicate).map(|_| ())
    }

    /// The compiled predicate of a partial index, compiled now if the session has not yet.
    fn compiled(
        &self,
        def: &TableDef,
        idx: &IndexDef,
        predicate: &str,
    ) -> SqlResult<Arc<dyn PhysicalExpr>> {
        let key = (def.id, idx.id, def.columns.len());
        let cache = &self.predicates;
        if let Some((text, expr)) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            if text == predicate {
                return Ok(expr.clone());
            }
        }
        let (expr, df_schema) = self.plan_predicate(def, predicate)?;
        let physical = self
            .db
            .scratch_context()
            .create_physical_expr(expr, &df_schema)?;
        let mut c = cache.lock().unwrap_or_else(|e| e.into_inner());
        if c.len() >= COMPILED_MAX {
            c.clear();
        }
        c.insert(key, (predicate.to_string(), physical.clone()));
        Ok(physical)
    }

    /// Whether `row` has an entry in `idx`: always, unless the index is partial and its
    /// predicate is not true for the row.
    pub(crate) fn in_index(&self, def: &TableDef, idx: &IndexDef, row: &Row) -> SqlResult<bool> {
        let Some(predicate) = &idx.predicate else {
            return Ok(true);
        };
        let expr = self.compiled(def, idx, predicate)?;
        let batch = rows_to_batch(&def.arrow_schema(), &[row])?;
        let value = expr.evaluate(&batch)?.into_array(1)?;
        if value.data_type() == &DataType::Null {
            return Ok(false);
        }
        let b = value
            .as_boolean_opt()
            .ok_or_else(|| SqlError::internal("an index predicate did not evaluate to boolean"))?;
        Ok(!b.is_null(0) && b.value(0))
    }
}
