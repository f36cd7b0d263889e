//! Grouping by a primary key, with the table's other columns in the select list.
//!
//! PostgreSQL lets `SELECT t.id, t.name, count(*) FROM t JOIN u ... GROUP BY t.id` through:
//! when a table's whole primary key is grouped on, its other columns are functionally
//! dependent on it and may appear ungrouped (ORMs emit exactly this). DataFusion asks for
//! every selected column in GROUP BY. Before planning, such a GROUP BY gets the table's
//! other columns appended: grouping by columns that the key determines forms the same
//! groups, so the answer is PostgreSQL's.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, GroupByExpr, Ident, ObjectName, Query, Select, SetExpr, Statement, TableFactor, Visit,
    VisitMut, Visitor, VisitorMut,
};

/// A table's columns and the names of its primary key's columns.
#[derive(Debug, Clone)]
pub struct KeyedTable {
    pub columns: Vec<String>,
    pub key: Vec<String>,
}

/// The name of a table as the catalog looks it up (its last part, unquoted names folded
/// to lower case).
fn table_name(name: &ObjectName) -> Option<String> {
    let ident = name.0.last()?.as_ident()?;
    Some(fold(ident))
}

fn fold(i: &Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}

/// Every Select of the statement that has a GROUP BY list, mutably.
fn for_each_grouped_select(s: &mut Statement, mut f: impl FnMut(&mut Select)) {
    struct V<'a>(&'a mut dyn FnMut(&mut Select));
    fn walk(body: &mut SetExpr, f: &mut dyn FnMut(&mut Select)) {
        match body {
            SetExpr::Select(sel) => {
                if matches!(&sel.group_by, GroupByExpr::Expressions(g, m) if !g.is_empty() && m.is_empty())
                {
                    f(sel)
                }
            }
            SetExpr::SetOperation { left, right, .. } => {
                walk(left, f);
                walk(right, f);
            }
            SetExpr::Query(q) => walk(&mut q.body, f),
            _ => {}
        }
    }
    impl VisitorMut for V<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
            walk(&mut q.body, self.0);
            ControlFlow::Continue(())
        }
    }
    let _ = VisitMut::visit(s, &mut V(&mut f));
}

/// The tables named in the FROM lists of grouped Selects, with the name they go by there.
fn relations(sel: &Select) -> Vec<(Ident, String)> {
    let mut out = Vec::new();
    for twj in &sel.from {
        for factor in std::iter::once(&twj.relation).chain(twj.joins.iter().map(|j| &j.relation)) {
            if let TableFactor::Table {
                name,
                alias,
                args: None,
                ..
            } = factor
            {
                let Some(table) = table_name(name) else {
                    continue;
                };
                let binding = match alias {
                    Some(a) => a.name.clone(),
                    None => name
                        .0
                        .last()
                        .and_then(|p| p.as_ident())
                        .cloned()
                        .unwrap_or_else(|| Ident::new(&table)),
                };
                out.push((binding, table));
            }
        }
    }
    out
}

/// The tables whose definitions [`extend`] needs (none for a statement without GROUP BY:
/// this runs before every planned statement, so it only reads).
pub fn tables_needed(s: &Statement) -> Vec<String> {
    struct V(Vec<String>);
    fn walk(body: &SetExpr, out: &mut Vec<String>) {
        match body {
            SetExpr::Select(sel) => {
                if matches!(&sel.group_by, GroupByExpr::Expressions(g, m) if !g.is_empty() && m.is_empty())
                {
                    out.extend(relations(sel).into_iter().map(|(_, t)| t));
                }
            }
            SetExpr::SetOperation { left, right, .. } => {
                walk(left, out);
                walk(right, out);
            }
            SetExpr::Query(q) => walk(&q.body, out),
            _ => {}
        }
    }
    impl Visitor for V {
        type Break = ();
        fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
            walk(&q.body, &mut self.0);
            ControlFlow::Continue(())
        }
    }
    let mut v = V(Vec::new());
    let _ = Visit::visit(s, &mut v);
    let mut out = v.0;
    out.sort();
    out.dedup();
    out
}

/// Appends to every GROUP BY that holds a table's whole primary key that table's other
/// columns. Returns whether anything changed.
pub fn extend(s: &mut Statement, tables: &HashMap<String, KeyedTable>) -> bool {
    let mut changed = false;
    for_each_grouped_select(s, |sel| {
        let relations = relations(sel);
        let GroupByExpr::Expressions(exprs, _) = &mut sel.group_by else {
            return;
        };
        // The grouped columns: (qualifier, column), folded.
        let grouped: HashSet<(Option<String>, String)> = exprs
            .iter()
            .filter_map(|e| match e {
                Expr::Identifier(i) => Some((None, fold(i))),
                Expr::CompoundIdentifier(p) if p.len() == 2 => {
                    Some((Some(fold(&p[0])), fold(&p[1])))
                }
                _ => None,
            })
            .collect();
        let mut added = Vec::new();
        for (binding, table) in relations {
            let Some(t) = tables.get(&table) else {
                continue;
            };
            let b = fold(&binding);
            let has = |c: &String| {
                grouped.contains(&(Some(b.clone()), c.clone()))
                    || grouped.contains(&(None, c.clone()))
            };
            if t.key.is_empty() || !t.key.iter().all(has) {
                continue;
            }
            for c in t.columns.iter().filter(|c| !has(c)) {
                added.push(Expr::CompoundIdentifier(vec![
                    binding.clone(),
                    Ident::with_quote('"', c.clone()),
                ]));
            }
        }
        if !added.is_empty() {
            exprs.extend(added);
            changed = true;
        }
    });
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn tables() -> HashMap<String, KeyedTable> {
        let mut m = HashMap::new();
        m.insert(
            "author".into(),
            KeyedTable {
                columns: vec!["id".into(), "name".into(), "born".into()],
                key: vec!["id".into()],
            },
        );
        m
    }

    fn rewritten(sql: &str) -> String {
        let mut s = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        assert_eq!(
            tables_needed(&s),
            vec!["author".to_string(), "book".to_string()]
        );
        extend(&mut s, &tables());
        s.to_string()
    }

    #[test]
    fn grouping_by_the_key_groups_by_the_rest() {
        assert_eq!(
            rewritten("SELECT a.id, a.name, count(b.id) FROM author a LEFT JOIN book b ON b.author = a.id GROUP BY a.id"),
            "SELECT a.id, a.name, count(b.id) FROM author a LEFT JOIN book b ON b.author = a.id GROUP BY a.id, a.\"name\", a.\"born\""
        );
        // Not the whole key: unchanged, for DataFusion to report.
        assert_eq!(
            rewritten(
                "SELECT author.name, count(*) FROM author JOIN book ON true GROUP BY author.name"
            ),
            "SELECT author.name, count(*) FROM author JOIN book ON true GROUP BY author.name"
        );
    }
}
