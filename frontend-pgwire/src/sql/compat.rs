//! What lets DataFusion run the catalog queries that psql, drivers and ORMs send.
//!
//! Statements that read the system catalogs (see [`is_catalog_query`]) are rewritten before
//! planning: `OPERATOR(pg_catalog.~)` becomes `~`, `COLLATE pg_catalog.default` goes (weft
//! compares text bytewise, PostgreSQL's "C" collation), `pg_catalog.f()` becomes `f()`,
//! `'t'::regclass` becomes the table's oid, `x = ANY('{a,b}')` becomes array membership,
//! and so on, by the rewrite rules of `datafusion-pg-catalog`. Parts of psql's queries
//! about features weft does not have (storage options, row security policies, extended
//! statistics, publications, inheritance) are replaced by what they return on a database
//! without them, so that `\d` prints the same as PostgreSQL does for the same tables.

use std::sync::{Arc, OnceLock};

use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion_pg_catalog::sql::rules::{
    AliasDuplicatedProjectionRewrite, CurrentUserVariableToSessionUserFunctionCall,
    FixArrayLiteral, FixVersionColumnName, ResolveUnqualifiedIdentifier,
    RewriteArrayAnyAllOperation, RewritePgCatalogOperator, RewriteRegCastToSubquery,
    SqlStatementRewriteRule, StripCallableQualifier, StripCollate,
};

/// Whether a query reads the system catalogs or uses PostgreSQL's catalog syntax.
pub fn is_catalog_query(sql: &str) -> bool {
    // Runs on every statement parsed: no allocation, ASCII case-insensitive.
    let b = sql.as_bytes();
    let has = |needle: &[u8]| {
        b.windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
    };
    has(b"pg_") || has(b"information_schema") || has(b"::reg")
}

/// Fragments of psql 15's queries (`\d+`) over features weft does not have, and what they
/// evaluate to without them.
const FRAGMENTS: &[(&str, &str)] = &[
    // The table of a foreign key that references the described one, by name.
    (
        "conrelid::pg_catalog.regclass AS ontable",
        "weft_relname(conrelid) AS ontable",
    ),
    // Storage options: weft has none.
    (
        "pg_catalog.array_to_string(c.reloptions || array(select 'toast.' || x from pg_catalog.unnest(tc.reloptions) x), ', ')",
        "''",
    ),
    // A column's collation when it differs from its type's: weft has no COLLATE clause.
    (
        "(SELECT c.collname FROM pg_catalog.pg_collation c, pg_catalog.pg_type t\n   WHERE c.oid = a.attcollation AND t.oid = a.atttypid AND a.attcollation <> t.typcollation)",
        "CAST(NULL AS TEXT)",
    ),
    // A name's first character (pg_dump's test for array types): PostgreSQL subscripts a
    // `name` from 0.
    ("typname[0] = '_'", "left(typname, 1) = '_'"),
    // Foreign-data options (pg_dump): weft has no foreign tables, wrappers or servers.
    (
        "ARRAY(SELECT pg_catalog.quote_ident(option_name) || ' ' || pg_catalog.quote_literal(option_value) FROM pg_catalog.pg_options_to_table(attfdwoptions) ORDER BY option_name)",
        "CAST(NULL AS TEXT[])",
    ),
    (
        "ARRAY(SELECT quote_ident(option_name) || ' ' || quote_literal(option_value) FROM pg_options_to_table(fdwoptions) ORDER BY option_name)",
        "CAST(NULL AS TEXT[])",
    ),
    (
        "ARRAY(SELECT quote_ident(option_name) || ' ' || quote_literal(option_value) FROM pg_options_to_table(srvoptions) ORDER BY option_name)",
        "CAST(NULL AS TEXT[])",
    ),
];

