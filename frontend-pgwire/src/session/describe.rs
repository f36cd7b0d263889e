//! Describe: a statement's parameter types and result columns before it runs, the wire
//! types of parameters that stand for text-stored columns, and EXPLAIN's JSON answer.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::scalar::ScalarValue;
use datafusion::sql::sqlparser::ast::{self, Statement};
use postgres_types::Type;

use crate::catalog::txn::Txn;
use crate::error::SqlResult;
use crate::session::machine::Core;
use crate::session::machine::Reply;
use crate::session::machine::State;
use crate::sql::exec::table_name;
use crate::sql::names::ident_name;
use crate::sql::outcome::Outcome;

impl Core {
    /// Plans a statement to learn its parameter types and result columns.
    pub(crate) async fn describe(
        &self,
        stmt: &Statement,
    ) -> SqlResult<(Vec<Option<DataType>>, Option<SchemaRef>)> {
        let mut st = self.state.lock().await;
        self.describe_in(&mut st, stmt).await
    }

    /// [`Self::describe`] with the session's state already locked.
    pub(crate) async fn describe_in(
        &self,
        st: &mut State,
        stmt: &Statement,
    ) -> SqlResult<(Vec<Option<DataType>>, Option<SchemaRef>)> {
        // A cursor's statements: DECLARE takes its query's parameters and returns no rows;
        // FETCH returns the cursor's columns.
        if let Some((_, _, _, query)) = crate::session::cursors::declared(stmt) {
            let query = Statement::Query(Box::new(query));
            let (types, _) = Box::pin(self.describe_in(st, &query)).await?;
            return Ok((types, None));
        }
        // EXECUTE of a statement prepared in SQL returns that statement's columns.
        if let Statement::Execute {
            name: Some(name), ..
        } = stmt
        {
            let name = name.0.last().and_then(|p| p.as_ident()).map(ident_name);
            if let Some(p) = name.and_then(|n| st.prepared.get(&n)) {
                return Ok((Vec::new(), p.schema.clone()));
            }
        }
        if let Statement::Fetch { name, into, .. } = stmt {
            if crate::sql::fetch_syntax::marks(into.as_ref()).is_some_and(|(is_move, _)| is_move) {
                return Ok((Vec::new(), None));
            }
            let schema = st
                .cursors
                .get(&crate::session::cursors::name(name))
                .map(|c| c.schema.clone());
            return Ok((Vec::new(), schema));
        }
        let mut temp;
        let txn: &Txn = match st.txn.as_mut() {
            Some(t) => {
                t.snapshot(&*self.exec.db.adjudicator, &*self.exec.db.storage);
                t
            }
            None => {
                temp = self.new_txn(st, false);
                temp.snapshot(&*self.exec.db.adjudicator, &*self.exec.db.storage);
                &temp
            }
        };
        let mut qualified = stmt.clone();
        self.exec.qualify_names(txn, &mut qualified).await?;
        let (planned, target, returning) = match qualified {
            Statement::Insert(mut i) => {
                let r = i.returning.take();
                i.on = None;
                if let Some(src) = i.source.as_mut() {
                    if !matches!(src.body.as_ref(), ast::SetExpr::Values(_)) {
                        crate::sql::exec::nested_values_to_union(src);
                    }
                }
                let alias = i.table_alias.take().map(|a| ident_name(&a.alias));
                let name = match &i.table {
                    ast::TableObject::TableName(n) => Some(table_name(n)?),
                    _ => None,
                };
                (Statement::Insert(i), None, r.zip(name.map(|n| (n, alias))))
            }
            Statement::Update(mut u) => {
                let r = u.returning.take();
                let name = match &u.table.relation {
                    ast::TableFactor::Table { name, alias, .. } => Some((
                        table_name(name)?,
                        alias.as_ref().map(|a| ident_name(&a.name)),
                    )),
                    _ => None,
                };
                (
                    Statement::Update(u),
                    name.as_ref().map(|n| n.0.clone()),
                    r.zip(name),
                )
            }
            Statement::Delete(mut d) => {
                let r = d.returning.take();
                let (name, alias) = crate::sql::dml::delete_target(&mut d)?;
                (
                    Statement::Delete(d),
                    Some(name.clone()),
                    r.zip(Some((name, alias))),
                )
            }
            Statement::Query(mut q) => {
                q.locks.clear();
                (Statement::Query(q), None, None)
            }
            s @ Statement::Explain { .. } => (s, None, None),
            Statement::ShowVariable { variable } => {
                let schema = match self.show(st, &variable) {
                    Ok(Reply::Outcome(Outcome::Rows { schema, .. })) => Some(schema),
                    _ => None,
                };
                return Ok((Vec::new(), schema));
            }
            _ => return Ok((Vec::new(), None)),
        };
        let is_dml = !matches!(planned, Statement::Query(_) | Statement::Explain { .. });
        let plan = self.exec.plan(txn, planned, target.as_deref()).await?;
        let types = plan.get_parameter_types()?;
        let n = types
            .keys()
            .filter_map(|k| k.trim_start_matches('$').parse::<usize>().ok())
            .max()
            .unwrap_or(0)
            // A placeholder DataFusion could not type (in a UNION branch) still counts.
            .max(max_placeholder(stmt));
        let from_functions = crate::session::placeholders::from_function_signatures(&plan);
        let params: Vec<Option<DataType>> = (1..=n)
            .map(|i| {
                let id = format!("${i}");
                types
                    .get(&id)
                    .cloned()
                    .flatten()
                    .or_else(|| from_functions.get(&id).cloned())
            })
            .collect();
        let schema = if let Some((items, (name, alias))) = returning {
            let def = self.exec.table_def(txn, &name).await?;
            let (_, p) = self
                .exec
                .returning_plan(&def, alias.as_deref(), &items, &[])
                .await?;
            let schema: SchemaRef = Arc::new(p.schema().as_arrow().clone());
            let schema = crate::sql::origins::returning_with_origins(&schema, &def, &items);
            Some(crate::sql::names::rename(
                &schema,
                crate::sql::names::item_names(&items),
            ))
        } else if is_dml {
            None
        } else {
            // The plan is analyzed as its execution will be, so that the described types
            // are the ones it computes (`SELECT 1` and `$1::int4 + 1` are integers).
            // DataFusion cannot type-check an unbound placeholder: each is bound to a NULL
            // of its parameter's type first, and when one has no type yet the plan is
            // described as planned.
            let casts = cast_arrow_types(stmt, n);
            let binding: Vec<Option<&DataType>> = params
                .iter()
                .zip(&casts)
                .map(|(p, c)| p.as_ref().or(c.as_ref()))
                .collect();
            let bound = if n == 0 {
                Some(plan.clone())
            } else if binding.iter().all(Option::is_some) {
                binding
                    .iter()
                    .flatten()
                    .map(|t| ScalarValue::try_from(*t))
                    .collect::<datafusion::common::Result<Vec<_>>>()
                    .ok()
                    .and_then(|nulls| {
                        plan.clone()
                            .with_param_values(datafusion::common::ParamValues::List(
                                nulls.into_iter().map(Into::into).collect(),
                            ))
                            .ok()
                    })
            } else {
                None
            };
            let plan = match bound {
                Some(bound) => {
                    let (_, state, _) = self.exec.planning();
                    state
                        .analyzer()
                        .execute_and_check(bound, state.config_options(), |_, _| {})
                        .unwrap_or(plan)
                }
                None => plan,
            };
            let schema = crate::sql::origins::schema_with_origins(&plan);
            Some(mark_oid_arrays(crate::sql::names::rename(
                &schema,
                crate::sql::names::result_names(stmt),
            )))
        };
        Ok((params, schema))
    }
}

