//! What a statement needs to be allowed, read from its syntax alone: privileges on the
//! relations it reads and writes, on the sequences its functions draw from, CREATE on the
//! schema a new object goes in, ownership of what it alters or drops, and role attributes.
//! [`crate::sql::privileges`] checks the needs against the catalog.
//!
//! As in PostgreSQL: a query needs SELECT on what it reads; INSERT, UPDATE and DELETE need
//! their privilege on the target and also SELECT on it when they read its columns (a WHERE
//! that names a column, RETURNING, `SET a = a + 1`); `SELECT ... FOR UPDATE` also needs
//! UPDATE; `nextval` needs USAGE or UPDATE on its sequence, `currval` SELECT or USAGE,
//! `setval` UPDATE; a SERIAL column's default draws from its sequence, so an INSERT that
//! leaves it out needs USAGE on it too.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    self, CopySource, Expr, FromTable, ObjectType, Statement, TableFactor, Visit, Visitor,
};

use crate::catalog::acl::{self, Privs};
use crate::catalog::grants::regclass_key;
use crate::sql::exec::table_name;
use crate::sql::names::ident_name;

/// One thing a statement needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Need {
    /// Any of `privs` on the relation (a table, view or sequence) with this key.
    Relation { name: String, privs: Privs },
    /// Any of `privs` on a sequence a function names.
    Sequence { name: String, privs: Privs },
    /// USAGE on the sequences whose defaults fill the columns an INSERT leaves out
    /// (`None`: every column is given).
    Defaults {
        table: String,
        given: Option<Vec<String>>,
    },
    /// CREATE on the schema a new relation's key is in.
    CreateIn { relation: String },
    /// Ownership of a relation.
    Owner { name: String },
    /// Ownership of the table an index is on.
    IndexOwner { name: String },
    /// Ownership of a schema.
    SchemaOwner { schema: String },
    /// CREATE on the database (CREATE SCHEMA).
    CreateSchema,
    /// CREATEROLE, or superuser when `superuser` (making or changing a superuser).
    RoleAdmin {
        action: &'static str,
        superuser: bool,
    },
    /// `ALTER ROLE name ...`: CREATEROLE, or the role itself changing only its password.
    AlterRole { name: String, password_only: bool },
    /// CREATEDB.
    CreateDatabase,
    /// Ownership of a database (every one is the bootstrap superuser's).
    DatabaseOwner { name: String },
}

/// The relations a piece of a statement reads (tables named in FROM, JOIN and
/// subqueries, not CTEs or table functions), and the sequences its functions name.
#[derive(Default)]
struct Reads {
    relations: Vec<String>,
    sequences: Vec<(String, Privs)>,
    ctes: Vec<String>,
}

impl Visitor for Reads {
    type Break = ();