/// psql 15's queries, by how they begin, about features weft does not have (row security
/// policies, extended statistics, publications, table inheritance and partitions,
/// triggers), and
/// what they return on a database without them: no rows.
const EMPTY_ANSWERS: &[(&str, &str)] = &[
    (
        "SELECT pol.polname, pol.polpermissive,",
        "SELECT CAST(NULL AS TEXT) AS polname WHERE false",
    ),
    (
        "SELECT oid, stxrelid::pg_catalog.regclass,",
        "SELECT CAST(NULL AS INT) AS oid WHERE false",
    ),
    (
        "SELECT pubname\n     , NULL\n     , NULL\nFROM pg_catalog.pg_publication p",
        "SELECT CAST(NULL AS TEXT) AS pubname WHERE false",
    ),
    (
        "SELECT c.oid::pg_catalog.regclass\nFROM pg_catalog.pg_class c, pg_catalog.pg_inherits i",
        "SELECT CAST(NULL AS TEXT) AS oid WHERE false",
    ),
    (
        "SELECT c.oid::pg_catalog.regclass, c.relkind, inhdetachpending,",
        "SELECT CAST(NULL AS TEXT) AS oid WHERE false",
    ),
    // pg_dump's reads of catalogs that hold only PostgreSQL's built-in objects in weft
    // (operators, access methods, text search parsers and templates: pg_dump skips
    // built-ins) or objects weft does not have (rewrite rules, event triggers, policies,
    // publications).
    (
        "SELECT tableoid, oid, oprname, oprnamespace,",
        "SELECT CAST(NULL AS INT) AS oid WHERE false",
    ),
    (
        "SELECT tableoid, oid, amname, amtype,",
        "SELECT CAST(NULL AS INT) AS oid WHERE false",
    ),
    (
        "SELECT tableoid, oid, prsname, prsnamespace,",
        "SELECT CAST(NULL AS INT) AS oid WHERE false",
    ),
    (
        "SELECT tableoid, oid, tmplname, tmplnamespace,",
        "SELECT CAST(NULL AS INT) AS oid WHERE false",
    ),
    (
        "SELECT tableoid, oid, rulename, ev_class AS ruletable,",
        "SELECT CAST(NULL AS INT) AS oid WHERE false",
    ),
    (
        "SELECT e.tableoid, e.oid, evtname,",
        "SELECT CAST(NULL AS INT) AS oid WHERE false",
    ),
    (
        "SELECT pol.oid, pol.tableoid, pol.polrelid,",
        "SELECT CAST(NULL AS INT) AS oid WHERE false",
    ),
    (
        "SELECT tableoid, oid, prpubid, prrelid,",
        "SELECT CAST(NULL AS INT) AS oid WHERE false",
    ),
    // Per-database and per-role settings (ALTER DATABASE|ROLE ... SET): weft has none.
    (
        "SELECT unnest(setconfig) FROM pg_db_role_setting",
        "SELECT CAST(NULL AS TEXT) AS unnest WHERE false",
    ),
    (
        "SELECT rolname, unnest(setconfig) FROM pg_db_role_setting",
        "SELECT CAST(NULL AS TEXT) AS rolname WHERE false",
    ),
    // Partitioned tables (pg_dump): weft has none.
    (
        "SELECT partrelid FROM pg_partitioned_table WHERE",
        "SELECT CAST(NULL AS INT) AS partrelid WHERE false",
    ),
    // User triggers: weft has none (its foreign keys are not triggers).
    (
        "SELECT t.tgname, pg_catalog.pg_get_triggerdef(t.oid, true)",
        "SELECT CAST(NULL AS TEXT) AS tgname WHERE false",
    ),
];

struct Compat {
    rules: Vec<Arc<dyn SqlStatementRewriteRule>>,
}

fn compat() -> &'static Compat {
    static COMPAT: OnceLock<Compat> = OnceLock::new();
    COMPAT.get_or_init(|| Compat {
        // Not the crate's RemoveSubqueryFromProjection: it replaces correlated scalar
        // subqueries with NULL, which DataFusion can run.
        rules: vec![
            Arc::new(crate::sql::system_columns::TableOidColumn),
            Arc::new(AliasDuplicatedProjectionRewrite),
            Arc::new(ResolveUnqualifiedIdentifier),
            Arc::new(RewriteArrayAnyAllOperation),
            Arc::new(StripCallableQualifier),
            Arc::new(FixArrayLiteral),
            Arc::new(CurrentUserVariableToSessionUserFunctionCall),
            Arc::new(StripCollate),
            Arc::new(RewritePgCatalogOperator),
            Arc::new(RegprocLiteralAsName),
            Arc::new(crate::sql::system_columns::CatalogRegclass),
            Arc::new(RewriteRegCastToSubquery::new()),
            Arc::new(RegclassOfExpression),
            Arc::new(RegtypeText),
            Arc::new(GenerateSubscripts),
            Arc::new(ExpandArrayAndFieldAccess),
            Arc::new(FixVersionColumnName),
            Arc::new(AggregateScalarSubqueries),
        ],
    })
}