/// The prepared statement named by `EXPLAIN (..., FORMAT JSON) EXECUTE name(...)`.
///
/// weft answers this one form of EXPLAIN with the shape PostgreSQL gives, for what
/// drivers read from it: sqlx's compile-time checks learn from it which result columns can
/// be NULL beyond what their tables say: those on the inner side of an outer join.
pub(crate) fn explained_statement(stmt: &Statement) -> Option<String> {
    let Statement::Explain {
        statement, options, ..
    } = stmt
    else {
        return None;
    };
    let json = options.as_ref().is_some_and(|o| {
        o.iter().any(|u| {
            u.name.value.eq_ignore_ascii_case("format")
                && u.arg
                    .as_ref()
                    .is_some_and(|a| a.to_string().eq_ignore_ascii_case("json"))
        })
    });
    match statement.as_ref() {
        Statement::Execute {
            name: Some(name), ..
        } if json => name.0.last().and_then(|p| p.as_ident()).map(ident_name),
        _ => None,
    }
}

pub(crate) fn explain_json_schema() -> SchemaRef {
    let field = Field::new("QUERY PLAN", DataType::Utf8, false).with_metadata(
        [(
            weft_engine::types::PG_TYPE_KEY.to_string(),
            "jsonb".to_string(),
        )]
        .into(),
    );
    Arc::new(Schema::new(vec![field]))
}

