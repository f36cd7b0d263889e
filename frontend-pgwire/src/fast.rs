//! The point-select fast path: `SELECT cols FROM t WHERE k1 = v1 [AND k2 = v2 ...]`, every
//! primary-key column pinned exactly once to a constant or a parameter, and nothing else
//! (no ORDER BY, LIMIT, DISTINCT, joins, expressions...). It is answered with one storage
//! lookup, without DataFusion planning.
//!
//! It must answer exactly as the planned path would: the same rows, the same column names
//! and types, the same visibility (read timestamp, the transaction's own writes) and the
//! same read-set record at SERIALIZABLE. Anything it is not sure of falls back to the
//! planned path (`None`).

use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use datafusion::common::ParamValues;
use datafusion::scalar::ScalarValue;
use datafusion::sql::sqlparser::ast::{
    self, BinaryOperator, Expr as SqlExpr, SelectItem, Statement, TableFactor, UnaryOperator,
};
use weft_engine::key::encode_key;
use weft_engine::provider::ReadSpan;
use weft_engine::row::{rows_to_batch, Row};

use crate::error::SqlResult;
use crate::exec::{ident_name, table_name, Executor, Outcome};
use crate::txn::{Isolation, Txn};

/// The parts of a statement the fast path can answer.
struct PointSelect {
    table: String,
    qualifiers: Vec<String>,
    /// Output columns by name; `None` is `*`.
    columns: Option<Vec<String>>,
    /// `(column, value)` equalities, ANDed.
    equalities: Vec<(String, SqlExpr)>,
}

fn column_of(e: &SqlExpr, qualifiers: &[String]) -> Option<String> {
    match e {
        SqlExpr::Identifier(id) => Some(ident_name(id)),
        SqlExpr::CompoundIdentifier(parts) if parts.len() == 2 => qualifiers
            .contains(&ident_name(&parts[0]))
            .then(|| ident_name(&parts[1])),
        _ => None,
    }
}

fn is_constant(e: &SqlExpr) -> bool {
    match e {
        SqlExpr::Value(v) => matches!(
            v.value,
            ast::Value::Number(..) | ast::Value::SingleQuotedString(_) | ast::Value::Placeholder(_)
        ),
        SqlExpr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => {
            matches!(expr.as_ref(), SqlExpr::Value(v) if matches!(v.value, ast::Value::Number(..)))
        }
        _ => false,
    }
}

fn conjuncts<'a>(e: &'a SqlExpr, out: &mut Vec<&'a SqlExpr>) {
    match e {
        SqlExpr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            conjuncts(left, out);
            conjuncts(right, out);
        }
        SqlExpr::Nested(inner) => conjuncts(inner, out),
        other => out.push(other),
    }
}