/// DataFusion runs a correlated scalar subquery only if it aggregates: `(SELECT x FROM ...
/// WHERE <correlated>)` becomes `(SELECT max(x) FROM ...)`, the same value where at most one
/// row matches, as in every catalog lookup by key.
#[derive(Debug)]
struct AggregateScalarSubqueries;

impl SqlStatementRewriteRule for AggregateScalarSubqueries {
    fn rewrite(&self, mut s: Statement) -> Statement {
        use datafusion::sql::sqlparser::ast::{
            visit_expressions_mut, Expr, GroupByExpr, SelectItem, SetExpr,
        };
        use std::ops::ControlFlow;
        let _ = visit_expressions_mut(&mut s, |e| {
            if let Expr::Subquery(q) = e {
                let limited = q.limit_clause.is_some() || q.fetch.is_some();
                if let SetExpr::Select(sel) = q.body.as_mut() {
                    let grouped =
                        !matches!(&sel.group_by, GroupByExpr::Expressions(g, _) if g.is_empty());
                    if !limited && !grouped && sel.projection.len() == 1 && sel.distinct.is_none() {
                        let item = &mut sel.projection[0];
                        let (inner, alias) = match item {
                            SelectItem::UnnamedExpr(x) => (x.clone(), None),
                            SelectItem::ExprWithAlias { expr, alias } => {
                                (expr.clone(), Some(alias.clone()))
                            }
                            _ => return ControlFlow::<()>::Continue(()),
                        };
                        if !matches!(inner, Expr::Function(_)) || !is_aggregate(&inner) {
                            let wrapped = call("max", inner);
                            *item = match alias {
                                Some(alias) => SelectItem::ExprWithAlias {
                                    expr: wrapped,
                                    alias,
                                },
                                None => SelectItem::UnnamedExpr(wrapped),
                            };
                        }
                    }
                }
            }
            hoist_outer_conditions(e);
            ControlFlow::Continue(())
        });
        s
    }
}

/// `(SELECT x FROM d WHERE d.k = a.k AND a.flag)`: a condition on the outer row alone keeps
/// DataFusion from decorrelating the subquery, so it moves outside:
/// `CASE WHEN a.flag THEN (SELECT x FROM d WHERE d.k = a.k) END`.
fn hoist_outer_conditions(e: &mut datafusion::sql::sqlparser::ast::Expr) {
    use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
    use datafusion::sql::sqlparser::ast::{
        visit_expressions, BinaryOperator, CaseWhen, Expr, SetExpr, TableFactor,
    };
    use std::ops::ControlFlow;
    let Expr::Subquery(q) = e else { return };
    let SetExpr::Select(sel) = q.body.as_mut() else {
        return;
    };
    let mut local: Vec<String> = Vec::new();
    for twj in &sel.from {
        for f in std::iter::once(&twj.relation).chain(twj.joins.iter().map(|j| &j.relation)) {
            if let TableFactor::Table { name, alias, .. } = f {
                if let Some(a) = alias {
                    local.push(a.name.value.to_lowercase());
                } else if let Some(last) = name.0.last().and_then(|p| p.as_ident()) {
                    local.push(last.value.to_lowercase());
                }
            } else {
                return;
            }
        }
    }
    let Some(selection) = sel.selection.take() else {
        return;
    };
    fn conjuncts(e: Expr, out: &mut Vec<Expr>) {
        match e {
            Expr::BinaryOp {
                left,
                op: BinaryOperator::And,
                right,
            } => {
                conjuncts(*left, out);
                conjuncts(*right, out);
            }
            Expr::Nested(inner)
                if matches!(
                    *inner,
                    Expr::BinaryOp {
                        op: BinaryOperator::And,
                        ..
                    }
                ) =>
            {
                conjuncts(*inner, out)
            }
            other => out.push(other),
        }
    }
    let mut parts = Vec::new();
    conjuncts(selection, &mut parts);
    let outer_only = |c: &Expr| {
        let mut outer = false;
        let mut other = false;
        let _ = visit_expressions(c, |x| {
            match x {
                Expr::CompoundIdentifier(ids) if ids.len() >= 2 => {
                    // `t.c` or `schema.t.c`: the table is the part before the column.
                    if local.contains(&ids[ids.len() - 2].value.to_lowercase()) {
                        other = true;
                    } else {
                        outer = true;
                    }
                }
                Expr::Identifier(_) | Expr::Subquery(_) | Expr::Exists { .. } => other = true,
                _ => {}
            }
            ControlFlow::<()>::Continue(())
        });
        outer && !other
    };
    let (hoisted, kept): (Vec<Expr>, Vec<Expr>) = parts.into_iter().partition(|c| outer_only(c));
    // A correlation through a computed expression of the outer row (`inner = f(outer.c)`)
    // is beyond DataFusion's decorrelation: such a subquery is answered NULL. (SQLAlchemy's
    // identity-options lookup is one; weft reports identity columns through attidentity.)
    let computed_correlation = kept.iter().any(|c| {
        let mut found = false;
        let _ = visit_expressions(c, |x| {
            if let Expr::Function(_) | Expr::Cast { .. } = x {
                let _ = visit_expressions(x, |y| {
                    if let Expr::CompoundIdentifier(ids) = y {
                        if ids.len() >= 2
                            && !local.contains(&ids[ids.len() - 2].value.to_lowercase())
                        {
                            found = true;
                        }
                    }
                    ControlFlow::<()>::Continue(())
                });
            }
            ControlFlow::<()>::Continue(())
        });
        found
    });
    if computed_correlation {
        *e = Expr::Value(datafusion::sql::sqlparser::ast::Value::Null.into());
        return;
    }
    let and = |v: Vec<Expr>| {
        v.into_iter().reduce(|l, r| Expr::BinaryOp {
            left: Box::new(l),
            op: BinaryOperator::And,
            right: Box::new(r),
        })
    };
    sel.selection = and(kept);
    if let Some(cond) = and(hoisted) {
        let sub = e.clone();
        *e = Expr::Case {
            case_token: AttachedToken::empty(),
            end_token: AttachedToken::empty(),
            operand: None,
            conditions: vec![CaseWhen {
                condition: cond,
                result: sub,
            }],
            else_result: None,
        };
    }
}

