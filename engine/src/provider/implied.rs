//! Whether a scan's filters imply a partial index's predicate, so that the planner may read
//! the index: every conjunct of the predicate must be one of the filters' conjuncts. They
//! are compared as SQL text in one canonical form: the predicate as written at CREATE INDEX,
//! the filters unparsed from DataFusion's expressions, both without column qualifiers or
//! redundant parentheses, and with `x = true` as `x`. The test is syntactic and
//! conservative: an implication it does not recognize leaves the index unread; it never
//! reads one whose predicate the filters do not contain.

use std::ops::ControlFlow;

use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::Expr;
use datafusion::sql::sqlparser::ast::{self, BinaryOperator, Ident, Value};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::unparser::expr_to_sql;

/// An identifier as PostgreSQL resolves it: unquoted ones fold to lower case.
fn folded(id: &Ident) -> Ident {
    match id.quote_style {
        None => Ident::new(id.value.to_lowercase()),
        Some(_) => Ident::with_quote('"', id.value.clone()),
    }
}

/// The canonical text of an expression.
fn canonical(mut e: ast::Expr) -> String {
    let _ = ast::visit_expressions_mut(&mut e, |e| {
        let replaced = match e {
            ast::Expr::CompoundIdentifier(parts) => {
                parts.last().map(|id| ast::Expr::Identifier(folded(id)))
            }
            ast::Expr::Identifier(id) => Some(ast::Expr::Identifier(folded(id))),
            ast::Expr::Nested(inner) => Some((**inner).clone()),
            ast::Expr::BinaryOp {
                left,
                op: BinaryOperator::Eq,
                right,
            } if matches!(right.as_ref(), ast::Expr::Value(v) if v.value == Value::Boolean(true)) => {
                Some((**left).clone())
            }
            _ => None,
        };
        if let Some(r) = replaced {
            *e = r;
        }
        ControlFlow::<()>::Continue(())
    });
    e.to_string()
}

fn split_ast(e: ast::Expr, out: &mut Vec<ast::Expr>) {
    match e {
        ast::Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            split_ast(*left, out);
            split_ast(*right, out);
        }
        ast::Expr::Nested(inner) => split_ast(*inner, out),
        other => out.push(other),
    }
}

/// The canonical texts of the filters' conjuncts (those DataFusion can unparse).
pub(super) fn filter_texts<'a>(filters: impl IntoIterator<Item = &'a Expr>) -> Vec<String> {
    filters
        .into_iter()
        .flat_map(split_conjunction)
        .filter_map(|c| expr_to_sql(c).ok())
        .map(canonical)
        .collect()
}

/// The canonical texts of a predicate's conjuncts; `None` when it does not parse.
fn predicate_texts(predicate: &str) -> Option<Vec<String>> {
    let e = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(predicate)
        .ok()?
        .parse_expr()
        .ok()?;
    let mut parts = Vec::new();
    split_ast(e, &mut parts);
    Some(parts.into_iter().map(canonical).collect())
}

/// Whether filters whose conjuncts are `filters` (from [`filter_texts`]) imply `predicate`.
pub(super) fn implies(filters: &[String], predicate: &str) -> bool {
    !filters.is_empty()
        && predicate_texts(predicate).is_some_and(|p| p.iter().all(|c| filters.contains(c)))
}

/// Whether `filter` is (or holds) a conjunct of `predicate`: a filter a scan must be given
/// to see that a partial index applies.
pub(super) fn part_of(filter: &Expr, predicate: &str) -> bool {
    let Some(p) = predicate_texts(predicate) else {
        return false;
    };
    filter_texts([filter]).iter().any(|f| p.contains(f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::logical_expr::{col, lit};

    #[test]
    fn filters_that_contain_the_predicate_imply_it() {
        let f = [col("t.email").eq(lit("a@x")), col("t.deleted_at").is_null()];
        let texts = filter_texts(f.iter());
        assert!(implies(&texts, "deleted_at IS NULL"));
        assert!(implies(&texts, "(deleted_at IS NULL)"));
        assert!(implies(&texts, "email = 'a@x' AND deleted_at IS NULL"));
        assert!(!implies(&texts, "deleted_at IS NOT NULL"));
        assert!(!implies(&texts, "deleted_at IS NULL AND email = 'b@x'"));
        assert!(!implies(&texts, "\"Deleted_at\" IS NULL"));
        assert!(!implies(&[], "deleted_at IS NULL"));
        let b = filter_texts([col("active")].iter());
        assert!(implies(&b, "active"));
        assert!(implies(&b, "active = true"));
        assert!(!implies(&b, "NOT active"));
        assert!(part_of(
            &col("t.deleted_at").is_null(),
            "deleted_at IS NULL"
        ));
        assert!(!part_of(
            &col("t.email").eq(lit("a@x")),
            "deleted_at IS NULL"
        ));
    }
}
