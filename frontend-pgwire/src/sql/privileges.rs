//! Privilege checks: before a statement runs, each of its needs
//! ([`crate::sql::privilege_needs`]) is checked against the owners and ACLs in the
//! catalog, as the role the session acts as (42501 on the first that fails, with
//! PostgreSQL's message). A superuser passes every check without reading the catalog.
//!
//! Relations in a schema other than `public` also need USAGE on it. A view is read with
//! its owner's privileges: the user needs SELECT on the view, and the view's owner SELECT
//! on what it reads.

use weft_engine::schema::split_relation;

use crate::catalog::acl::{self, AclItem, ObjectKind, Privs};
use crate::catalog::grants::regclass_key;
use crate::catalog::grants::{self, owner_name, parse_acl, Acting};
use crate::catalog::txn::Txn;
use crate::error::{codes, SqlError, SqlResult};
use crate::sql::exec::Executor;
use crate::sql::privilege_needs::{needs, Need};

/// How deep views of views are followed when their reads are checked.
const VIEW_DEPTH_MAX: usize = 32;

/// A relation as privileges see it.
#[derive(Debug, Clone)]
pub struct Relation {
    pub kind: ObjectKind,
    /// "table", "view" or "sequence", as messages name it.
    pub noun: &'static str,
    pub owner: String,
    pub acl: Option<Vec<AclItem>>,
    /// A view's query.
    pub query: Option<String>,
    /// A table's column defaults, by column name.
    pub defaults: Vec<(String, String)>,
}

impl Relation {
    /// 42501 unless `acting` holds one of `want` on this relation (key `name`).
    fn require(&self, acting: &Acting, name: &str, want: Privs) -> SqlResult<()> {
        acting.require_any(
            self.kind,
            self.noun,
            split_relation(name).1,
            &self.owner,
            self.acl.as_deref(),
            want,
        )
    }
}

impl Executor {
    /// The role the session acts as now, at the transaction's read timestamp.
    pub(crate) async fn acting(&self, txn: &Txn) -> SqlResult<Acting> {
        let role = self.meta.current_role();
        let read_ts = txn.read_ts()?;
        // A trusted (loopback) login may name a role that was never created: it acts as a
        // superuser, as `pg_roles` shows it (trust lets it log in as `postgres` anyway).
        if role == self.meta.identity().user
            && !crate::catalog::roles::exists(&self.db, Some(txn), read_ts, &role).await?
        {
            return Ok(Acting::superuser(&role));
        }
        grants::acting(&self.db, Some(txn), read_ts, &role).await
    }

    /// The relation with key `name` as the transaction sees it.
    pub(crate) async fn relation(&self, txn: &Txn, name: &str) -> SqlResult<Option<Relation>> {
        let catalog = txn.overlay(txn.database.catalog);
        if let Some(def) = self
            .db
            .lookup_table(txn.database, txn.read_ts()?, catalog.as_deref(), name)
            .await?
        {
            return Ok(Some(Relation {
                kind: ObjectKind::Table,
                noun: "table",
                owner: owner_name(def.owner.as_ref()).to_string(),
                acl: parse_acl(def.acl.as_ref())?,
                query: None,
                defaults: def
                    .columns
                    .iter()
                    .filter_map(|c| c.default.clone().map(|d| (c.name.clone(), d)))
                    .collect(),
            }));
        }
        if let Some(v) = self.view_def(txn, name).await? {
            return Ok(Some(Relation {
                kind: ObjectKind::Table,
                noun: "view",
                owner: owner_name(v.owner.as_ref()).to_string(),
                acl: parse_acl(v.acl.as_ref())?,
                query: Some(v.query),
                defaults: Vec::new(),
            }));
        }
        if let Some(s) = self.sequence_def(txn, name).await? {
            return Ok(Some(Relation {
                kind: ObjectKind::Sequence,
                noun: "sequence",
                owner: owner_name(s.owner.as_ref()).to_string(),
                acl: parse_acl(s.acl.as_ref())?,
                query: None,
                defaults: Vec::new(),
            }));
        }
        Ok(None)
    }

