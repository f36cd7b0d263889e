//! `search_path`: which schema an unqualified relation name means.
//!
//! As in PostgreSQL, an unqualified name is looked for in `pg_catalog` first, then in each
//! schema of the session's `search_path` that exists, in order; a new relation goes into
//! the first schema of the path that exists (3F000 when none does). `$user` stands for the
//! session's role.
//!
//! weft resolves names once per statement, before running it: [`Executor::qualify_names`]
//! rewrites each unqualified relation name the statement reads or writes into the relation
//! it means (`t` becomes `s.t AS t`), so everything after it (DataFusion's planner, the
//! view expansion, DDL and DML) sees qualified names only. With the default path, where
//! only `public` exists, nothing is rewritten and the statement costs one lookup more.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    self, CopySource, Ident, ObjectName, ObjectNamePart, ObjectType, Statement, TableAlias,
    TableFactor, VisitMut, VisitorMut,
};
use weft_engine::schema::{relation_key, PUBLIC_SCHEMA};

use crate::catalog::oids::PG_CATALOG;
use crate::catalog::schemas::{path_names, quote_if_needed};
use crate::catalog::txn::Txn;
use crate::error::{codes, SqlError, SqlResult};
use crate::sql::exec::Executor;
use crate::sql::names::ident_name;

