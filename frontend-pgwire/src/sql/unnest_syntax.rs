//! `unnest` in FROM as PostgreSQL has it, rewritten into forms DataFusion plans (Django's
//! introspection of constraints and indexes sends both):
//!
//! - `unnest(a, b) WITH ORDINALITY u(x, y, n)` numbers the rows: the ordinal becomes one
//!   more array unnested beside the others, `generate_series(1, greatest(cardinality(a),
//!   cardinality(b)))` (arrays of unequal length are padded with NULLs, so the longest
//!   counts);
//! - `FROM t, unnest(t.a, t.b) u(x, y)`, an unnest of the columns of the table before it
//!   (a lateral reference, which DataFusion does not plan in FROM), becomes the unnests in
//!   the select list of a derived table over `t` that keeps `t`'s name:
//!   `FROM (SELECT t.*, unnest(t.a) AS x, unnest(t.b) AS y FROM t) AS t`, and `u.x` in the
//!   query becomes `t.x`;
//! - `FROM unnest(outer.keys) WITH ORDINALITY u(k, n) JOIN r ON u.k = r.x ... ORDER BY
//!   u.n` in a subquery (an unnest of the outer query's `conkey`, `confkey` or `indkey`,
//!   whose elements are distinct, as catalog queries walk a key's columns) becomes a
//!   membership test, `r.x = ANY(outer.keys)`, ordered by `array_position(outer.keys,
//!   r.x)`.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    self, Expr, Ident, ObjectName, ObjectNamePart, Query, Select, SelectItem, SetExpr, TableAlias,
    TableFactor, TableWithJoins, VisitMut, VisitorMut,
};

use crate::sql::compat::call_args as call;

/// `WITH ORDINALITY` as one more array: the row numbers.
fn ordinality(array_exprs: &mut Vec<Expr>) {
    let lengths: Vec<Expr> = array_exprs
        .iter()
        .map(|e| call("cardinality", vec![e.clone()]))
        .collect();
    let n = if lengths.len() == 1 {
        lengths
            .into_iter()
            .next()
            .unwrap_or(Expr::value(ast::Value::Null))
    } else {
        call("greatest", lengths)
    };
    array_exprs.push(call(
        "generate_series",
        vec![Expr::value(ast::Value::Number("1".into(), false)), n],
    ));
}

/// The name a FROM item is referred to by: its alias, or the table's name.
fn referred_name(f: &TableFactor) -> Option<Ident> {
    match f {
        TableFactor::Table { alias: Some(a), .. } | TableFactor::Derived { alias: Some(a), .. } => {
            Some(a.name.clone())
        }
        TableFactor::Table {
            name, alias: None, ..
        } => name.0.last()?.as_ident().cloned(),
        _ => None,
    }
}

/// Whether `e` names a column of `table` (`table.col`).
fn refers_to(e: &Expr, table: &Ident) -> bool {
    let mut found = false;
    let mut e = e.clone();
    let _ = ast::visit_expressions_mut(&mut e, |x| {
        if let Expr::CompoundIdentifier(parts) = x {
            if parts.len() == 2 && parts[0].value.eq_ignore_ascii_case(&table.value) {
                found = true;
            }
        }
        ControlFlow::<()>::Continue(())
    });
    found
}