    /// Checks what `stmt` needs (see the module's overview).
    pub(crate) async fn check_privileges(
        &self,
        txn: &Txn,
        stmt: &datafusion::sql::sqlparser::ast::Statement,
    ) -> SqlResult<()> {
        let auth = self.db.auth();
        let superuser = self.meta.with_current_role(|r| {
            r == crate::catalog::roles::BOOTSTRAP_ROLE_NAME || auth.users.contains_key(r)
        });
        if superuser {
            return Ok(());
        }
        let acting = self.acting(txn).await?;
        if acting.superuser {
            return Ok(());
        }
        for need in needs(stmt) {
            self.check_need(txn, &acting, need).await?;
        }
        Ok(())
    }

    async fn check_need(&self, txn: &Txn, acting: &Acting, need: Need) -> SqlResult<()> {
        match need {
            Need::Relation { name, privs } => self.check_relation(txn, acting, &name, privs).await,
            Need::Sequence { name, privs } => {
                let Some(rel) = self.relation(txn, &name).await? else {
                    return Ok(());
                };
                self.check_schema_usage(txn, acting, &name).await?;
                rel.require(acting, &name, privs)
            }
            Need::Defaults { table, given } => {
                let Some(rel) = self.relation(txn, &table).await? else {
                    return Ok(());
                };
                for (column, default) in &rel.defaults {
                    if given.as_ref().is_some_and(|g| g.contains(column)) {
                        continue;
                    }
                    let Some(seq) = nextval_target(default) else {
                        continue;
                    };
                    let Some(s) = self.relation(txn, &seq).await? else {
                        continue;
                    };
                    s.require(acting, &seq, acl::USAGE.union(acl::UPDATE))?;
                }
                Ok(())
            }
            Need::CreateIn { relation } => {
                let schema = split_relation(&relation).0.to_string();
                let Some((owner, list)) = self.schema_acl(txn, &schema).await? else {
                    return Ok(());
                };
                acting.require_any(
                    ObjectKind::Schema,
                    "schema",
                    &schema,
                    &owner,
                    Some(&list),
                    acl::CREATE,
                )
            }
            Need::Owner { name } => {
                let Some(rel) = self.relation(txn, &name).await? else {
                    return Ok(());
                };
                acting.require_owner(rel.noun, split_relation(&name).1, &rel.owner)
            }
            Need::IndexOwner { name } => {
                let Some(table) = self.index_table(txn, &name).await? else {
                    return Ok(());
                };
                let Some(rel) = self.relation(txn, &table).await? else {
                    return Ok(());
                };
                acting.require_owner("index", split_relation(&name).1, &rel.owner)
            }
            Need::SchemaOwner { schema } => {
                let Some((owner, _)) = self.schema_acl(txn, &schema).await? else {
                    return Ok(());
                };
                acting.require_owner("schema", &schema, &owner)
            }
            Need::CreateSchema => {
                let database = self.meta.identity().database;
                let stored = crate::catalog::databases::lookup(
                    &self.db,
                    Some(txn),
                    txn.read_ts()?,
                    &database,
                )
                .await?
                .and_then(|d| d.acl);
                acting.require_any(
                    ObjectKind::Database,
                    "database",
                    &database,
                    crate::catalog::roles::BOOTSTRAP_ROLE_NAME,
                    parse_acl(stored.as_ref())?.as_deref(),
                    acl::CREATE,
                )
            }
            Need::RoleAdmin { action, superuser } => {
                if superuser {
                    return Err(SqlError::new(
                        codes::INSUFFICIENT_PRIVILEGE,
                        format!("must be superuser to {action} superusers"),
                    ));
                }
                if acting.createrole {
                    return Ok(());
                }
                Err(SqlError::new(
                    codes::INSUFFICIENT_PRIVILEGE,
                    format!("permission denied to {action} role"),
                ))
            }
            Need::AlterRole {
                name,
                password_only,
            } => {
                if password_only && name == acting.role {
                    return Ok(());
                }
                let target =
                    crate::catalog::roles::resolve(&self.db, Some(txn), txn.read_ts()?, &name)
                        .await?;
                if target.as_ref().is_some_and(|t| t.superuser) {
                    return Err(SqlError::new(
                        codes::INSUFFICIENT_PRIVILEGE,
                        "must be superuser to alter superuser roles or change superuser attribute",
                    ));
                }
                if acting.createrole {
                    return Ok(());
                }
                Err(SqlError::new(
                    codes::INSUFFICIENT_PRIVILEGE,
                    "permission denied",
                ))
            }
            Need::DatabaseOwner { name } => acting.require_owner(
                "database",
                &name,
                crate::catalog::roles::BOOTSTRAP_ROLE_NAME,
            ),
            Need::CreateDatabase => {
                if acting.createdb {
                    return Ok(());
                }
                Err(SqlError::new(
                    codes::INSUFFICIENT_PRIVILEGE,
                    "permission denied to create database",
                ))
            }
        }
    }