/// `CAST(x AS regclass)` of a column or expression (not a literal, which
/// `RewriteRegCastToSubquery` resolves): `to_regclass(x)`, which takes a name or an oid.
#[derive(Debug)]
struct RegclassOfExpression;

impl SqlStatementRewriteRule for RegclassOfExpression {
    fn rewrite(&self, mut s: Statement) -> Statement {
        use datafusion::sql::sqlparser::ast::{visit_expressions_mut, DataType, Expr};
        use std::ops::ControlFlow;
        let _ = visit_expressions_mut(&mut s, |e| {
            if let Expr::Cast {
                expr, data_type, ..
            } = e
            {
                let regclass = match data_type {
                    DataType::Regclass => true,
                    DataType::Custom(n, a) if a.is_empty() => {
                        n.0.last()
                            .and_then(|p| p.as_ident())
                            .is_some_and(|i| i.value.eq_ignore_ascii_case("regclass"))
                    }
                    _ => false,
                };
                if regclass && !matches!(expr.as_ref(), Expr::Value(_)) {
                    let inner = (**expr).clone();
                    *e = call("to_regclass", inner);
                }
            }
            ControlFlow::<()>::Continue(())
        });
        s
    }
}

/// `x::regtype::text` of a column or expression: the type's name, as PostgreSQL's regtype
/// output writes it (`integer`, `character varying`, `-` for 0, the number for an oid that
/// names no type). asyncpg's type introspection reads element type names so.
#[derive(Debug)]
struct RegtypeText;

impl SqlStatementRewriteRule for RegtypeText {
    fn rewrite(&self, mut s: Statement) -> Statement {
        use datafusion::sql::sqlparser::ast::{visit_expressions_mut, DataType, Expr};
        use std::ops::ControlFlow;
        let named = |t: &DataType, name: &str| match t {
            DataType::Custom(n, a) if a.is_empty() => {
                n.0.last()
                    .and_then(|p| p.as_ident())
                    .is_some_and(|i| i.value.eq_ignore_ascii_case(name))
            }
            _ => false,
        };
        let _ = visit_expressions_mut(&mut s, |e| {
            if let Expr::Cast {
                expr: outer,
                data_type: DataType::Text,
                ..
            } = e
            {
                if let Expr::Cast {
                    expr: inner,
                    data_type,
                    ..
                } = outer.as_ref()
                {
                    if named(data_type, "regtype") && !matches!(inner.as_ref(), Expr::Value(_)) {
                        let x = inner.to_string();
                        let sql = format!(
                            "CASE WHEN ({x}) = 0 THEN '-' \
                             WHEN format_type({x}, NULL) = '???' THEN CAST(({x}) AS TEXT) \
                             ELSE format_type({x}, NULL) END"
                        );
                        if let Ok(rewritten) = Parser::new(&PostgreSqlDialect {})
                            .try_with_sql(&sql)
                            .and_then(|mut p| p.parse_expr())
                        {
                            *e = Expr::Nested(Box::new(rewritten));
                        }
                    }
                }
            }
            ControlFlow::<()>::Continue(())
        });
        s
    }
}