    fn pre_visit_query(&mut self, q: &ast::Query) -> ControlFlow<()> {
        if let Some(with) = &q.with {
            for cte in &with.cte_tables {
                self.ctes.push(ident_name(&cte.alias.name));
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, f: &TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table {
            name, args: None, ..
        } = f
        {
            if let Ok(key) = table_name(name) {
                self.relations.push(key);
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        if let Expr::Function(f) = e {
            let fname = f
                .name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .map(ident_name)
                .unwrap_or_default();
            let privs = match fname.as_str() {
                "nextval" => acl::USAGE.union(acl::UPDATE),
                "currval" => acl::SELECT.union(acl::USAGE),
                "setval" => acl::UPDATE,
                _ => return ControlFlow::Continue(()),
            };
            if let Some(name) = first_text_argument(f).and_then(|t| regclass_key(&t)) {
                self.sequences.push((name, privs));
            }
        }
        ControlFlow::Continue(())
    }
}

/// A function's first argument when it is a string literal (cast or not).
fn first_text_argument(f: &ast::Function) -> Option<String> {
    let ast::FunctionArguments::List(list) = &f.args else {
        return None;
    };
    let ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) = list.args.first()? else {
        return None;
    };
    let mut e = e;
    while let Expr::Cast { expr, .. } = e {
        e = expr;
    }
    match e {
        Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
}

fn reads_of<V: Visit>(node: &V) -> Reads {
    let mut r = Reads::default();
    let _ = node.visit(&mut r);
    r
}

/// Whether an expression names a column (reads the row).
fn reads_columns(e: &Expr) -> bool {
    let mut found = false;
    let _ = ast::visit_expressions(e, |x| {
        if matches!(x, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
            found = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    found
}

/// Adds SELECT on what `r` reads (once per relation, a DML target's own occurrence taken
/// out by the caller) and the sequence needs.
fn push_reads(out: &mut Vec<Need>, r: Reads) {
    for name in r.relations {
        if r.ctes.contains(&name) {
            continue;
        }
        push(out, relation_need(name, acl::SELECT));
    }
    for (name, privs) in r.sequences {
        push(out, Need::Sequence { name, privs });
    }
}

fn relation_need(name: String, privs: Privs) -> Need {
    Need::Relation { name, privs }
}

fn push(out: &mut Vec<Need>, n: Need) {
    if !out.contains(&n) {
        out.push(n);
    }
}

/// Takes one occurrence of `target` out of the relations read (the DML target itself).
fn without_target(mut r: Reads, target: &str) -> Reads {
    if let Some(i) = r.relations.iter().position(|n| n == target) {
        r.relations.remove(i);
    }
    r
}

/// What `stmt` needs.
pub fn needs(stmt: &Statement) -> Vec<Need> {
    let mut out = Vec::new();
    match stmt {
        Statement::Query(q) => {
            let r = reads_of(q.as_ref());
            if !q.locks.is_empty() {
                for name in r.relations.iter().filter(|n| !r.ctes.contains(n)) {
                    push(&mut out, relation_need(name.clone(), acl::UPDATE));
                }
            }
            push_reads(&mut out, r);
        }
        Statement::Explain { statement, .. } => return needs(statement),
        Statement::Insert(ins) => {
            let ast::TableObject::TableName(name) = &ins.table else {
                return out;
            };
            let Ok(target) = table_name(name) else {
                return out;
            };
            out.push(relation_need(target.clone(), acl::INSERT));
            if ins.returning.is_some() {
                push(&mut out, relation_need(target.clone(), acl::SELECT));
            }
            if let Some(ast::OnInsert::OnConflict(c)) = &ins.on {
                if matches!(c.action, ast::OnConflictAction::DoUpdate(_)) {
                    push(&mut out, relation_need(target.clone(), acl::UPDATE));
                }
            }
            let given = if ins.columns.is_empty() {
                None
            } else {
                Some(
                    ins.columns
                        .iter()
                        .map(crate::sql::names::object_ident)
                        .collect(),
                )
            };
            out.push(Need::Defaults {
                table: target,
                given,
            });
            push_reads(&mut out, reads_of(stmt));
        }
        Statement::Update(u) => {
            let TableFactor::Table { name, .. } = &u.table.relation else {
                return out;
            };
            let Ok(target) = table_name(name) else {
                return out;
            };
            out.push(relation_need(target.clone(), acl::UPDATE));
            let reads_target = u.selection.as_ref().is_some_and(reads_columns)
                || u.returning.is_some()
                || u.assignments.iter().any(|a| reads_columns(&a.value));
            if reads_target {
                push(&mut out, relation_need(target.clone(), acl::SELECT));
            }
            push_reads(&mut out, without_target(reads_of(stmt), &target));
        }
        Statement::Delete(d) => {
            let tables = match &d.from {
                FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
            };
            let Some(TableFactor::Table { name, .. }) = tables.first().map(|t| &t.relation) else {
                return out;
            };
            let Ok(target) = table_name(name) else {
                return out;
            };
            out.push(relation_need(target.clone(), acl::DELETE));
            if d.selection.as_ref().is_some_and(reads_columns) || d.returning.is_some() {
                push(&mut out, relation_need(target.clone(), acl::SELECT));
            }
            push_reads(&mut out, without_target(reads_of(stmt), &target));
        }
        Statement::Truncate(t) => {
            for target in &t.table_names {
                if let Ok(name) = table_name(&target.name) {
                    out.push(relation_need(name, acl::TRUNCATE));
                }
            }
        }
        Statement::Lock(lock) => {
            for t in &lock.tables {
                if let Ok(name) = table_name(&t.name) {
                    out.push(Need::Relation {
                        name,
                        privs: Privs(
                            acl::SELECT.0
                                | acl::INSERT.0
                                | acl::UPDATE.0
                                | acl::DELETE.0
                                | acl::TRUNCATE.0,
                        ),
                    });
                }
            }
        }
        Statement::Copy { source, to, .. } => match source {
            CopySource::Table {
                table_name: name,
                columns,
            } => {
                let Ok(target) = table_name(name) else {
                    return out;
                };
                if *to {
                    out.push(relation_need(target, acl::SELECT));
                } else {
                    out.push(relation_need(target.clone(), acl::INSERT));
                    let given = if columns.is_empty() {
                        None
                    } else {
                        Some(columns.iter().map(ident_name).collect())
                    };
                    out.push(Need::Defaults {
                        table: target,
                        given,
                    });
                }
            }
            CopySource::Query(q) => push_reads(&mut out, reads_of(q.as_ref())),
        },
        Statement::CreateTable(ct) => {
            if let Ok(name) = table_name(&ct.name) {
                out.push(Need::CreateIn { relation: name });
            }
            let mut parents = Vec::new();
            for c in &ct.constraints {
                if let ast::TableConstraint::ForeignKey(fk) = c {
                    parents.push(fk.foreign_table.clone());
                }
            }
            for col in &ct.columns {
                for o in &col.options {
                    if let ast::ColumnOption::ForeignKey(fk) = &o.option {
                        parents.push(fk.foreign_table.clone());
                    }
                }
            }
            for p in parents {
                if let Ok(name) = table_name(&p) {
                    push(&mut out, relation_need(name, acl::REFERENCES));
                }
            }
            if let Some(q) = &ct.query {
                push_reads(&mut out, reads_of(q.as_ref()));
            }
        }
        Statement::CreateView(cv) => {
            if let Ok(name) = table_name(&cv.name) {
                out.push(Need::CreateIn { relation: name });
            }
        }
        Statement::CreateSequence { name, .. } => {
            if let Ok(name) = table_name(name) {
                out.push(Need::CreateIn { relation: name });
            }
        }
        Statement::CreateIndex(ci) => {
            if let Ok(name) = table_name(&ci.table_name) {
                out.push(Need::Owner { name });
            }
        }
        Statement::AlterTable(at) => {
            if let Ok(name) = table_name(&at.name) {
                out.push(Need::Owner { name });
            }
        }
        Statement::Drop {
            object_type, names, ..
        } => {
            for n in names {
                match object_type {
                    ObjectType::Table | ObjectType::View | ObjectType::Sequence => {
                        if let Ok(name) = table_name(n) {
                            out.push(Need::Owner { name });
                        }
                    }
                    ObjectType::Index => {
                        if let Ok(name) = table_name(n) {
                            out.push(Need::IndexOwner { name });
                        }
                    }
                    ObjectType::Schema => out.push(Need::SchemaOwner {
                        schema: crate::sql::names::object_ident(n),
                    }),
                    ObjectType::Role | ObjectType::User => {
                        push(
                            &mut out,
                            Need::RoleAdmin {
                                action: "drop",
                                superuser: false,
                            },
                        );
                    }
                    _ => {}
                }
            }
        }
        Statement::CreateSchema { .. } => out.push(Need::CreateSchema),
        Statement::AlterSchema(a) => {
            if let [p] = a.name.0.as_slice() {
                if let Some(id) = p.as_ident() {
                    out.push(Need::SchemaOwner {
                        schema: ident_name(id),
                    });
                }
            }
        }
        Statement::Comment {
            object_type,
            object_name,
            ..
        } => match object_type {
            ast::CommentObject::Table | ast::CommentObject::View | ast::CommentObject::Sequence => {
                if let Ok(name) = table_name(object_name) {
                    out.push(Need::Owner { name });
                }
            }
            ast::CommentObject::Column => {
                // `table.column`: the table's owner comments on its columns.
                let mut parts = object_name.clone();
                parts.0.pop();
                if let Ok(name) = table_name(&parts) {
                    out.push(Need::Owner { name });
                }
            }
            ast::CommentObject::Index => {
                if let Ok(name) = table_name(object_name) {
                    out.push(Need::IndexOwner { name });
                }
            }
            ast::CommentObject::Schema => out.push(Need::SchemaOwner {
                schema: crate::sql::names::object_ident(object_name),
            }),
            _ => {}
        },
        Statement::CreateRole(cr) => out.push(Need::RoleAdmin {
            action: "create",
            superuser: cr.superuser == Some(true),
        }),
        Statement::AlterRole { name, operation } => {
            let password_only = match operation {
                ast::AlterRoleOperation::WithOptions { options } => options
                    .iter()
                    .all(|o| matches!(o, ast::RoleOption::Password(_))),
                _ => false,
            };
            out.push(Need::AlterRole {
                name: ident_name(name),
                password_only,
            });
        }
        Statement::Call(f) if f.name.to_string() == crate::sql::database_ddl::PROCEDURE => {
            match crate::sql::carrier::arg(f, 0).as_deref() {
                Some("create") => out.push(Need::CreateDatabase),
                // Dropping or altering one: its owner, the bootstrap superuser.
                _ => out.push(Need::DatabaseOwner {
                    name: crate::sql::carrier::arg(f, 1).unwrap_or_default(),
                }),
            }
        }
        Statement::Call(f) if f.name.to_string() == crate::sql::alter_sequence::PROCEDURE => {
            if let Some(name) = crate::sql::carrier::arg(f, 0) {
                out.push(Need::Owner { name });
            }
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(sql: &str) -> Vec<Need> {
        let stmt = datafusion::sql::sqlparser::parser::Parser::parse_sql(
            &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
            sql,
        )
        .unwrap()
        .remove(0);
        needs(&stmt)
    }

    fn rel(name: &str, privs: Privs) -> Need {
        relation_need(name.into(), privs)
    }

    #[test]
    fn queries_read_their_tables_and_not_their_ctes() {
        assert_eq!(
            of(
                "WITH c AS (SELECT * FROM a) SELECT * FROM c JOIN s.b ON true \
                WHERE x IN (SELECT y FROM d) AND nextval('q') > 0"
            ),
            vec![
                rel("a", acl::SELECT),
                rel("s.b", acl::SELECT),
                rel("d", acl::SELECT),
                Need::Sequence {
                    name: "q".into(),
                    privs: acl::USAGE.union(acl::UPDATE)
                },
            ]
        );
        assert_eq!(of("SELECT * FROM generate_series(1, 3)"), vec![]);
        assert_eq!(
            of("SELECT * FROM t FOR UPDATE"),
            vec![rel("t", acl::UPDATE), rel("t", acl::SELECT)]
        );
    }

    #[test]
    fn writes_read_their_target_only_when_they_read_its_columns() {
        assert_eq!(of("UPDATE t SET a = 1"), vec![rel("t", acl::UPDATE)]);
        assert_eq!(
            of("UPDATE t SET a = a + 1"),
            vec![rel("t", acl::UPDATE), rel("t", acl::SELECT)]
        );
        assert_eq!(
            of("DELETE FROM t WHERE id = 1"),
            vec![rel("t", acl::DELETE), rel("t", acl::SELECT)]
        );
        assert_eq!(of("DELETE FROM t"), vec![rel("t", acl::DELETE)]);
        assert_eq!(
            of("INSERT INTO t (a) SELECT b FROM u RETURNING id"),
            vec![
                rel("t", acl::INSERT),
                rel("t", acl::SELECT),
                Need::Defaults {
                    table: "t".into(),
                    given: Some(vec!["a".into()])
                },
                rel("u", acl::SELECT),
            ]
        );
    }

    #[test]
    fn regclass_texts_name_relation_keys() {
        assert_eq!(regclass_key("s").as_deref(), Some("s"));
        assert_eq!(regclass_key("public.S").as_deref(), Some("s"));
        assert_eq!(regclass_key("x.\"My Seq\"").as_deref(), Some("x.My Seq"));
        assert_eq!(regclass_key(""), None);
    }
}