pub(crate) fn explain_json(schema: Option<&Schema>) -> String {
    let Some(schema) = schema else {
        return serde_json::json!([{"Plan": {"Node Type": "Result"}}]).to_string();
    };
    let label = |i: usize| format!("c{}", i + 1);
    let all: Vec<String> = (0..schema.fields().len()).map(label).collect();
    let nullable: Vec<String> = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            f.metadata()
                .contains_key(crate::sql::origins::OUTER_NULLABLE_KEY)
        })
        .map(|(i, _)| label(i))
        .collect();
    serde_json::json!([{
        "Plan": {
            "Node Type": "Nested Loop",
            "Join Type": "Left",
            "Output": all,
            "Plans": [{
                "Node Type": "Result",
                "Parent Relationship": "Inner",
                "Output": nullable,
            }],
        }
    }])
    .to_string()
}

impl Core {
    /// The wire types of parameters that stand for a column weft stores as text but
    /// PostgreSQL types otherwise (uuid, json, jsonb, varchar, char): `col = $n` anywhere,
    /// `SET col = $n`, and INSERT's VALUES.
    pub(crate) async fn param_wire_types(&self, stmt: &Statement, n: usize) -> Vec<Option<Type>> {
        use datafusion::sql::sqlparser::ast::{visit_expressions, visit_relations, Expr};
        use std::ops::ControlFlow;
        let mut out = vec![None; n];
        if n == 0 {
            return out;
        }
        let placeholder = |e: &Expr| -> Option<usize> {
            match e {
                Expr::Value(v) => match &v.value {
                    ast::Value::Placeholder(p) => p.trim_start_matches('$').parse::<usize>().ok(),
                    _ => None,
                },
                Expr::Nested(inner) => match inner.as_ref() {
                    Expr::Value(v) => match &v.value {
                        ast::Value::Placeholder(p) => {
                            p.trim_start_matches('$').parse::<usize>().ok()
                        }
                        _ => None,
                    },
                    _ => None,
                },
                _ => None,
            }
        };
        let column = |e: &Expr| -> Option<String> {
            match e {
                Expr::Identifier(i) => Some(ident_name(i)),
                Expr::CompoundIdentifier(ids) => ids.last().map(ident_name),
                _ => None,
            }
        };
        // `$n::type` and `CAST($n AS type)`: PostgreSQL gives $n the cast's type.
        for (slot, cast) in out.iter_mut().zip(cast_targets(stmt, n)) {
            *slot = cast.as_ref().and_then(cast_param_type);
        }
        // (column, parameter number)
        let mut pairs: Vec<(String, usize)> = Vec::new();
        // (column, parameter number) of `column op ANY($n)`: $n is an array of its type.
        let mut arrays: Vec<(String, usize)> = Vec::new();
        let _ = visit_expressions(stmt, |e| {
            match e {
                Expr::BinaryOp { left, right, .. } => {
                    if let (Some(c), Some(p)) = (column(left), placeholder(right)) {
                        pairs.push((c, p));
                    } else if let (Some(p), Some(c)) = (placeholder(left), column(right)) {
                        pairs.push((c, p));
                    }
                }
                Expr::AnyOp { left, right, .. } | Expr::AllOp { left, right, .. } => {
                    if let (Some(c), Some(p)) = (column(left), placeholder(right)) {
                        arrays.push((c, p));
                    }
                }
                _ => {}
            }
            ControlFlow::<()>::Continue(())
        });
        let mut tables: Vec<String> = Vec::new();
        let _ = visit_relations(stmt, |r| {
            if let Ok(t) = table_name(r) {
                tables.push(t);
            }
            ControlFlow::<()>::Continue(())
        });
        match stmt {
            Statement::Insert(i) => {
                if let Some(ast::SetExpr::Values(v)) = i.source.as_ref().map(|q| q.body.as_ref()) {
                    let names: Option<Vec<String>> = if i.columns.is_empty() {
                        None
                    } else {
                        Some(
                            i.columns
                                .iter()
                                .filter_map(|c| table_name(c).ok())
                                .collect(),
                        )
                    };
                    for row in &v.rows {
                        for (k, e) in row.iter().enumerate() {
                            if let Some(p) = placeholder(e) {
                                match &names {
                                    Some(ns) => {
                                        if let Some(c) = ns.get(k) {
                                            pairs.push((c.clone(), p));
                                        }
                                    }
                                    None => pairs.push((format!("#{k}"), p)),
                                }
                            }
                        }
                    }
                }
            }
            Statement::Update(u) => {
                for a in &u.assignments {
                    if let (ast::AssignmentTarget::ColumnName(c), Some(p)) =
                        (&a.target, placeholder(&a.value))
                    {
                        if let Ok(c) = table_name(c) {
                            pairs.push((c, p));
                        }
                    }
                }
            }
            _ => {}
        }
        if pairs.is_empty() && arrays.is_empty() {
            return out;
        }
        let st = self.state.lock().await;
        let read_ts = st
            .txn
            .as_ref()
            .and_then(|t| t.read_ts().ok())
            .unwrap_or_else(|| self.exec.db.adjudicator.read_ts());
        let overlay = st.txn.as_ref().and_then(|t| t.overlay(t.database.catalog));
        drop(st);
        let mut defs = Vec::new();
        for t in &tables {
            if let Ok(Some(d)) = self
                .exec
                .db
                .lookup_table(self.exec.meta.tables(), read_ts, overlay.as_deref(), t)
                .await
            {
                defs.push(d);
            }
        }
        for (c, p) in arrays {
            if p == 0 || p > n || out[p - 1].is_some() {
                continue;
            }
            let col = defs
                .iter()
                .find_map(|d| d.columns.iter().find(|x| x.name == c).cloned());
            if let Some(col) =
                col.filter(|c| !matches!(c.ty, weft_engine::types::SqlType::Array(_)))
            {
                let array = weft_engine::types::SqlType::Array(Box::new(col.ty));
                out[p - 1] =
                    crate::types::column_type::pg_type_of(&array.arrow_field("", true)).ok();
            }
        }
        for (c, p) in pairs {
            if p == 0 || p > n {
                continue;
            }
            let col = if let Some(k) = c.strip_prefix('#') {
                k.parse::<usize>()
                    .ok()
                    .and_then(|k| defs.first().and_then(|d| d.columns.get(k).cloned()))
            } else {
                defs.iter()
                    .find_map(|d| d.columns.iter().find(|x| x.name == c).cloned())
            };
            let ty = match col.map(|c| c.ty) {
                Some(weft_engine::types::SqlType::Uuid) => Some(Type::UUID),
                Some(weft_engine::types::SqlType::Json) => Some(Type::JSON),
                Some(weft_engine::types::SqlType::Jsonb) => Some(Type::JSONB),
                Some(weft_engine::types::SqlType::Varchar { .. }) => Some(Type::VARCHAR),
                Some(weft_engine::types::SqlType::Char { .. }) => Some(Type::BPCHAR),
                _ => None,
            };
            if ty.is_some() && out[p - 1].is_none() {
                out[p - 1] = ty;
            }
        }
        out
    }
}