/// `typinput = 'pg_catalog.array_in'::regproc`: the function's name. The bundled `pg_type`
/// holds `typinput`/`typoutput`/`typreceive`/`typsend` as names, so comparing with a name is
/// what PostgreSQL's comparison of regprocs means there (pgjdbc's type lookup compares
/// `typinput` so). Elsewhere a regproc stays an oid.
#[derive(Debug)]
struct RegprocLiteralAsName;

impl SqlStatementRewriteRule for RegprocLiteralAsName {
    fn rewrite(&self, mut s: Statement) -> Statement {
        use datafusion::sql::sqlparser::ast::{
            visit_expressions_mut, DataType, Expr, Value, ValueWithSpan,
        };
        use std::ops::ControlFlow;
        // Only where the other side is one of pg_type's function-name columns.
        fn names_a_function(e: &Expr) -> bool {
            let id = match e {
                Expr::Identifier(i) => i,
                Expr::CompoundIdentifier(ids) => match ids.last() {
                    Some(i) => i,
                    None => return false,
                },
                _ => return false,
            };
            matches!(
                id.value.to_lowercase().as_str(),
                "typinput" | "typoutput" | "typreceive" | "typsend"
            )
        }
        fn as_name(e: &mut Expr) {
            if let Expr::Cast {
                expr, data_type, ..
            } = e
            {
                let regproc = matches!(data_type, DataType::Custom(n, a) if a.is_empty()
                && n.0.last().and_then(|p| p.as_ident()).is_some_and(|i| {
                    i.value.eq_ignore_ascii_case("regproc")
                }));
                if let (
                    true,
                    Expr::Value(ValueWithSpan {
                        value: Value::SingleQuotedString(name),
                        ..
                    }),
                ) = (regproc, expr.as_ref())
                {
                    let bare = name.strip_prefix("pg_catalog.").unwrap_or(name).to_string();
                    *e = Expr::Value(Value::SingleQuotedString(bare).into());
                }
            }
        }
        let _ = visit_expressions_mut(&mut s, |e| {
            if let Expr::BinaryOp { left, right, .. } = e {
                if names_a_function(left) {
                    as_name(right);
                } else if names_a_function(right) {
                    as_name(left);
                }
            }
            ControlFlow::<()>::Continue(())
        });
        s
    }
}

/// `information_schema._pg_expandarray(a)` is a set-returning function of `(x, n)` records:
/// `unnest(_pg_expandarray(a))` over weft's array-returning function gives the same rows.
/// A record's field, `(r).x`, is `get_field(r, 'x')`. pgjdbc's `getPrimaryKeys` needs both.
#[derive(Debug)]
struct ExpandArrayAndFieldAccess;

impl SqlStatementRewriteRule for ExpandArrayAndFieldAccess {
    fn rewrite(&self, mut s: Statement) -> Statement {
        use datafusion::sql::sqlparser::ast::{
            visit_expressions_mut, AccessExpr, Expr, FunctionArguments, Ident, ObjectName, Value,
        };
        use std::ops::ControlFlow;
        let _ = visit_expressions_mut(&mut s, |e| {
            match e {
                Expr::Function(f)
                    if f.name
                        .0
                        .last()
                        .and_then(|p| p.as_ident())
                        .is_some_and(|i| i.value.eq_ignore_ascii_case("_pg_expandarray"))
                        && matches!(f.args, FunctionArguments::List(_)) =>
                {
                    let mut inner = f.clone();
                    inner.name = ObjectName::from(vec![Ident::new("_pg_expandarray")]);
                    *e = call("unnest", Expr::Function(inner));
                }
                Expr::CompoundFieldAccess { root, access_chain }
                    if access_chain
                        .iter()
                        .all(|a| matches!(a, AccessExpr::Dot(Expr::Identifier(_)))) =>
                {
                    let mut out = (**root).clone();
                    while let Expr::Nested(inner) = out {
                        out = *inner;
                    }
                    for a in access_chain.iter() {
                        if let AccessExpr::Dot(Expr::Identifier(id)) = a {
                            out = call_args(
                                "get_field",
                                vec![
                                    out,
                                    Expr::Value(
                                        Value::SingleQuotedString(id.value.to_lowercase()).into(),
                                    ),
                                ],
                            );
                        }
                    }
                    *e = out;
                }
                _ => {}
            }
            ControlFlow::<()>::Continue(())
        });
        s
    }
}