fn parse(stmt: &Statement) -> Option<PointSelect> {
    let Statement::Query(q) = stmt else {
        return None;
    };
    let ast::SetExpr::Select(sel) = q.body.as_ref() else {
        return None;
    };
    if sel.from.len() != 1 || !sel.from[0].joins.is_empty() {
        return None;
    }
    let TableFactor::Table { name, alias, .. } = &sel.from[0].relation else {
        return None;
    };
    let selection = sel.selection.as_ref()?;
    // Anything beyond `SELECT items FROM name [alias] WHERE selection` changes the text:
    // compare the statement with the one rebuilt from just those parts.
    let relation = sel.from[0].relation.to_string();
    let items: Vec<String> = sel.projection.iter().map(|i| i.to_string()).collect();
    let rebuilt = format!(
        "SELECT {} FROM {relation} WHERE {selection}",
        items.join(", ")
    );
    if q.to_string() != rebuilt {
        return None;
    }
    let table = table_name(name).ok()?;
    let mut qualifiers = vec![table.clone()];
    match alias {
        None if relation == name.to_string() => {}
        Some(a) if a.columns.is_empty() => {
            let a_name = ident_name(&a.name);
            if relation != format!("{name} {a}") && relation != format!("{name} AS {}", a.name) {
                return None;
            }
            qualifiers = vec![a_name];
        }
        _ => return None,
    }
    let columns = match sel.projection.as_slice() {
        [SelectItem::Wildcard(opts)] if opts.to_string().is_empty() => None,
        items => Some(
            items
                .iter()
                .map(|item| match item {
                    SelectItem::UnnamedExpr(e) => column_of(e, &qualifiers),
                    SelectItem::ExprWithAlias { expr, .. } => column_of(expr, &qualifiers),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()?,
        ),
    };
    let mut parts = Vec::new();
    conjuncts(selection, &mut parts);
    let equalities = parts
        .into_iter()
        .map(|p| match p {
            SqlExpr::BinaryOp {
                left,
                op: BinaryOperator::Eq,
                right,
            } => {
                if let (Some(c), true) = (column_of(left, &qualifiers), is_constant(right)) {
                    Some((c, right.as_ref().clone()))
                } else if let (Some(c), true) = (column_of(right, &qualifiers), is_constant(left)) {
                    Some((c, left.as_ref().clone()))
                } else {
                    None
                }
            }
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    Some(PointSelect {
        table,
        qualifiers,
        columns,
        equalities,
    })
}

/// A constant of the statement as a value of `ty`, when it is one exactly.
fn value_of(
    e: &SqlExpr,
    ty: &arrow::datatypes::DataType,
    params: Option<&ParamValues>,
) -> Option<ScalarValue> {
    use arrow::datatypes::DataType as T;
    let number = |text: &str| -> Option<ScalarValue> {
        match ty {
            T::Int16 => text.parse().ok().map(|v| ScalarValue::Int16(Some(v))),
            T::Int32 => text.parse().ok().map(|v| ScalarValue::Int32(Some(v))),
            T::Int64 => text.parse().ok().map(|v| ScalarValue::Int64(Some(v))),
            _ => None,
        }
    };
    let v = match e {
        SqlExpr::Value(v) => match &v.value {
            ast::Value::Number(n, false) => number(n)?,
            ast::Value::SingleQuotedString(s) if *ty == T::Utf8 => {
                ScalarValue::Utf8(Some(s.clone()))
            }
            ast::Value::Placeholder(p) => params?
                .get_placeholders_with_values(p)
                .ok()?
                .value()
                .clone(),
            _ => return None,
        },
        SqlExpr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match expr.as_ref() {
            SqlExpr::Value(v) => match &v.value {
                ast::Value::Number(n, false) => number(&format!("-{n}"))?,
                _ => return None,
            },
            _ => return None,
        },
        _ => return None,
    };
    (v.data_type() == *ty && !v.is_null()).then_some(v)
}

impl Executor {
    /// Answers a point select by primary key directly, or `None` when the statement is not
    /// one (the caller then plans it).
    pub async fn point_select(
        &self,
        txn: &Txn,
        stmt: &Statement,
        params: Option<&ParamValues>,
    ) -> SqlResult<Option<Outcome>> {
        let Some(ps) = parse(stmt) else {
            return Ok(None);
        };
        let _ = &ps.qualifiers;
        let Ok(def) = self.table_def(txn, &ps.table).await else {
            return Ok(None);
        };
        if def.primary_key.is_empty() || ps.equalities.len() != def.primary_key.len() {
            return Ok(None);
        }
        let schema = def.arrow_schema();
        let mut key_values: Vec<Option<ScalarValue>> = vec![None; def.primary_key.len()];
        for (col, expr) in &ps.equalities {
            let Some(i) = def.column_index(col) else {
                return Ok(None);
            };
            let Some(pos) = def.primary_key.iter().position(|&k| k == i) else {
                return Ok(None);
            };
            if key_values[pos].is_some() {
                return Ok(None);
            }
            let Some(v) = value_of(expr, schema.field(i).data_type(), params) else {
                return Ok(None);
            };
            key_values[pos] = Some(v);
        }
        let key_values: Vec<ScalarValue> = key_values
            .into_iter()
            .collect::<Option<_>>()
            .unwrap_or_default();
        if key_values.len() != def.primary_key.len() {
            return Ok(None);
        }
        let out_columns: Vec<usize> = match &ps.columns {
            None => (0..def.columns.len()).collect(),
            Some(names) => match names
                .iter()
                .map(|n| def.column_index(n))
                .collect::<Option<Vec<_>>>()
            {
                Some(c) => c,
                None => return Ok(None),
            },
        };
        let refs: Vec<&ScalarValue> = key_values.iter().collect();
        let key = encode_key(&refs)?;
        if txn.isolation == Isolation::Serializable {
            txn.reads.record(def.id, ReadSpan::Key(key.clone()));
        }
        let row = match txn.own_write(def.id, &key) {
            Some(own) => own,
            None => {
                self.db
                    .storage
                    .get(def.id, &key, txn.read_ts.unwrap_or(0))
                    .await?
            }
        };
        let out_schema: SchemaRef = Arc::new(Schema::new(
            out_columns
                .iter()
                .map(|&i| schema.field(i).as_ref().clone().with_nullable(true))
                .collect::<Vec<_>>(),
        ));
        let projected: Vec<Row> = row
            .iter()
            .map(|r| out_columns.iter().map(|&i| r[i].clone()).collect())
            .collect();
        let refs: Vec<&Row> = projected.iter().collect();
        let batch = rows_to_batch(&out_schema, &refs)?;
        let out_schema = crate::names::rename(&out_schema, crate::names::result_names(stmt));
        let batch = arrow::array::RecordBatch::try_new_with_options(
            out_schema.clone(),
            batch.columns().to_vec(),
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
        )
        .map_err(|e| crate::error::SqlError::internal(e.to_string()))?;
        Ok(Some(Outcome::Rows {
            schema: out_schema,
            batches: vec![batch],
        }))
    }
}