/// The type each of parameters `$1..$n` is cast to where it is cast (`$1::int4`,
/// `CAST($1 AS int4)`), the first cast of it deciding, as PostgreSQL's parse analysis
/// does.
fn cast_targets(stmt: &Statement, n: usize) -> Vec<Option<ast::DataType>> {
    use datafusion::sql::sqlparser::ast::{visit_expressions, Expr};
    use std::ops::ControlFlow;
    let mut out = vec![None; n];
    let _ = visit_expressions(stmt, |e| {
        if let Expr::Cast {
            expr, data_type, ..
        } = e
        {
            let mut inner = expr.as_ref();
            while let Expr::Nested(x) = inner {
                inner = x.as_ref();
            }
            if let Expr::Value(v) = inner {
                if let ast::Value::Placeholder(p) = &v.value {
                    if let Some(k) = p
                        .trim_start_matches('$')
                        .parse::<usize>()
                        .ok()
                        .filter(|k| (1..=n).contains(k))
                    {
                        if out[k - 1].is_none() {
                            out[k - 1] = Some(data_type.clone());
                        }
                    }
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
    out
}

/// The Arrow type of each parameter that is cast (see [`cast_targets`]): what a binary
/// parameter is decoded into (a binary numeric needs its scale).
pub(crate) fn cast_arrow_types(stmt: &Statement, n: usize) -> Vec<Option<DataType>> {
    cast_targets(stmt, n)
        .into_iter()
        .map(|t| {
            t.and_then(|t| weft_engine::SqlType::from_ast(&t).ok())
                .map(|t| t.arrow_type())
        })
        .collect()
}

/// The wire type of a parameter cast to `ty` (`$1::int4`), when weft has the type; `oid`
/// and `oid[]` too, which catalog queries bind (asyncpg's type introspection).
fn cast_param_type(ty: &ast::DataType) -> Option<Type> {
    let is_oid = |t: &ast::DataType| {
        matches!(t, ast::DataType::Custom(name, m) if m.is_empty()
            && name.0.last().and_then(|p| p.as_ident()).is_some_and(|i| i.value.eq_ignore_ascii_case("oid")))
    };
    match ty {
        t if is_oid(t) => return Some(Type::OID),
        ast::DataType::Array(
            ast::ArrayElemTypeDef::SquareBracket(inner, _)
            | ast::ArrayElemTypeDef::AngleBracket(inner),
        ) if is_oid(inner) => return Some(Type::OID_ARRAY),
        _ => {}
    }
    let t = weft_engine::SqlType::from_ast(ty).ok()?;
    crate::types::column_type::pg_type_of(&t.arrow_field("", true)).ok()
}

/// asyncpg's type introspection reads `attrtypoids`, an `array_agg` of `pg_attribute.atttypid`,
/// which it must be able to decode without introspecting: PostgreSQL types it oid[].
/// (An aggregate's result does not keep its argument's oid marking, so the column is
/// marked here by name.)
fn mark_oid_arrays(schema: SchemaRef) -> SchemaRef {
    let is_oid_list = |f: &Field| {
        f.name() == "attrtypoids"
            && matches!(f.data_type(), DataType::List(item) if item.data_type() == &DataType::Int32)
    };
    if !schema.fields().iter().any(|f| is_oid_list(f)) {
        return schema;
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let mut f = f.as_ref().clone();
            if is_oid_list(&f) {
                let mut md = f.metadata().clone();
                md.insert(
                    weft_engine::types::PG_TYPE_KEY.to_string(),
                    "oid[]".to_string(),
                );
                f = f.with_metadata(md);
            }
            f
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// The highest `$n` a statement uses.
fn max_placeholder(stmt: &Statement) -> usize {
    use datafusion::sql::sqlparser::ast::{visit_expressions, Expr};
    use std::ops::ControlFlow;
    let mut n = 0;
    let _ = visit_expressions(stmt, |e| {
        if let Expr::Value(v) = e {
            if let ast::Value::Placeholder(p) = &v.value {
                if let Ok(k) = p.trim_start_matches('$').parse::<usize>() {
                    n = n.max(k);
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
    n
}
