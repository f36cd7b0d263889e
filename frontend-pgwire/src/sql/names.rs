//! Result column names as PostgreSQL chooses them: a column reference keeps its name, a
//! function call takes the function's name, a cast the name of what it casts (or the type),
//! anything else is `?column?`. DataFusion names columns after the whole expression.

use datafusion::sql::sqlparser::ast::{Expr, Query, SelectItem, SetExpr, Statement};

/// The name PostgreSQL would use for an identifier: unquoted names fold to lower case.
pub fn ident_name(id: &datafusion::sql::sqlparser::ast::Ident) -> String {
    if id.quote_style.is_some() {
        id.value.clone()
    } else {
        id.value.to_lowercase()
    }
}

/// A one-part object name as PostgreSQL folds it (a schema's, a role's); a longer name as
/// written.
pub fn object_ident(n: &datafusion::sql::sqlparser::ast::ObjectName) -> String {
    match n.0.as_slice() {
        [p] => p
            .as_ident()
            .map(ident_name)
            .unwrap_or_else(|| n.to_string()),
        _ => n.to_string(),
    }
}

fn type_name(t: &datafusion::sql::sqlparser::ast::DataType) -> String {
    use datafusion::sql::sqlparser::ast::{ArrayElemTypeDef, DataType};
    // An array type is named after its element type (`'{1}'::int[]` is `int4`).
    if let DataType::Array(
        ArrayElemTypeDef::SquareBracket(inner, _)
        | ArrayElemTypeDef::AngleBracket(inner)
        | ArrayElemTypeDef::Parenthesis(inner),
    ) = t
    {
        return type_name(inner);
    }
    let s = t.to_string().to_lowercase();
    let base = s.split('(').next().unwrap_or(&s).trim().to_string();
    match base.as_str() {
        "int" | "integer" => "int4".into(),
        "bigint" => "int8".into(),
        "smallint" => "int2".into(),
        "double precision" | "float8" | "double" => "float8".into(),
        "real" | "float4" => "float4".into(),
        "boolean" | "bool" => "bool".into(),
        "character varying" | "varchar" => "varchar".into(),
        "character" | "char" => "bpchar".into(),
        "decimal" => "numeric".into(),
        "timestamp with time zone" | "timestamptz" => "timestamptz".into(),
        "timestamp without time zone" => "timestamp".into(),
        other => other.to_string(),
    }
}

fn figure(e: &Expr) -> Option<String> {
    match e {
        Expr::Identifier(id) => Some(ident_name(id)),
        Expr::CompoundIdentifier(ids) => ids.last().map(ident_name),
        Expr::Function(f) => f
            .name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(|i| i.value.to_lowercase()),
        // A cast of a constant or of another cast is named after its own type
        // (`'3.7'::float8::int` is `int4`), as PostgreSQL's weak names give way.
        Expr::Cast {
            expr, data_type, ..
        } => match expr.as_ref() {
            Expr::Cast { .. } | Expr::Value(_) => Some(type_name(data_type)),
            inner => figure(inner).or_else(|| Some(type_name(data_type))),
        },
        Expr::Nested(e) => figure(e),
        // `xs[1]` is named after the array.
        Expr::CompoundFieldAccess { root, .. } => figure(root),
        Expr::Case { .. } => Some("case".into()),
        Expr::Exists { .. } => Some("exists".into()),
        // A scalar subquery is named after its own column, as in PostgreSQL.
        Expr::Subquery(q) => query_names(q).and_then(|n| n.into_iter().next()).map(|n| {
            match n.strip_prefix(SUBQUERY_NAME_PREFIX) {
                Some(original) => original.to_string(),
                None => n,
            }
        }),
        Expr::Array(_) => Some("array".into()),
        Expr::Extract { .. } => Some("extract".into()),
        Expr::Substring { .. } => Some("substring".into()),
        Expr::Trim { .. } => Some("btrim".into()),
        Expr::Position { .. } => Some("position".into()),
        Expr::Ceil { .. } => Some("ceil".into()),
        Expr::Floor { .. } => Some("floor".into()),
        Expr::Overlay { .. } => Some("overlay".into()),
        _ => None,
    }
}

/// The prefix of the alias a rewritten scalar subquery's column carries (compat.rs); the
/// result column is named after what follows it.
pub const SUBQUERY_NAME_PREFIX: &str = "__weft_sq_";

/// The name PostgreSQL gives a result column computed by `e`.
pub fn expr_name(e: &Expr) -> String {
    figure(e).unwrap_or_else(|| "?column?".into())
}

