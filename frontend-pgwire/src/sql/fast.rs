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
use weft_engine::index::IndexDef;
use weft_engine::key::{encode_key, prefix_successor};
use weft_engine::provider::ReadSpan;
use weft_engine::row::{rows_to_batch, Row};
use weft_engine::storage::SHORT_RANGE_ROWS_MAX;

use crate::sql::outcome::CommandTag;
use weft_engine::schema::TableDef;

use crate::catalog::txn::{Isolation, Txn};
use crate::error::SqlResult;
use crate::sql::exec::{table_name, Executor};
use crate::sql::names::ident_name;
use crate::sql::outcome::Outcome;

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

/// `k1 = v1 AND k2 = v2 ...`, each a column of the table against a constant or parameter.
fn equalities(selection: &SqlExpr, qualifiers: &[String]) -> Option<Vec<(String, SqlExpr)>> {
    let mut parts = Vec::new();
    conjuncts(selection, &mut parts);
    parts
        .into_iter()
        .map(|p| match p {
            SqlExpr::BinaryOp {
                left,
                op: BinaryOperator::Eq,
                right,
            } => {
                if let (Some(c), true) = (column_of(left, qualifiers), is_constant(right)) {
                    Some((c, right.as_ref().clone()))
                } else if let (Some(c), true) = (column_of(right, qualifiers), is_constant(left)) {
                    Some((c, left.as_ref().clone()))
                } else {
                    None
                }
            }
            _ => None,
        })
        .collect()
}