/// `FROM t, unnest(t.a ...) u(...)` as a derived table over `t`.
fn lateral(select: &mut Select) {
    let [first, second] = select.from.as_slice() else {
        return;
    };
    if !first.joins.is_empty() || !second.joins.is_empty() {
        return;
    }
    let TableFactor::UNNEST {
        alias,
        array_exprs,
        with_offset: false,
        with_ordinality: false,
        ..
    } = &second.relation
    else {
        return;
    };
    let Some(table) = referred_name(&first.relation) else {
        return;
    };
    if !array_exprs.iter().any(|e| refers_to(e, &table)) {
        return;
    }
    let names: Vec<Ident> = match alias {
        Some(a) if !a.columns.is_empty() => a.columns.iter().map(|c| c.name.clone()).collect(),
        Some(a) if array_exprs.len() == 1 => vec![a.name.clone()],
        None if array_exprs.len() == 1 => vec![Ident::new("unnest")],
        _ => return,
    };
    if names.len() != array_exprs.len() {
        return;
    }
    let mut projection = vec![SelectItem::QualifiedWildcard(
        ast::SelectItemQualifiedWildcardKind::ObjectName(ObjectName(vec![
            ObjectNamePart::Identifier(table.clone()),
        ])),
        ast::WildcardAdditionalOptions::default(),
    )];
    for (e, n) in array_exprs.iter().zip(&names) {
        projection.push(SelectItem::ExprWithAlias {
            expr: call("unnest", vec![e.clone()]),
            alias: n.clone(),
        });
    }
    let unnest_name = alias.as_ref().map(|a| a.name.clone());
    let inner = Select {
        projection,
        from: vec![first.clone()],
        selection: None,
        ..select.clone()
    };
    let inner = Select {
        group_by: ast::GroupByExpr::Expressions(vec![], vec![]),
        having: None,
        distinct: None,
        top: None,
        into: None,
        lateral_views: vec![],
        cluster_by: vec![],
        distribute_by: vec![],
        sort_by: vec![],
        named_window: vec![],
        qualify: None,
        ..inner
    };
    let derived = TableFactor::Derived {
        lateral: false,
        subquery: Box::new(Query {
            with: None,
            body: Box::new(SetExpr::Select(Box::new(inner))),
            order_by: None,
            limit_clause: None,
            fetch: None,
            locks: vec![],
            for_clause: None,
            settings: None,
            format_clause: None,
            pipe_operators: vec![],
        }),
        alias: Some(TableAlias {
            explicit: true,
            name: table.clone(),
            columns: vec![],
            at: None,
        }),
        sample: None,
    };
    select.from = vec![TableWithJoins {
        relation: derived,
        joins: vec![],
    }];
    // `u.x` is now `t.x`.
    if let Some(u) = unnest_name {
        let _ = ast::visit_expressions_mut(select, |x| {
            if let Expr::CompoundIdentifier(parts) = x {
                if parts.len() == 2 && parts[0].value.eq_ignore_ascii_case(&u.value) {
                    parts[0] = table.clone();
                }
            }
            ControlFlow::<()>::Continue(())
        });
    }
}

/// Catalog columns that list a key's column numbers, each at most once.
const KEY_ARRAYS: &[&str] = &["conkey", "confkey", "indkey"];

/// `U.col` or `col` for a column `col` of the unnest `U`.
fn is_unnest_column(e: &Expr, u: &Ident, col: &Ident) -> bool {
    match e {
        Expr::CompoundIdentifier(p) => {
            p.len() == 2
                && p[0].value.eq_ignore_ascii_case(&u.value)
                && p[1].value.eq_ignore_ascii_case(&col.value)
        }
        Expr::Identifier(id) => id.value.eq_ignore_ascii_case(&col.value),
        _ => false,
    }
}