/// The text `SET search_path TO a, "B", 'c'` stores: each element a name, quoted as
/// PostgreSQL shows it (`a, "B", c`).
pub fn setting_text(values: &[ast::Expr]) -> String {
    values
        .iter()
        .map(|v| match v {
            ast::Expr::Identifier(id) => quote_if_needed(&ident_name(id)),
            ast::Expr::Value(v) => match &v.value {
                ast::Value::SingleQuotedString(s) if s.contains(',') || s.is_empty() => s.clone(),
                ast::Value::SingleQuotedString(s) => quote_if_needed(s),
                other => other.to_string(),
            },
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Refuses a name for a new schema or relation that weft cannot key: one with a dot in it
/// (a relation key joins schema and name with a dot).
pub fn check_new_name(name: &str, what: &str) -> SqlResult<()> {
    if name.contains('.') {
        return Err(SqlError::unsupported(format!(
            "{what} names containing a dot are not supported: \"{name}\""
        )));
    }
    Ok(())
}

/// The unqualified relation names of a statement, each with a flag set when it names a
/// table in a FROM clause without an alias, and the names its WITH clauses define.
struct Relations<'a> {
    ctes: HashSet<String>,
    /// Called with each unqualified relation name; answers the schema it means, if the
    /// name is to be qualified.
    resolve: &'a mut dyn FnMut(&str) -> Option<String>,
}

impl Relations<'_> {
    fn qualify(&mut self, name: &mut ObjectName) -> bool {
        let [ObjectNamePart::Identifier(id)] = name.0.as_slice() else {
            return false;
        };
        let bare = ident_name(id);
        if self.ctes.contains(&bare) {
            return false;
        }
        let Some(schema) = (self.resolve)(&bare) else {
            return false;
        };
        let id = id.clone();
        name.0 = vec![
            ObjectNamePart::Identifier(Ident::with_quote('"', schema)),
            ObjectNamePart::Identifier(id),
        ];
        true
    }
}

impl VisitorMut for Relations<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, q: &mut ast::Query) -> ControlFlow<()> {
        if let Some(with) = &q.with {
            for cte in &with.cte_tables {
                self.ctes.insert(ident_name(&cte.alias.name));
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, tf: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { name, alias, .. } = tf {
            let bare = match name.0.as_slice() {
                [ObjectNamePart::Identifier(id)] => Some(id.clone()),
                _ => None,
            };
            if self.qualify(name) && alias.is_none() {
                // Columns qualified by the table's name (`t.a`) still find it.
                *alias = bare.map(|name| TableAlias {
                    explicit: true,
                    name,
                    columns: vec![],
                    at: None,
                });
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, name: &mut ObjectName) -> ControlFlow<()> {
        self.qualify(name);
        ControlFlow::Continue(())
    }
}

/// Applies `f` to the relation names of `stmt` that the visitor does not reach: DROP's
/// names, COPY's table, COMMENT's object, CREATE VIEW's and CREATE SEQUENCE's names, and
/// the tables foreign keys reference.
fn other_relations(stmt: &mut Statement, f: &mut dyn FnMut(&mut ObjectName)) {
    match stmt {
        Statement::Drop {
            object_type:
                ObjectType::Table | ObjectType::View | ObjectType::Sequence | ObjectType::Index,
            names,
            ..
        } => names.iter_mut().for_each(f),
        Statement::Copy {
            source: CopySource::Table { table_name, .. },
            ..
        } => f(table_name),
        Statement::Comment {
            object_type,
            object_name,
            ..
        } => {
            use ast::CommentObject as C;
            match object_type {
                // `t.c`: the table is all but the last part.
                C::Column if object_name.0.len() == 2 => {
                    let mut table = ObjectName(vec![object_name.0[0].clone()]);
                    f(&mut table);
                    let mut parts = table.0;
                    parts.push(object_name.0[1].clone());
                    object_name.0 = parts;
                }
                C::Table | C::View | C::Sequence | C::Index => f(object_name),
                _ => {}
            }
        }
        Statement::CreateView(cv) => f(&mut cv.name),
        Statement::CreateSequence { name, .. } => f(name),
        Statement::CreateTable(ct) => {
            for c in &mut ct.columns {
                for o in &mut c.options {
                    if let ast::ColumnOption::ForeignKey(fk) = &mut o.option {
                        f(&mut fk.foreign_table);
                    }
                }
            }
            for c in &mut ct.constraints {
                if let ast::TableConstraint::ForeignKey(fk) = c {
                    f(&mut fk.foreign_table);
                }
            }
        }
        Statement::AlterTable(at) => {
            for op in &mut at.operations {
                if let ast::AlterTableOperation::AddConstraint {
                    constraint: ast::TableConstraint::ForeignKey(fk),
                    ..
                } = op
                {
                    f(&mut fk.foreign_table);
                }
            }
        }
        _ => {}
    }
}

/// The name a statement creates, if it creates a relation named by the statement.
fn created_name(stmt: &mut Statement) -> Option<&mut ObjectName> {
    match stmt {
        Statement::CreateTable(ct) => Some(&mut ct.name),
        Statement::CreateView(cv) => Some(&mut cv.name),
        Statement::CreateSequence { name, .. } => Some(name),
        _ => None,
    }
}

impl Executor {
    /// The schemas of the session's `search_path` that exist, in order.
    pub(crate) async fn search_path(&self, txn: &Txn) -> SqlResult<Vec<String>> {
        let settings = self.meta.settings();
        let setting = settings
            .get("search_path")
            .map(String::as_str)
            .unwrap_or("\"$user\", public");
        let user = self.meta.identity().user;
        let read_ts = txn.read_ts()?;
        let mut out = Vec::new();
        for name in path_names(setting) {
            let name = if name == "$user" { user.clone() } else { name };
            if out.contains(&name) {
                continue;
            }
            if crate::catalog::schemas::exists(&self.db, txn.database, Some(txn), read_ts, &name)
                .await?
            {
                out.push(name);
            }
        }
        Ok(out)
    }

    /// Whether a relation (table, view or sequence) with this key exists.
    pub(crate) async fn relation_exists(&self, txn: &Txn, key: &str) -> SqlResult<bool> {
        let catalog = txn.overlay(txn.database.catalog);
        let read_ts = txn.read_ts()?;
        Ok(self
            .db
            .lookup_table(txn.database, read_ts, catalog.as_deref(), key)
            .await?
            .is_some()
            || self.view_def(txn, key).await?.is_some()
            || self.sequence_def(txn, key).await?.is_some())
    }

    /// The schema a new relation goes into: 3F000 when no schema of the path exists.
    pub(crate) fn creation_schema(path: &[String]) -> SqlResult<String> {
        match path.iter().find(|s| s.as_str() != PG_CATALOG) {
            Some(s) => Ok(s.clone()),
            None => Err(SqlError::new(
                codes::INVALID_SCHEMA_NAME,
                "no schema has been selected to create in",
            )),
        }
    }

    /// Checks that a relation may be made with key `key`: its schema exists and is not a
    /// system schema, and its name has no dot. The transaction then conflicts with any
    /// concurrent DDL on the schema (a DROP SCHEMA cannot strand the new relation).
    pub(crate) async fn check_creation(
        &self,
        txn: &mut Txn,
        key: &str,
        what: &str,
    ) -> SqlResult<()> {
        let (schema, name) = weft_engine::schema::split_relation(key);
        check_new_name(name, what)?;
        if schema == PUBLIC_SCHEMA {
            return Ok(());
        }
        if schema == PG_CATALOG || schema == crate::catalog::oids::INFORMATION_SCHEMA {
            return Err(SqlError::new(
                codes::INSUFFICIENT_PRIVILEGE,
                format!("permission denied to create \"{schema}.{name}\""),
            )
            .with_detail("System catalog modifications are currently disallowed."));
        }
        if !crate::catalog::schemas::exists(
            &self.db,
            txn.database,
            Some(txn),
            txn.read_ts()?,
            schema,
        )
        .await?
        {
            return Err(SqlError::new(
                codes::INVALID_SCHEMA_NAME,
                format!("schema \"{schema}\" does not exist"),
            ));
        }
        txn.schema_keys
            .insert(crate::catalog::schemas::conflict_key(schema));
        Ok(())
    }

    /// Rewrites the unqualified relation names of `stmt` into the relations they mean under
    /// the session's `search_path` (see the module's overview). pg_catalog's relations
    /// and the names of WITH clauses are left as they are.
    pub(crate) async fn qualify_names(&self, txn: &Txn, stmt: &mut Statement) -> SqlResult<()> {
        let path = self.search_path(txn).await?;
        self.meta.set_search_path(path.clone());
        if path.len() == 1 && path[0] == PUBLIC_SCHEMA {
            return Ok(());
        }
        let mut schemas: HashMap<String, Option<String>> = HashMap::new();
        if let Some(name) = created_name(stmt) {
            if let [ObjectNamePart::Identifier(id)] = name.0.as_slice() {
                let schema = Self::creation_schema(&path)?;
                let bare = ident_name(id);
                // A table that references itself means the one being made.
                schemas.insert(bare, Some(schema.clone()));
                let id = id.clone();
                name.0 = vec![
                    ObjectNamePart::Identifier(Ident::with_quote('"', schema)),
                    ObjectNamePart::Identifier(id),
                ];
            }
        }
        // The names to resolve, then their schemas (lookups are async; the visitor is not).
        let mut wanted = Vec::new();
        {
            let mut collect = |bare: &str| {
                wanted.push(bare.to_string());
                None
            };
            let mut v = Relations {
                ctes: HashSet::new(),
                resolve: &mut collect,
            };
            let _ = stmt.visit(&mut v);
            other_relations(stmt, &mut |n| {
                if let [ObjectNamePart::Identifier(id)] = n.0.as_slice() {
                    wanted.push(ident_name(id));
                }
            });
        }
        for bare in wanted {
            if schemas.contains_key(&bare)
                || crate::catalog::pgcatalog::is_catalog_relation(&self.db, &bare)
            {
                continue;
            }
            let mut found = None;
            for s in &path {
                if s != PG_CATALOG && self.relation_exists(txn, &relation_key(s, &bare)).await? {
                    found = Some(s.clone());
                    break;
                }
            }
            // A name found nowhere stays unqualified when `public` is searched (it is not
            // there either, so it fails as PostgreSQL's does); otherwise it is qualified by
            // the first schema, so it cannot be found in `public`.
            let fallback = (!path.iter().any(|s| s == PUBLIC_SCHEMA))
                .then(|| path.first().cloned().unwrap_or_else(|| PG_CATALOG.into()));
            schemas.insert(bare, found.or(fallback));
        }
        let schemas = schemas;
        let mut resolve = |bare: &str| -> Option<String> {
            schemas
                .get(bare)
                .cloned()
                .flatten()
                .filter(|s| s != PUBLIC_SCHEMA)
        };
        let mut v = Relations {
            ctes: HashSet::new(),
            resolve: &mut resolve,
        };
        let _ = stmt.visit(&mut v);
        let mut plain = |n: &mut ObjectName| {
            let mut v = Relations {
                ctes: HashSet::new(),
                resolve: &mut resolve,
            };
            v.qualify(n);
        };
        other_relations(stmt, &mut plain);
        Ok(())
    }

    /// The relation key one name means: qualified names as written, unqualified ones under
    /// the session's `search_path` (for names that arrive as text: `nextval('s')`, the
    /// carriers of ALTER SEQUENCE and SET CONSTRAINTS).
    pub(crate) async fn resolve_name(&self, txn: &Txn, name: &ObjectName) -> SqlResult<String> {
        let mut stmt = Statement::Drop {
            object_type: ObjectType::Table,
            if_exists: false,
            names: vec![name.clone()],
            cascade: false,
            restrict: false,
            purge: false,
            temporary: false,
            table: None,
        };
        self.qualify_names(txn, &mut stmt).await?;
        match &stmt {
            Statement::Drop { names, .. } => crate::sql::exec::table_name(&names[0]),
            _ => unreachable!("the statement built above is a DROP"),
        }
    }
}