fn parse(stmt: &Statement) -> Option<PointSelect> {
    let Statement::Query(q) = stmt else {
        return None;
    };
    // Nothing beyond `SELECT items FROM name [alias] WHERE selection`. The patterns name
    // every field, so a clause a newer parser adds fails to compile here rather than
    // being ignored; and they print nothing, which matters on a path that runs for every
    // point select.
    let ast::Query {
        with: None,
        body,
        order_by: None,
        limit_clause: None,
        fetch: None,
        locks,
        for_clause: None,
        settings: None,
        format_clause: None,
        pipe_operators,
    } = q.as_ref()
    else {
        return None;
    };
    if !locks.is_empty() || !pipe_operators.is_empty() {
        return None;
    }
    let ast::SetExpr::Select(sel) = body.as_ref() else {
        return None;
    };
    let ast::Select {
        select_token: _,
        optimizer_hints,
        distinct: None,
        select_modifiers: None,
        top: None,
        top_before_distinct: _,
        projection,
        exclude: None,
        into: None,
        from,
        lateral_views,
        prewhere: None,
        selection: Some(selection),
        connect_by,
        group_by: ast::GroupByExpr::Expressions(group_by, group_by_modifiers),
        cluster_by,
        distribute_by,
        sort_by,
        having: None,
        named_window,
        qualify: None,
        window_before_qualify: _,
        value_table_mode: None,
        flavor: ast::SelectFlavor::Standard,
    } = sel.as_ref()
    else {
        return None;
    };
    if !optimizer_hints.is_empty()
        || !lateral_views.is_empty()
        || !connect_by.is_empty()
        || !group_by.is_empty()
        || !group_by_modifiers.is_empty()
        || !cluster_by.is_empty()
        || !distribute_by.is_empty()
        || !sort_by.is_empty()
        || !named_window.is_empty()
    {
        return None;
    }
    let [t] = from.as_slice() else {
        return None;
    };
    let (table, qualifiers) = plain_table(t)?;
    let columns = match projection.as_slice() {
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
    let equalities = equalities(selection, &qualifiers)?;
    Some(PointSelect {
        table,
        qualifiers,
        columns,
        equalities,
    })
}

/// The stored key that `equalities` pin, when they pin every primary-key column exactly
/// once to a value of its type, and nothing else.
fn key_of(
    def: &TableDef,
    equalities: &[(String, SqlExpr)],
    params: Option<&ParamValues>,
) -> SqlResult<Option<Vec<u8>>> {
    if def.primary_key.is_empty() || equalities.len() != def.primary_key.len() {
        return Ok(None);
    }
    let mut key_values: Vec<Option<ScalarValue>> = vec![None; def.primary_key.len()];
    for (col, expr) in equalities {
        let Some(i) = def.column_index(col) else {
            return Ok(None);
        };
        let Some(pos) = def.primary_key.iter().position(|&k| k == i) else {
            return Ok(None);
        };
        if key_values[pos].is_some() {
            return Ok(None);
        }
        let Some(v) = stored_value(def, i, expr, params) else {
            return Ok(None);
        };
        key_values[pos] = Some(v);
    }
    let Some(values) = key_values.into_iter().collect::<Option<Vec<_>>>() else {
        return Ok(None);
    };
    let refs: Vec<&ScalarValue> = values.iter().collect();
    Ok(Some(encode_key(&refs)?))
}

/// A constant of the statement as the stored value of column `i` it equals: 'bb ' finds
/// the char(3) value 'bb', and an upper-case uuid its stored form.
fn stored_value(
    def: &TableDef,
    i: usize,
    expr: &SqlExpr,
    params: Option<&ParamValues>,
) -> Option<ScalarValue> {
    let v = value_of(expr, &def.columns[i].ty.arrow_type(), params)?;
    Some(match &v {
        ScalarValue::Utf8(Some(s)) => crate::types::values::canonical_text(&def.columns[i].ty, s)
            .map(|c| ScalarValue::Utf8(Some(c)))
            .unwrap_or(v),
        _ => v,
    })
}

/// How a point select finds its rows.
enum Lookup<'a> {
    /// By primary key.
    Key(Vec<u8>),
    /// Through an index: its pinned values (in its column order) and their entry prefix.
    Index(&'a IndexDef, Vec<ScalarValue>, Vec<u8>),
}

/// Most entries an equality on a non-unique index may have for the fast path to read
/// their rows one by one; past it, the planned path reads them.
const INDEX_ROWS_MAX: usize = 64;

/// The complete index whose columns `equalities` pin, each exactly once and nothing else,
/// with the pinned values and their entry prefix; a unique index is preferred.
fn index_of<'a>(
    def: &'a TableDef,
    equalities: &[(String, SqlExpr)],
    params: Option<&ParamValues>,
) -> SqlResult<Option<Lookup<'a>>> {
    let mut pinned: Vec<(usize, &SqlExpr)> = Vec::with_capacity(equalities.len());
    for (col, expr) in equalities {
        let Some(i) = def.column_index(col) else {
            return Ok(None);
        };
        if pinned.iter().any(|(c, _)| *c == i) {
            return Ok(None);
        }
        pinned.push((i, expr));
    }
    let mut candidates: Vec<&IndexDef> = def
        .indexes
        .iter()
        .filter(|x| x.valid && x.predicate.is_none() && x.columns.len() == pinned.len())
        .filter(|x| pinned.iter().all(|(c, _)| x.columns.contains(c)))
        .collect();
    candidates.sort_by_key(|x| !x.unique);
    let Some(idx) = candidates.first() else {
        return Ok(None);
    };
    let mut values = Vec::with_capacity(idx.columns.len());
    for c in &idx.columns {
        let Some((_, expr)) = pinned.iter().find(|(p, _)| p == c) else {
            return Ok(None);
        };
        let Some(v) = stored_value(def, *c, expr, params) else {
            return Ok(None);
        };
        values.push(v);
    }
    let refs: Vec<&ScalarValue> = values.iter().collect();
    let prefix = idx.prefix(&refs)?;
    Ok(Some(Lookup::Index(idx, values, prefix)))
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
        let schema = def.arrow_schema();
        let lookup = match key_of(&def, &ps.equalities, params)? {
            Some(key) => Lookup::Key(key),
            None => match index_of(&def, &ps.equalities, params)? {
                Some(lookup) => lookup,
                None => return Ok(None),
            },
        };
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
        let rows = match lookup {
            Lookup::Key(key) => self.row_by_key(txn, &def, key).await?.into_iter().collect(),
            Lookup::Index(idx, values, prefix) => {
                match self.rows_by_index(txn, &def, idx, &values, prefix).await? {
                    Some(rows) => rows,
                    None => return Ok(None),
                }
            }
        };
        let out_schema: SchemaRef = Arc::new(Schema::new(
            out_columns
                .iter()
                .map(|&i| schema.field(i).as_ref().clone().with_nullable(true))
                .collect::<Vec<_>>(),
        ));
        let projected: Vec<Row> = rows
            .iter()
            .map(|r| out_columns.iter().map(|&i| r[i].clone()).collect())
            .collect();
        let refs: Vec<&Row> = projected.iter().collect();
        let batch = rows_to_batch(&out_schema, &refs)?;
        let out_schema =
            crate::sql::names::rename(&out_schema, crate::sql::names::result_names(stmt));
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