/// `generate_subscripts(a, 1)`: `unnest(generate_series(1, array_length(a)))`, the
/// subscripts of a one-dimensional array (DataFusion has no generate_subscripts).
#[derive(Debug)]
struct GenerateSubscripts;

impl SqlStatementRewriteRule for GenerateSubscripts {
    fn rewrite(&self, mut s: Statement) -> Statement {
        use datafusion::sql::sqlparser::ast::{visit_expressions_mut, Expr, FunctionArguments};
        use std::ops::ControlFlow;
        let _ = visit_expressions_mut(&mut s, |e| {
            if let Expr::Function(f) = e {
                let is = f
                    .name
                    .0
                    .last()
                    .and_then(|p| p.as_ident())
                    .is_some_and(|i| i.value.eq_ignore_ascii_case("generate_subscripts"));
                if let (true, FunctionArguments::List(l)) = (is, &f.args) {
                    if let Some(first) = l.args.first() {
                        let arr = first.to_string();
                        let sql = format!("unnest(generate_series(1, array_length({arr})))");
                        if let Ok(x) = Parser::new(&PostgreSqlDialect {})
                            .try_with_sql(&sql)
                            .and_then(|mut p| p.parse_expr())
                        {
                            *e = x;
                        }
                    }
                }
            }
            ControlFlow::<()>::Continue(())
        });
        s
    }
}

/// Whether an expression is a call of an aggregate PostgreSQL clients use in subqueries.
fn is_aggregate(e: &datafusion::sql::sqlparser::ast::Expr) -> bool {
    use datafusion::sql::sqlparser::ast::Expr;
    match e {
        Expr::Function(f) => {
            let name = f.name.to_string().to_lowercase();
            let name = name.rsplit('.').next().unwrap_or("");
            matches!(
                name,
                "max"
                    | "min"
                    | "count"
                    | "sum"
                    | "avg"
                    | "array_agg"
                    | "string_agg"
                    | "bool_and"
                    | "bool_or"
                    | "every"
            )
        }
        _ => false,
    }
}

/// `name(arg)` as an expression.
fn call(
    name: &str,
    arg: datafusion::sql::sqlparser::ast::Expr,
) -> datafusion::sql::sqlparser::ast::Expr {
    call_args(name, vec![arg])
}