/// The subquery `SELECT ... FROM unnest(E) WITH ORDINALITY u(k, n) JOIN r ON u.k = r.x
/// WHERE w ORDER BY u.n`, where `E` is an array of the outer query's (a key's column
/// numbers, as in `pg_constraint.conkey`), as `SELECT ... FROM r WHERE r.x = ANY(E) AND w
/// ORDER BY array_position(E, r.x)`: the same rows in the same order when `E` holds
/// distinct values, and a correlation weft runs. DataFusion plans no unnest of an outer
/// column.
fn correlated_key_unnest(q: &mut Query) {
    let SetExpr::Select(select) = q.body.as_mut() else {
        return;
    };
    let [from] = select.from.as_slice() else {
        return;
    };
    let [join] = from.joins.as_slice() else {
        return;
    };
    let TableFactor::UNNEST {
        alias: Some(alias),
        array_exprs,
        with_offset: false,
        with_ordinality: true,
        ..
    } = &from.relation
    else {
        return;
    };
    let ([e], [key, ord]) = (array_exprs.as_slice(), alias.columns.as_slice()) else {
        return;
    };
    // Only the catalog's key arrays, whose elements are distinct: over an array with a
    // repeated element the membership test would return its row once, not once per
    // repetition, and a wrong answer is worse than DataFusion's refusal.
    let key_array = match e {
        Expr::CompoundIdentifier(p) => p.last(),
        Expr::Identifier(id) => Some(id),
        _ => None,
    }
    .is_some_and(|id| KEY_ARRAYS.contains(&id.value.to_ascii_lowercase().as_str()));
    if !key_array {
        return;
    }
    let Some(joined) = referred_name(&join.relation) else {
        return;
    };
    if refers_to(e, &joined) {
        return;
    }
    let (ast::JoinOperator::Join(ast::JoinConstraint::On(on))
    | ast::JoinOperator::Inner(ast::JoinConstraint::On(on))) = &join.join_operator
    else {
        return;
    };
    let u = alias.name.clone();
    let (key, ord) = (key.name.clone(), ord.name.clone());
    let x = match on {
        Expr::BinaryOp {
            left,
            op: ast::BinaryOperator::Eq,
            right,
        } => {
            if is_unnest_column(left, &u, &key) {
                right.as_ref().clone()
            } else if is_unnest_column(right, &u, &key) {
                left.as_ref().clone()
            } else {
                return;
            }
        }
        _ => return,
    };
    let (e, relation) = (e.clone(), join.relation.clone());
    let u = &u;
    // The ORDER BY must be the ordinality alone; nothing else may name the unnest.
    let order = match &q.order_by {
        None => None,
        Some(ob) => match &ob.kind {
            ast::OrderByKind::Expressions(exprs)
                if exprs.len() == 1 && is_unnest_column(&exprs[0].expr, u, &ord) =>
            {
                Some(exprs[0].clone())
            }
            _ => return,
        },
    };
    let mut rest = select.clone();
    rest.from = vec![];
    let mut other_use = false;
    let _ = ast::visit_expressions_mut(&mut *rest, |x| {
        if let Expr::CompoundIdentifier(p) = x {
            if p.len() == 2 && p[0].value.eq_ignore_ascii_case(&u.value) {
                other_use = true;
            }
        }
        ControlFlow::<()>::Continue(())
    });
    if other_use {
        return;
    }
    let member = Expr::AnyOp {
        left: Box::new(x.clone()),
        compare_op: ast::BinaryOperator::Eq,
        right: Box::new(e.clone()),
        is_some: false,
    };
    select.selection = Some(match select.selection.take() {
        Some(w) => Expr::BinaryOp {
            left: Box::new(member),
            op: ast::BinaryOperator::And,
            right: Box::new(Expr::Nested(Box::new(w))),
        },
        None => member,
    });
    select.from = vec![TableWithJoins {
        relation,
        joins: vec![],
    }];
    if let (Some(mut o), Some(ob)) = (order, q.order_by.as_mut()) {
        o.expr = call("array_position", vec![e.clone(), x]);
        ob.kind = ast::OrderByKind::Expressions(vec![o]);
    }
}

struct Rewrite;

impl VisitorMut for Rewrite {
    type Break = ();

    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        correlated_key_unnest(q);
        ControlFlow::Continue(())
    }

    fn post_visit_table_factor(&mut self, f: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::UNNEST {
            array_exprs,
            with_ordinality,
            ..
        } = f
        {
            if *with_ordinality {
                ordinality(array_exprs);
                *with_ordinality = false;
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        if let SetExpr::Select(s) = q.body.as_mut() {
            lateral(s);
        }
        ControlFlow::Continue(())
    }
}

/// Rewrites the statement's `unnest` FROM items (see the module's documentation).
pub fn rewrite(s: &mut ast::Statement) {
    let _ = s.visit(&mut Rewrite);
}