fn select_names(body: &SetExpr) -> Option<Vec<String>> {
    match body {
        SetExpr::Select(sel) => sel
            .projection
            .iter()
            .map(|item| match item {
                SelectItem::UnnamedExpr(e) => Some(figure(e).unwrap_or_else(|| "?column?".into())),
                SelectItem::ExprWithAlias { alias, .. } => Some(ident_name(alias)),
                _ => None,
            })
            .collect(),
        SetExpr::SetOperation { left, .. } => select_names(left),
        SetExpr::Query(q) => query_names(q),
        _ => None,
    }
}

fn query_names(q: &Query) -> Option<Vec<String>> {
    select_names(&q.body)
}

/// The PostgreSQL names of a statement's result columns, when they can be known from the
/// statement alone (no `*` in the select list).
pub fn result_names(stmt: &Statement) -> Option<Vec<String>> {
    match stmt {
        Statement::Query(q) => query_names(q),
        _ => None,
    }
}

/// The names of a RETURNING list.
pub fn item_names(items: &[SelectItem]) -> Option<Vec<String>> {
    items
        .iter()
        .map(|item| match item {
            SelectItem::UnnamedExpr(e) => Some(figure(e).unwrap_or_else(|| "?column?".into())),
            SelectItem::ExprWithAlias { alias, .. } => Some(ident_name(alias)),
            _ => None,
        })
        .collect()
}

/// Renames a schema's fields, keeping types and metadata.
pub fn rename(
    schema: &arrow::datatypes::SchemaRef,
    names: Option<Vec<String>>,
) -> arrow::datatypes::SchemaRef {
    match names {
        Some(n) if n.len() == schema.fields().len() => {
            std::sync::Arc::new(arrow::datatypes::Schema::new_with_metadata(
                schema
                    .fields()
                    .iter()
                    .zip(n)
                    .map(|(f, n)| f.as_ref().clone().with_name(n))
                    .collect::<Vec<_>>(),
                schema.metadata().clone(),
            ))
        }
        _ => schema.clone(),
    }
}

/// The name DataFusion would give a select-list item, closely enough to tell when two
/// items would get the same one (any two items holding subqueries are taken to).
fn planner_name(item: &SelectItem) -> Option<String> {
    match item {
        SelectItem::UnnamedExpr(e) => {
            let mut e = e;
            while let Expr::Nested(inner) = e {
                e = inner;
            }
            Some(match e {
                Expr::Identifier(id) => ident_name(id),
                Expr::CompoundIdentifier(ids) => ids.last().map(ident_name)?,
                e if e.to_string().to_lowercase().contains("select") => "(<subquery>)".into(),
                e => e.to_string().to_lowercase(),
            })
        }
        SelectItem::ExprWithAlias { alias, .. } => Some(ident_name(alias)),
        _ => None,
    }
}

fn disambiguate_body(body: &mut SetExpr) {
    match body {
        SetExpr::Select(sel) => {
            let names: Option<Vec<String>> = sel.projection.iter().map(planner_name).collect();
            // With a `*` the result's names come from DataFusion: leave the list alone.
            let Some(names) = names else { return };
            for i in 1..names.len() {
                if names[..i].contains(&names[i]) {
                    let item = std::mem::replace(
                        &mut sel.projection[i],
                        SelectItem::Wildcard(Default::default()),
                    );
                    let expr = match item {
                        SelectItem::UnnamedExpr(e) => e,
                        SelectItem::ExprWithAlias { expr, .. } => expr,
                        other => {
                            sel.projection[i] = other;
                            continue;
                        }
                    };
                    sel.projection[i] = SelectItem::ExprWithAlias {
                        expr,
                        alias: datafusion::sql::sqlparser::ast::Ident::with_quote(
                            '"',
                            format!("__weft_column_{}", i + 1),
                        ),
                    };
                }
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            disambiguate_body(left);
            disambiguate_body(right);
        }
        SetExpr::Query(q) => disambiguate_body(&mut q.body),
        _ => {}
    }
}

/// PostgreSQL lets a select list repeat a name (`SELECT a, a`, two subqueries, two
/// `count(*)`); DataFusion requires distinct ones. Repeats in the statement's own result
/// (not in subqueries, whose names may be referenced) get internal aliases; the result
/// columns keep PostgreSQL's names through [`result_names`], taken before this.
pub fn disambiguate(stmt: &mut Statement) {
    match stmt {
        Statement::Query(q) => disambiguate_body(&mut q.body),
        Statement::Insert(ins) => {
            if let Some(q) = ins.source.as_mut() {
                disambiguate_body(&mut q.body);
            }
        }
        _ => {}
    }
}