/// Gives every unaliased select-list item of `s` that `name` names that name as its alias,
/// before a rewrite changes the expression PostgreSQL would have named the column after.
pub(crate) fn name_unnamed_items(
    s: &mut datafusion::sql::sqlparser::ast::Statement,
    name: impl Fn(&datafusion::sql::sqlparser::ast::Expr) -> Option<String>,
) {
    use datafusion::sql::sqlparser::ast::{
        Ident, Query, SelectItem, SetExpr, VisitMut, VisitorMut,
    };
    use std::ops::ControlFlow;
    struct Names<F>(F);
    impl<F: Fn(&datafusion::sql::sqlparser::ast::Expr) -> Option<String>> VisitorMut for Names<F> {
        type Break = ();
        fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
            if let SetExpr::Select(sel) = q.body.as_mut() {
                for item in sel.projection.iter_mut() {
                    if let SelectItem::UnnamedExpr(e) = item {
                        if let Some(n) = (self.0)(e) {
                            *item = SelectItem::ExprWithAlias {
                                expr: e.clone(),
                                alias: Ident::new(n),
                            };
                        }
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = s.visit(&mut Names(name));
}

/// `name(args...)` as an expression.
pub(crate) fn call_args(
    name: &str,
    args: Vec<datafusion::sql::sqlparser::ast::Expr>,
) -> datafusion::sql::sqlparser::ast::Expr {
    use datafusion::sql::sqlparser::ast::{
        Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments,
        Ident, ObjectName,
    };
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a)))
                .collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

/// Parses a catalog query and rewrites it for DataFusion.
pub fn parse_catalog_query(sql: &str) -> Result<Vec<Statement>, ParserError> {
    let mut text = std::borrow::Cow::Borrowed(sql);
    if let Some((_, answer)) = EMPTY_ANSWERS
        .iter()
        .find(|(head, _)| sql.trim_start().starts_with(head))
    {
        text = std::borrow::Cow::Borrowed(answer);
    }
    for (from, to) in FRAGMENTS {
        if text.contains(from) {
            text = std::borrow::Cow::Owned(text.replace(from, to));
        }
    }
    let stmts = Parser::parse_sql(&PostgreSqlDialect {}, &text)?;
    let c = compat();
    Ok(stmts
        .into_iter()
        .map(|s| {
            // A table's definition keeps what it says (`nextval('s'::regclass)` in a
            // default is read by the DDL, not turned into a catalog lookup).
            let definition = match &s {
                Statement::CreateTable(ct) => ct.query.is_none(),
                Statement::AlterTable(_) => true,
                _ => false,
            };
            if definition {
                return s;
            }
            c.rules.iter().fold(s, |s, r| r.rewrite(s))
        })
        .collect())
}

/// Whether a statement's text may hold a subquery (two SELECTs), checked without
/// allocating, so that most statements skip [`single_row_subqueries`].
pub fn may_have_subquery(sql: &str) -> bool {
    sql.as_bytes()
        .windows(6)
        .filter(|w| w.eq_ignore_ascii_case(b"select"))
        .nth(1)
        .is_some()
}

/// PostgreSQL runs a correlated scalar subquery that returns at most one row per outer row
/// (`(SELECT name FROM d WHERE d.id = t.d_id)`, or `... ORDER BY x LIMIT 1`); DataFusion runs
/// a correlated subquery only if it aggregates. The same value, as an aggregate:
/// `first_value(e ORDER BY x)` for `ORDER BY x LIMIT 1`, and otherwise `first_value(e)` with a
/// check that fails with 21000 when a second row comes, as PostgreSQL does.
pub fn single_row_subqueries(s: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{Expr, Query, VisitMut, VisitorMut};
    use std::ops::ControlFlow;
    /// Scalar subqueries only: the subquery of `x op ANY|ALL (...)` is a set, and is
    /// remembered on the way down so that it is left alone on the way up.
    struct V {
        sets: Vec<*const Query>,
    }
    impl VisitorMut for V {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            if let Expr::AnyOp { right, .. } | Expr::AllOp { right, .. } = e {
                if let Expr::Subquery(q) = right.as_ref() {
                    self.sets.push(q.as_ref() as *const Query);
                }
            }
            ControlFlow::Continue(())
        }
        fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            if let Expr::Subquery(q) = e {
                if !self.sets.contains(&(q.as_ref() as *const Query)) {
                    single_row_subquery(q);
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = s.visit(&mut V { sets: Vec::new() });
}

fn single_row_subquery(q: &mut datafusion::sql::sqlparser::ast::Query) {
    use datafusion::sql::sqlparser::ast::{
        visit_expressions, Expr, GroupByExpr, LimitClause, OrderByKind, SelectItem, SetExpr,
        TableFactor, Value,
    };
    use std::ops::ControlFlow;
    if q.with.is_some() || q.fetch.is_some() {
        return;
    }
    let limit_one = match &q.limit_clause {
        None => false,
        Some(LimitClause::LimitOffset {
            limit: Some(Expr::Value(v)),
            offset: None,
            limit_by,
        }) if limit_by.is_empty() && matches!(&v.value, Value::Number(n, _) if n == "1") => true,
        Some(_) => return,
    };
    let order: Vec<String> = match q.order_by.as_ref().map(|o| &o.kind) {
        None => Vec::new(),
        Some(OrderByKind::Expressions(exprs)) => exprs.iter().map(|o| o.to_string()).collect(),
        Some(OrderByKind::All(_)) => return,
    };
    let SetExpr::Select(sel) = q.body.as_mut() else {
        return;
    };
    let grouped = !matches!(&sel.group_by, GroupByExpr::Expressions(g, _) if g.is_empty());
    if grouped || sel.having.is_some() || sel.distinct.is_some() || sel.projection.len() != 1 {
        return;
    }
    let inner = match &sel.projection[0] {
        SelectItem::UnnamedExpr(x) | SelectItem::ExprWithAlias { expr: x, .. } => x.clone(),
        _ => return,
    };
    // Already an aggregate, or holding one: DataFusion runs it as it is.
    let mut aggregated = false;
    let _ = visit_expressions(&inner, |x| {
        if is_aggregate(x) || matches!(x, Expr::Function(f) if f.over.is_some()) {
            aggregated = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    if aggregated {
        return;
    }
    // Correlated: a column qualified by a name that is not one of the subquery's own tables.
    let mut local: Vec<String> = Vec::new();
    for twj in &sel.from {
        for f in std::iter::once(&twj.relation).chain(twj.joins.iter().map(|j| &j.relation)) {
            match f {
                TableFactor::Table { name, alias, .. } => {
                    if let Some(a) = alias {
                        local.push(a.name.value.to_lowercase());
                    } else if let Some(last) = name.0.last().and_then(|p| p.as_ident()) {
                        local.push(last.value.to_lowercase());
                    }
                }
                _ => return,
            }
        }
    }
    let mut correlated = false;
    if let Some(w) = &sel.selection {
        let _ = visit_expressions(w, |x| {
            if let Expr::CompoundIdentifier(ids) = x {
                if ids.len() >= 2 && !local.contains(&ids[0].value.to_lowercase()) {
                    correlated = true;
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        });
    }
    if !correlated || (!order.is_empty() && !limit_one) {
        return;
    }
    let text = if limit_one {
        if order.is_empty() {
            format!("first_value({inner})")
        } else {
            format!("first_value({inner} ORDER BY {})", order.join(", "))
        }
    } else {
        format!(
            "CASE WHEN count(*) > 1 THEN weft_more_than_one_row(first_value({inner})) \
             ELSE first_value({inner}) END"
        )
    };
    let parsed = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(&text)
        .and_then(|mut p| p.parse_expr());
    let Ok(new) = parsed else { return };
    sel.projection[0] = match std::mem::replace(
        &mut sel.projection[0],
        SelectItem::UnnamedExpr(Expr::Value(Value::Null.into())),
    ) {
        SelectItem::ExprWithAlias { alias, .. } => SelectItem::ExprWithAlias { expr: new, alias },
        // The column keeps the name PostgreSQL gives the original expression, under a prefix:
        // DataFusion's decorrelation confuses a subquery column named like an outer one.
        _ => SelectItem::ExprWithAlias {
            expr: new,
            alias: datafusion::sql::sqlparser::ast::Ident::with_quote(
                '"',
                format!(
                    "{}{}",
                    crate::sql::names::SUBQUERY_NAME_PREFIX,
                    crate::sql::names::expr_name(&inner)
                ),
            ),
        },
    };
    q.limit_clause = None;
    q.order_by = None;
}

/// `FROM generate_series(1, 3) g` names the function's one column `g`, as PostgreSQL does
/// for a function returning a scalar type (`SELECT g FROM ...`); DataFusion names it
/// `value`. The alias gets a column list of its own name, for the set-returning functions
/// of one column weft has (`generate_series`, `generate_subscripts`, `unnest` of one array).
pub fn scalar_function_aliases(s: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{
        TableAlias, TableAliasColumnDef, TableFactor, VisitMut, VisitorMut,
    };
    use std::ops::ControlFlow;
    struct Aliases;
    fn name_column(alias: &mut Option<TableAlias>) {
        if let Some(a) = alias {
            if a.columns.is_empty() {
                a.columns
                    .push(TableAliasColumnDef::from_name(a.name.value.clone()));
                a.columns[0].name.quote_style = a.name.quote_style;
            }
        }
    }
    impl VisitorMut for Aliases {
        type Break = ();
        fn pre_visit_table_factor(&mut self, t: &mut TableFactor) -> ControlFlow<()> {
            match t {
                TableFactor::Table {
                    name,
                    args: Some(_),
                    alias,
                    ..
                } => {
                    let f = name
                        .0
                        .last()
                        .and_then(|p| p.as_ident())
                        .map(|i| i.value.to_lowercase());
                    if matches!(
                        f.as_deref(),
                        Some("generate_series" | "generate_subscripts")
                    ) {
                        name_column(alias);
                    }
                }
                TableFactor::UNNEST {
                    alias,
                    array_exprs,
                    with_offset: false,
                    with_ordinality: false,
                    ..
                } if array_exprs.len() == 1 => {
                    // An unaliased unnest(...) is the relation and column `unnest`.
                    if alias.is_none() {
                        let a = TableAlias {
                            explicit: false,
                            name: datafusion::sql::sqlparser::ast::Ident::new("unnest"),
                            columns: vec![TableAliasColumnDef::from_name("unnest")],
                            at: None,
                        };
                        *alias = Some(a);
                    } else {
                        name_column(alias)
                    }
                }
                _ => {}
            }
            ControlFlow::Continue(())
        }
    }
    let _ = s.visit(&mut Aliases);
}