    /// Any of `privs` on relation `name` (and USAGE on its schema); a view's reads are
    /// checked as its owner.
    async fn check_relation(
        &self,
        txn: &Txn,
        acting: &Acting,
        name: &str,
        privs: Privs,
    ) -> SqlResult<()> {
        let mut work = vec![(acting.clone(), name.to_string(), privs, 0usize)];
        while let Some((who, name, privs, depth)) = work.pop() {
            if who.superuser {
                continue;
            }
            // Not a relation of the database (a catalog table, a function): nothing to check.
            let Some(rel) = self.relation(txn, &name).await? else {
                continue;
            };
            self.check_schema_usage(txn, &who, &name).await?;
            rel.require(&who, &name, privs)?;
            let Some(query) = rel.query else { continue };
            if depth >= VIEW_DEPTH_MAX {
                continue;
            }
            let owner = grants::acting(&self.db, Some(txn), txn.read_ts()?, &rel.owner).await?;
            let Ok(mut stmts) = datafusion::sql::sqlparser::parser::Parser::parse_sql(
                &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
                &query,
            ) else {
                continue;
            };
            let Some(stmt) = stmts.pop() else { continue };
            for need in needs(&stmt) {
                if let Need::Relation { name, privs } = need {
                    work.push((owner.clone(), name, privs, depth + 1));
                }
            }
        }
        Ok(())
    }

    /// USAGE on the schema of relation `name` (all may use `public` unless it was revoked).
    async fn check_schema_usage(&self, txn: &Txn, acting: &Acting, name: &str) -> SqlResult<()> {
        let schema = split_relation(name).0;
        let Some((owner, list)) = self.schema_acl(txn, schema).await? else {
            return Ok(());
        };
        acting.require_any(
            ObjectKind::Schema,
            "schema",
            schema,
            &owner,
            Some(&list),
            acl::USAGE,
        )
    }

    /// Schema `schema`'s owner and ACL as the transaction sees them.
    async fn schema_acl(
        &self,
        txn: &Txn,
        schema: &str,
    ) -> SqlResult<Option<(String, Vec<AclItem>)>> {
        crate::catalog::schemas::acl_of(&self.db, txn.database, Some(txn), txn.read_ts()?, schema)
            .await
    }

    /// The table index `name` is on.
    async fn index_table(&self, txn: &Txn, name: &str) -> SqlResult<Option<String>> {
        let catalog = txn.overlay(txn.database.catalog);
        let (schema, bare) = split_relation(name);
        let tables = self
            .db
            .list_tables(txn.database, txn.read_ts()?, catalog.as_deref())
            .await?;
        Ok(tables
            .iter()
            .find(|t| {
                split_relation(&t.name).0 == schema
                    && (t.indexes.iter().any(|i| i.name == bare) || t.pkey_name() == bare)
            })
            .map(|t| t.name.clone()))
    }
}

/// The sequence a column default of the form `nextval('s')` draws from.
fn nextval_target(default: &str) -> Option<String> {
    let rest = default.trim().strip_prefix("nextval(")?;
    let inner = rest.trim().strip_prefix('\'')?;
    let end = inner.find('\'')?;
    regclass_key(&inner[..end])
}

#[cfg(test)]
mod tests {
    #[test]
    fn serial_defaults_name_their_sequences() {
        assert_eq!(
            super::nextval_target("nextval('t_id_seq')").as_deref(),
            Some("t_id_seq")
        );
        assert_eq!(
            super::nextval_target("nextval('s.t_id_seq'::regclass)").as_deref(),
            Some("s.t_id_seq")
        );
        assert_eq!(super::nextval_target("now()"), None);
    }
}