impl Executor {
    /// The row with primary key `key`, as the transaction sees it.
    async fn row_by_key(
        &self,
        txn: &Txn,
        def: &TableDef,
        key: Vec<u8>,
    ) -> SqlResult<Option<Arc<Row>>> {
        let own = txn.own_write(def.id, &key);
        if txn.isolation == Isolation::Serializable {
            txn.reads.record(def.id, ReadSpan::Key(key.clone()));
        }
        Ok(match own {
            Some(own) => own,
            None => self.db.storage.get(def.id, &key, txn.read_ts()?).await?,
        })
    }

    /// The rows whose entries in `idx` start with `prefix` (the entry of `values`), as the
    /// transaction sees them, in primary-key order; `None` when there are more than
    /// [`INDEX_ROWS_MAX`]. At SERIALIZABLE the read is recorded as the planned path
    /// records it: the entry of a unique index's values, the whole index otherwise.
    async fn rows_by_index(
        &self,
        txn: &Txn,
        def: &TableDef,
        idx: &IndexDef,
        values: &[ScalarValue],
        prefix: Vec<u8>,
    ) -> SqlResult<Option<Vec<Arc<Row>>>> {
        let read_ts = txn.read_ts()?;
        let entries: Vec<Arc<Row>> = if idx.unique {
            // Values without NULL: the entry's key is the prefix itself.
            let own = txn.own_write(idx.id, &prefix);
            if txn.isolation == Isolation::Serializable {
                txn.reads.record(idx.id, ReadSpan::Key(prefix.clone()));
            }
            match own {
                Some(own) => own,
                None => self.db.storage.get(idx.id, &prefix, read_ts).await?,
            }
            .into_iter()
            .collect()
        } else {
            let hi = prefix_successor(&prefix);
            let own: Vec<_> = txn
                .overlay(idx.id)
                .map(|o| {
                    o.range(prefix.clone()..)
                        .take_while(|(k, _)| hi.as_ref().is_none_or(|h| *k < h))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default();
            let Some(stored) = self
                .db
                .storage
                .range_get(
                    idx.id,
                    (&prefix, hi.as_deref()),
                    read_ts,
                    SHORT_RANGE_ROWS_MAX,
                )
                .await?
            else {
                return Ok(None);
            };
            let mut found: std::collections::BTreeMap<Vec<u8>, Option<Arc<Row>>> =
                stored.into_iter().map(|(k, e)| (k, Some(e))).collect();
            found.extend(own);
            if found.len() > INDEX_ROWS_MAX {
                return Ok(None);
            }
            if txn.isolation == Isolation::Serializable {
                txn.reads.record(idx.id, ReadSpan::Table);
            }
            found.into_values().flatten().collect()
        };
        let mut keys: Vec<Vec<u8>> = entries
            .iter()
            .filter_map(|e| match e.first() {
                Some(ScalarValue::Binary(Some(pk))) => Some(pk.clone()),
                _ => None,
            })
            .collect();
        keys.sort();
        keys.dedup();
        let mut rows = Vec::with_capacity(keys.len());
        for key in keys {
            // An entry and its row are written together; the check costs nothing and keeps
            // a stale entry from ever answering.
            if let Some(row) = self.row_by_key(txn, def, key).await? {
                if idx.columns.iter().zip(values).all(|(&c, v)| row[c] == *v) {
                    rows.push(row);
                }
            }
        }
        Ok(Some(rows))
    }
}

// ------------------------------------------------------------------ point writes
//
// `UPDATE t SET c = e, ... WHERE <every key column> = <constant>`,
// `DELETE FROM t WHERE <every key column> = <constant>` and
// `INSERT INTO t [(cols)] VALUES (...), ... [ON CONFLICT [(key)] DO NOTHING]`, with values
// that are constants, parameters, columns of the row (UPDATE), integer `+ - *` of those, and
// CURRENT_TIMESTAMP / now(): they read and write single rows by key without DataFusion
// planning. Every value must come out of exactly the column's type (integers are computed
// exactly and must fit); anything else, and every error the planned path would raise first
// (an overflow, a value of another type), falls back to the planned path.

/// An exactly computed value.
#[derive(Debug, Clone)]
enum Val {
    Null,
    Int(i128),
    Other(ScalarValue),
}

fn val_of_scalar(v: &ScalarValue) -> Val {
    match v {
        v if v.is_null() => Val::Null,
        ScalarValue::Int16(Some(i)) => Val::Int(*i as i128),
        ScalarValue::Int32(Some(i)) => Val::Int(*i as i128),
        ScalarValue::Int64(Some(i)) => Val::Int(*i as i128),
        other => Val::Other(other.clone()),
    }
}

/// `v` as a value of `ty`, when it is one exactly.
fn to_type(v: Val, ty: &arrow::datatypes::DataType) -> Option<ScalarValue> {
    use arrow::datatypes::DataType as T;
    match v {
        Val::Null => ScalarValue::try_from(ty).ok(),
        Val::Int(i) => match ty {
            T::Int16 => i16::try_from(i).ok().map(|v| ScalarValue::Int16(Some(v))),
            T::Int32 => i32::try_from(i).ok().map(|v| ScalarValue::Int32(Some(v))),
            T::Int64 => i64::try_from(i).ok().map(|v| ScalarValue::Int64(Some(v))),
            _ => None,
        },
        Val::Other(s) => (s.data_type() == *ty).then_some(s),
    }
}

/// Evaluates an assigned or inserted value, or `None` when the fast path cannot.
fn eval(
    e: &SqlExpr,
    ty: &arrow::datatypes::DataType,
    row: Option<(&TableDef, &Row, &[String])>,
    params: Option<&ParamValues>,
    now_us: i64,
) -> Option<Val> {
    use arrow::datatypes::DataType as T;
    Some(match e {
        SqlExpr::Nested(inner) => eval(inner, ty, row, params, now_us)?,
        SqlExpr::Value(v) => match &v.value {
            ast::Value::Null => Val::Null,
            ast::Value::Number(n, false) => Val::Int(n.parse().ok()?),
            ast::Value::SingleQuotedString(s) if *ty == T::Utf8 => {
                Val::Other(ScalarValue::Utf8(Some(s.clone())))
            }
            ast::Value::Boolean(b) if *ty == T::Boolean => {
                Val::Other(ScalarValue::Boolean(Some(*b)))
            }
            ast::Value::Placeholder(p) => {
                val_of_scalar(params?.get_placeholders_with_values(p).ok()?.value())
            }
            _ => return None,
        },
        SqlExpr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match eval(expr, ty, row, params, now_us)? {
            Val::Int(i) => Val::Int(-i),
            Val::Null => Val::Null,
            Val::Other(_) => return None,
        },
        SqlExpr::Identifier(_) | SqlExpr::CompoundIdentifier(_) => {
            let (def, r, qualifiers) = row?;
            let i = def.column_index(&column_of(e, qualifiers)?)?;
            val_of_scalar(&r[i])
        }
        SqlExpr::BinaryOp { left, op, right }
            if matches!(
                op,
                BinaryOperator::Plus | BinaryOperator::Minus | BinaryOperator::Multiply
            ) && matches!(ty, T::Int16 | T::Int32 | T::Int64) =>
        {
            let l = eval(left, ty, row, params, now_us)?;
            let r = eval(right, ty, row, params, now_us)?;
            match (l, r) {
                (Val::Int(a), Val::Int(b)) => Val::Int(match op {
                    BinaryOperator::Plus => a.checked_add(b)?,
                    BinaryOperator::Minus => a.checked_sub(b)?,
                    _ => a.checked_mul(b)?,
                }),
                (Val::Null, Val::Int(_)) | (Val::Int(_), Val::Null) | (Val::Null, Val::Null) => {
                    Val::Null
                }
                _ => return None,
            }
        }
        SqlExpr::Function(f)
            if matches!(f.args, ast::FunctionArguments::None)
                || matches!(&f.args, ast::FunctionArguments::List(l) if l.args.is_empty() && l.clauses.is_empty() && l.duplicate_treatment.is_none()) =>
        {
            let name = f.name.to_string().to_ascii_lowercase();
            let timestamp = (name == "current_timestamp" || name == "now")
                && f.filter.is_none()
                && f.over.is_none()
                && f.within_group.is_empty();
            match ty {
                T::Timestamp(arrow::datatypes::TimeUnit::Microsecond, tz) if timestamp => {
                    Val::Other(ScalarValue::TimestampMicrosecond(Some(now_us), tz.clone()))
                }
                _ => return None,
            }
        }
        _ => return None,
    })
}

/// The statement's CURRENT_TIMESTAMP, in microseconds (as DataFusion's now() would give it
/// to the planned path: the wall clock when the statement runs).
fn now_us() -> i64 {
    use weft_engine::Clock;
    (weft_engine::SystemClock::new(0).now().latest / 1000) as i64
}

/// The table a single-table statement names, with the names its columns may be qualified
/// by; `None` unless the relation is a plain table name with at most a plain alias. The
/// pattern names every field (see [`parse`]).
fn plain_table(t: &ast::TableWithJoins) -> Option<(String, Vec<String>)> {
    let ast::TableWithJoins { relation, joins } = t;
    let TableFactor::Table {
        name,
        alias,
        args: None,
        with_hints,
        version: None,
        with_ordinality: false,
        partitions,
        json_path: None,
        sample: None,
        index_hints,
    } = relation
    else {
        return None;
    };
    if !joins.is_empty()
        || !with_hints.is_empty()
        || !partitions.is_empty()
        || !index_hints.is_empty()
    {
        return None;
    }
    let table = table_name(name).ok()?;
    match alias {
        None => Some((table.clone(), vec![table])),
        Some(ast::TableAlias {
            explicit: _,
            name: a_name,
            columns,
            at: None,
        }) if columns.is_empty() => Some((table, vec![ident_name(a_name)])),
        _ => None,
    }
}

impl Executor {
    /// The table, its column qualifiers and the one key a single-table UPDATE or DELETE
    /// pins with `selection`, or `None` when it does not pin exactly one key.
    async fn point_target(
        &self,
        txn: &Txn,
        t: &ast::TableWithJoins,
        selection: Option<&SqlExpr>,
        params: Option<&ParamValues>,
    ) -> SqlResult<Option<(Arc<TableDef>, Vec<String>, Vec<u8>)>> {
        let Some((table, qualifiers)) = plain_table(t) else {
            return Ok(None);
        };
        let Some(eqs) = selection.and_then(|s| equalities(s, &qualifiers)) else {
            return Ok(None);
        };
        let Ok(def) = self.table_def(txn, &table).await else {
            return Ok(None);
        };
        Ok(key_of(&def, &eqs, params)?.map(|key| (def, qualifiers, key)))
    }

    /// `UPDATE t SET ... WHERE <key> = ...` by key, or `None` to plan it.
    pub async fn point_update(
        &self,
        txn: &mut Txn,
        up: &ast::Update,
        params: Option<&ParamValues>,
    ) -> SqlResult<Option<Outcome>> {
        if !up.optimizer_hints.is_empty()
            || up.from.is_some()
            || up.returning.is_some()
            || up.output.is_some()
            || up.or.is_some()
            || !up.order_by.is_empty()
            || up.limit.is_some()
        {
            return Ok(None);
        }
        let Some((def, qualifiers, key)) = self
            .point_target(txn, &up.table, up.selection.as_ref(), params)
            .await?
        else {
            return Ok(None);
        };
        if !def.checks.is_empty() {
            return Ok(None);
        }
        // Targets: plain, distinct, non-key columns.
        let mut targets = Vec::with_capacity(up.assignments.len());
        for a in &up.assignments {
            let ast::AssignmentTarget::ColumnName(n) = &a.target else {
                return Ok(None);
            };
            let Some(i) = table_name(n).ok().and_then(|c| def.column_index(&c)) else {
                return Ok(None);
            };
            if def.primary_key.contains(&i) || targets.iter().any(|(t, _)| *t == i) {
                return Ok(None);
            }
            targets.push((i, &a.value));
        }
        txn.schema_keys
            .insert(weft_engine::key::catalog_key(&def.name));
        let old = self.current(txn, def.id, &key).await?;
        let Some(old) = old else {
            return Ok(Some(Outcome::Command(
                CommandTag::new("UPDATE").with_rows(0),
            )));
        };
        let now = now_us();
        let mut new: Row = old.as_ref().clone();
        for (i, e) in targets {
            let ty = def.columns[i].ty.arrow_type();
            let Some(v) = eval(e, &ty, Some((&def, &old, &qualifiers)), params, now)
                .and_then(|v| to_type(v, &ty))
            else {
                return Ok(None);
            };
            new[i] = crate::types::values::check_value(&def, &def.columns[i], v)?;
        }
        self.write_row(txn, &def, &def.arrow_schema(), key, Some(Arc::new(new)))
            .await?;
        Ok(Some(Outcome::Command(
            CommandTag::new("UPDATE").with_rows(1),
        )))
    }

    /// `DELETE FROM t WHERE <key> = ...` by key, or `None` to plan it.
    pub async fn point_delete(
        &self,
        txn: &mut Txn,
        del: &ast::Delete,
        params: Option<&ParamValues>,
    ) -> SqlResult<Option<Outcome>> {
        let tables = match &del.from {
            ast::FromTable::WithFromKeyword(t) => t,
            ast::FromTable::WithoutKeyword(_) => return Ok(None),
        };
        if tables.len() != 1
            || !del.tables.is_empty()
            || del.using.is_some()
            || del.returning.is_some()
            || !del.order_by.is_empty()
            || del.limit.is_some()
            || del.output.is_some()
            || !del.optimizer_hints.is_empty()
        {
            return Ok(None);
        }
        let Some((def, _, key)) = self
            .point_target(txn, &tables[0], del.selection.as_ref(), params)
            .await?
        else {
            return Ok(None);
        };
        txn.schema_keys
            .insert(weft_engine::key::catalog_key(&def.name));
        let exists = self.current(txn, def.id, &key).await?.is_some();
        if !exists {
            return Ok(Some(Outcome::Command(
                CommandTag::new("DELETE").with_rows(0),
            )));
        }
        self.write_row(txn, &def, &def.arrow_schema(), key, None)
            .await?;
        Ok(Some(Outcome::Command(
            CommandTag::new("DELETE").with_rows(1),
        )))
    }

    /// `INSERT INTO t [(cols)] VALUES ...` without planning, or `None` to plan it.
    pub async fn point_insert(
        &self,
        txn: &mut Txn,
        ins: &ast::Insert,
        params: Option<&ParamValues>,
    ) -> SqlResult<Option<Outcome>> {
        let do_nothing = match &ins.on {
            None => false,
            Some(ast::OnInsert::OnConflict(oc))
                if matches!(oc.action, ast::OnConflictAction::DoNothing) =>
            {
                true
            }
            Some(_) => return Ok(None),
        };
        if ins.or.is_some()
            || ins.ignore
            || !ins.into
            || ins.table_alias.is_some()
            || ins.overwrite
            || !ins.assignments.is_empty()
            || ins.partitioned.is_some()
            || !ins.after_columns.is_empty()
            || ins.has_table_keyword
            || ins.returning.is_some()
            || ins.output.is_some()
            || ins.replace_into
            || ins.priority.is_some()
            || ins.insert_alias.is_some()
            || ins.settings.is_some()
            || ins.format_clause.is_some()
            || ins.multi_table_insert_type.is_some()
            || !ins.multi_table_into_clauses.is_empty()
            || !ins.optimizer_hints.is_empty()
        {
            return Ok(None);
        }
        let ast::TableObject::TableName(name) = &ins.table else {
            return Ok(None);
        };
        let Some(q) = ins.source.as_ref() else {
            return Ok(None);
        };
        let ast::SetExpr::Values(values) = q.body.as_ref() else {
            return Ok(None);
        };
        let bare = q.with.is_none()
            && q.order_by.is_none()
            && q.limit_clause.is_none()
            && q.fetch.is_none()
            && q.locks.is_empty()
            && q.for_clause.is_none()
            && q.settings.is_none()
            && q.format_clause.is_none()
            && q.pipe_operators.is_empty();
        if values.explicit_row || !bare {
            return Ok(None);
        }
        let Ok(table) = table_name(name) else {
            return Ok(None);
        };
        let Ok(def) = self.table_def(txn, &table).await else {
            return Ok(None);
        };
        if !def.checks.is_empty() {
            return Ok(None);
        }
        if let Some(ast::OnInsert::OnConflict(oc)) = &ins.on {
            if def.primary_key.is_empty() || oc.conflict_target.is_some() && !def.indexes.is_empty()
            {
                return Ok(None);
            }
            if let Some(target) = &oc.conflict_target {
                if self.check_conflict_target(&def, target).is_err() {
                    return Ok(None);
                }
            }
        }
        let targets: Vec<usize> = if ins.columns.is_empty() {
            (0..def.columns.len()).collect()
        } else {
            let Some(t) = ins
                .columns
                .iter()
                .map(|c| table_name(c).ok().and_then(|n| def.column_index(&n)))
                .collect::<Option<Vec<_>>>()
            else {
                return Ok(None);
            };
            t
        };
        let mut seen = vec![false; def.columns.len()];
        for &t in &targets {
            // A GENERATED ALWAYS identity column given a value: the general path says 428C9.
            if std::mem::replace(&mut seen[t], true)
                || def.columns[t].identity.as_deref() == Some("a")
            {
                return Ok(None);
            }
        }
        // Columns left out get their defaults: only NULL (no DEFAULT) is taken here.
        if def
            .columns
            .iter()
            .enumerate()
            .any(|(i, c)| !seen[i] && c.default.is_some())
        {
            return Ok(None);
        }
        let now = now_us();
        let mut rows = Vec::with_capacity(values.rows.len());
        for exprs in &values.rows {
            if exprs.len() != targets.len() {
                return Ok(None);
            }
            let mut row: Row = def
                .columns
                .iter()
                .map(|c| ScalarValue::try_from(&c.ty.arrow_type()))
                .collect::<Result<_, _>>()
                .map_err(|e| crate::error::SqlError::internal(e.to_string()))?;
            for (&i, e) in targets.iter().zip(exprs.iter()) {
                let ty = def.columns[i].ty.arrow_type();
                let Some(v) = eval(e, &ty, None, params, now).and_then(|v| to_type(v, &ty)) else {
                    return Ok(None);
                };
                row[i] = v;
            }
            rows.push(row);
        }
        txn.schema_keys
            .insert(weft_engine::key::catalog_key(&def.name));
        let schema = def.arrow_schema();
        let mut count = 0;
        for row in rows {
            let row = row
                .into_iter()
                .zip(&def.columns)
                .map(|(v, c)| crate::types::values::check_value(&def, c, v))
                .collect::<SqlResult<Row>>()?;
            let key = self.row_key(&def, &row)?;
            if !def.primary_key.is_empty() && self.current(txn, def.id, &key).await?.is_some() {
                if do_nothing {
                    continue;
                }
                return Err(Self::pk_violation(&def, &row));
            }
            if do_nothing
                && !def.indexes.is_empty()
                && self.unique_conflict(txn, &def, &row, None).await?.is_some()
            {
                continue;
            }
            self.write_row(txn, &def, &schema, key, Some(Arc::new(row)))
                .await?;
            count += 1;
        }
        Ok(Some(Outcome::Command(
            CommandTag::new("INSERT").with_oid(0).with_rows(count),
        )))
    }
}
