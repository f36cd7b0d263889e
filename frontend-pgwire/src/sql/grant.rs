//! `GRANT` and `REVOKE` of privileges on tables, views, sequences and schemas (also `ON ALL
//! TABLES | SEQUENCES IN SCHEMA`), as PostgreSQL runs them: the object's owner (or a
//! superuser, who grants as the owner) grants and revokes; another role grants only what it
//! holds WITH GRANT OPTION, as its own grantor (a warning when that is not everything it
//! asked, 42501 when it is nothing). The ACL is stored in the object's catalog row
//! ([`crate::catalog::acl`]); a database's in its row of the cluster's database table.
//! Column privileges and privileges on functions answer 0A000.

use datafusion::sql::sqlparser::ast::{
    Action, Grant, GrantObjects, Grantee, GranteeName, GranteesType, ObjectName, Privileges, Revoke,
};
use weft_engine::schema::split_relation;

use crate::catalog::acl::{self, AclItem, ObjectKind, Privs};
use crate::catalog::grants::{denied, store_acl, Acting};
use crate::catalog::txn::Txn;
use crate::error::{codes, SqlError, SqlResult};
use crate::sql::exec::{table_name, Executor};
use crate::sql::names::ident_name;
use crate::sql::outcome::{CommandTag, Notice, Outcome};

/// An object a GRANT names.
enum Target {
    /// A table, view or sequence, by key.
    Relation(String),
    Schema(String),
    Database(String),
}

/// The privileges an action list names; `None` for `ALL`.
fn named_privileges(p: &Privileges) -> SqlResult<Option<Privs>> {
    let actions = match p {
        Privileges::All { .. } => return Ok(None),
        Privileges::Actions(a) => a,
    };
    let mut out = Privs::NONE;
    for a in actions {
        let one = match a {
            Action::Select { columns: None } => acl::SELECT,
            Action::Insert { columns: None } => acl::INSERT,
            Action::Update { columns: None } => acl::UPDATE,
            Action::References { columns: None } => acl::REFERENCES,
            Action::Select { .. }
            | Action::Insert { .. }
            | Action::Update { .. }
            | Action::References { .. } => {
                return Err(SqlError::unsupported(
                    "column privileges are not supported: grant on the whole table",
                ))
            }
            Action::Delete => acl::DELETE,
            Action::Truncate => acl::TRUNCATE,
            Action::Trigger => acl::TRIGGER,
            Action::Usage => acl::USAGE,
            Action::Create { obj_type: None } => acl::CREATE,
            Action::Connect => acl::CONNECT,
            Action::Temporary => acl::TEMPORARY,
            Action::Execute { .. } => acl::EXECUTE,
            other => {
                return Err(SqlError::syntax(format!(
                    "unrecognized privilege type \"{other}\""
                )))
            }
        };
        out = out.union(one);
    }
    Ok(Some(out))
}

/// The grantees: role names, the empty name for PUBLIC.
fn grantee_names(grantees: &[Grantee], acting: &Acting) -> SqlResult<Vec<String>> {
    grantees
        .iter()
        .map(|g| match (&g.grantee_type, &g.name) {
            (GranteesType::Public, _) => Ok(String::new()),
            (_, Some(GranteeName::ObjectName(n))) => {
                let name = match n.0.as_slice() {
                    [p] => p
                        .as_ident()
                        .map(|i| (ident_name(i), i.quote_style.is_some())),
                    _ => None,
                };
                match name {
                    Some((n, false)) if n == "public" => Ok(String::new()),
                    Some((n, false)) if n == "current_user" || n == "current_role" => {
                        Ok(acting.role.clone())
                    }
                    Some((n, _)) => Ok(n),
                    None => Err(SqlError::syntax(format!("invalid role name {n}"))),
                }
            }
            _ => Err(SqlError::syntax(format!("invalid grantee {g}"))),
        })
        .collect()
}

impl Executor {
    /// `GRANT ... ON ... TO ...`.
    pub(crate) async fn grant(
        &self,
        txn: &mut Txn,
        g: &Grant,
        notices: &mut Vec<Notice>,
    ) -> SqlResult<Outcome> {
        let objects = g
            .objects
            .as_ref()
            .ok_or_else(|| SqlError::syntax("GRANT needs ON"))?;
        self.change_privileges(
            txn,
            &g.privileges,
            objects,
            &g.grantees,
            true,
            g.with_grant_option,
            notices,
        )
        .await?;
        Ok(Outcome::Command(CommandTag::new("GRANT")))
    }

    /// `REVOKE ... ON ... FROM ...`.
    pub(crate) async fn revoke(
        &self,
        txn: &mut Txn,
        r: &Revoke,
        notices: &mut Vec<Notice>,
    ) -> SqlResult<Outcome> {
        let objects = r
            .objects
            .as_ref()
            .ok_or_else(|| SqlError::syntax("REVOKE needs ON"))?;
        self.change_privileges(
            txn,
            &r.privileges,
            objects,
            &r.grantees,
            false,
            false,
            notices,
        )
        .await?;
        Ok(Outcome::Command(CommandTag::new("REVOKE")))
    }

    #[allow(clippy::too_many_arguments)]
    async fn change_privileges(
        &self,
        txn: &mut Txn,
        privileges: &Privileges,
        objects: &GrantObjects,
        grantees: &[Grantee],
        is_grant: bool,
        with_grant_option: bool,
        notices: &mut Vec<Notice>,
    ) -> SqlResult<()> {
        let asked = named_privileges(privileges)?;
        let acting = self.acting(txn).await?;
        let names = grantee_names(grantees, &acting)?;
        let read_ts = txn.read_ts()?;
        for n in names.iter().filter(|n| !n.is_empty()) {
            if !crate::catalog::roles::exists(&self.db, Some(txn), read_ts, n).await? {
                return Err(SqlError::new(
                    codes::UNDEFINED_OBJECT,
                    format!("role \"{n}\" does not exist"),
                ));
            }
        }
        for target in self.targets(txn, objects).await? {
            let (kind, noun, name, owner, list) = match &target {
                Target::Relation(key) => {
                    let rel = self.relation(txn, key).await?.ok_or_else(|| {
                        SqlError::new(
                            codes::UNDEFINED_TABLE,
                            format!("relation \"{key}\" does not exist"),
                        )
                    })?;
                    let list = acl::effective(rel.kind, &rel.owner, rel.acl.as_deref());
                    (
                        rel.kind,
                        rel.noun,
                        split_relation(key).1.to_string(),
                        rel.owner,
                        list,
                    )
                }
                Target::Schema(s) => {
                    let (owner, list) = crate::catalog::schemas::acl_of(
                        &self.db,
                        txn.database,
                        Some(txn),
                        read_ts,
                        s,
                    )
                    .await?
                    .ok_or_else(|| {
                        SqlError::new(
                            codes::INVALID_SCHEMA_NAME,
                            format!("schema \"{s}\" does not exist"),
                        )
                    })?;
                    (ObjectKind::Schema, "schema", s.clone(), owner, list)
                }
                Target::Database(d) => {
                    let def = crate::catalog::databases::lookup(&self.db, Some(txn), read_ts, d)
                        .await?
                        .ok_or_else(|| {
                            SqlError::new(
                                codes::INVALID_CATALOG_NAME,
                                format!("database \"{d}\" does not exist"),
                            )
                        })?;
                    let owner = crate::catalog::roles::BOOTSTRAP_ROLE_NAME.to_string();
                    let list = acl::effective(
                        ObjectKind::Database,
                        &owner,
                        crate::catalog::grants::parse_acl(def.acl.as_ref())?.as_deref(),
                    );
                    (ObjectKind::Database, "database", d.clone(), owner, list)
                }
            };
            let wanted = match asked {
                None => kind.all(),
                Some(p) => {
                    if !kind.all().contains(p) {
                        // The first privilege the kind does not have.
                        let extra = p.minus(kind.all()).0;
                        let bad = Privs(extra & extra.wrapping_neg());
                        return Err(SqlError::new(
                            "0LP01",
                            format!("invalid privilege type {} for {noun}", bad.name()),
                        ));
                    }
                    p
                }
            };
            // The owner (or a superuser, as the owner) grants anything; another role what
            // it holds with the grant option, as itself; a role that holds nothing on the
            // object is refused.
            let (grantor, allowed) = if acting.owns(&owner) {
                (owner.clone(), wanted)
            } else {
                let (held, grantable) = acting.held(kind, &owner, Some(&list));
                if held.is_empty() && grantable.is_empty() {
                    return Err(denied(noun, &name));
                }
                (acting.role.clone(), grantable.intersect(wanted))
            };
            // As PostgreSQL warns: nothing, or not everything asked (unless ALL), was done.
            let (code, done) = if is_grant {
                (
                    "01007",
                    [
                        "no privileges were granted",
                        "not all privileges were granted",
                    ],
                )
            } else {
                (
                    "01006",
                    [
                        "no privileges could be revoked",
                        "not all privileges could be revoked",
                    ],
                )
            };
            if allowed.is_empty() || (asked.is_some() && allowed != wanted) {
                notices.push(Notice {
                    severity: "WARNING",
                    code,
                    message: format!(
                        "{} for \"{name}\"",
                        if allowed.is_empty() { done[0] } else { done[1] }
                    ),
                });
            }
            if allowed.is_empty() {
                // PostgreSQL's REVOKE of a privilege that columns also carry goes on to the
                // table's columns, and refuses a role holding no column privilege at all
                // (the first column it checks is the system column `tableoid`).
                let column_rights =
                    Privs(acl::SELECT.0 | acl::INSERT.0 | acl::UPDATE.0 | acl::REFERENCES.0);
                let (held, grantable) = acting.held(kind, &owner, Some(&list));
                if !is_grant
                    && noun == "table"
                    && wanted.any(column_rights)
                    && !held.union(grantable).any(column_rights)
                {
                    return Err(SqlError::new(
                        codes::INSUFFICIENT_PRIVILEGE,
                        format!("permission denied for column \"tableoid\" of relation \"{name}\""),
                    ));
                }
                continue;
            }
            let mut list = list;
            for grantee in &names {
                if is_grant {
                    acl::grant(&mut list, grantee, &grantor, allowed, with_grant_option);
                } else {
                    acl::revoke(&mut list, grantee, &grantor, allowed, false);
                }
            }
            self.store_privileges(txn, &target, &list).await?;
        }
        Ok(())
    }

    /// The objects a GRANT names, resolved.
    async fn targets(&self, txn: &Txn, objects: &GrantObjects) -> SqlResult<Vec<Target>> {
        let relations = |names: &Vec<ObjectName>| -> SqlResult<Vec<Target>> {
            names
                .iter()
                .map(|n| table_name(n).map(Target::Relation))
                .collect()
        };
        match objects {
            GrantObjects::Tables(names)
            | GrantObjects::Sequences(names)
            | GrantObjects::Views(names) => relations(names),
            GrantObjects::Schemas(names) => Ok(names
                .iter()
                .map(|n| Target::Schema(crate::sql::names::object_ident(n)))
                .collect()),
            GrantObjects::Databases(names) => Ok(names
                .iter()
                .map(|n| Target::Database(crate::sql::names::object_ident(n)))
                .collect()),
            GrantObjects::AllTablesInSchema { schemas }
            | GrantObjects::AllSequencesInSchema { schemas } => {
                let sequences = matches!(objects, GrantObjects::AllSequencesInSchema { .. });
                let read_ts = txn.read_ts()?;
                let mut out = Vec::new();
                for s in schemas {
                    let schema = crate::sql::names::object_ident(s);
                    let in_schema = |key: &str| split_relation(key).0 == schema;
                    if sequences {
                        let seqs = txn.overlay(txn.database.sequences);
                        for q in crate::catalog::sequences::list(
                            &self.db,
                            txn.database,
                            read_ts,
                            seqs.as_deref(),
                        )
                        .await?
                        {
                            if in_schema(&q.name) {
                                out.push(Target::Relation(q.name));
                            }
                        }
                    } else {
                        let catalog = txn.overlay(txn.database.catalog);
                        for t in self
                            .db
                            .list_tables(txn.database, read_ts, catalog.as_deref())
                            .await?
                            .iter()
                        {
                            if in_schema(&t.name) {
                                out.push(Target::Relation(t.name.clone()));
                            }
                        }
                        let views = txn.overlay(txn.database.views);
                        for v in crate::catalog::views::list(
                            &self.db,
                            txn.database,
                            read_ts,
                            views.as_deref(),
                        )
                        .await?
                        {
                            if in_schema(&v.name) {
                                out.push(Target::Relation(v.name));
                            }
                        }
                    }
                }
                Ok(out)
            }
            other => Err(SqlError::unsupported(format!(
                "GRANT and REVOKE on {other} are not supported: weft keeps privileges on tables, views, sequences and schemas"
            ))),
        }
    }

    /// Writes an object's new ACL into its catalog row.
    async fn store_privileges(
        &self,
        txn: &mut Txn,
        target: &Target,
        list: &[AclItem],
    ) -> SqlResult<()> {
        let stored = Some(store_acl(list));
        match target {
            Target::Relation(key) => {
                let catalog = txn.overlay(txn.database.catalog);
                if let Some(def) = self
                    .db
                    .lookup_table(txn.database, txn.read_ts()?, catalog.as_deref(), key)
                    .await?
                {
                    let mut def = (*def).clone();
                    def.acl = stored;
                    return self.put_table_def(txn, &def);
                }
                if let Some(mut v) = self.view_def(txn, key).await? {
                    v.acl = stored;
                    return crate::catalog::views::put(self.db.as_ref(), txn, key, Some(&v));
                }
                if let Some(mut s) = self.sequence_def(txn, key).await? {
                    s.acl = stored;
                    return crate::catalog::sequences::put(self.db.as_ref(), txn, key, Some(&s));
                }
                Err(SqlError::new(
                    codes::UNDEFINED_TABLE,
                    format!("relation \"{key}\" does not exist"),
                ))
            }
            Target::Database(name) => {
                let def =
                    crate::catalog::databases::lookup(&self.db, Some(txn), txn.read_ts()?, name)
                        .await?
                        .ok_or_else(|| {
                            SqlError::new(
                                codes::INVALID_CATALOG_NAME,
                                format!("database \"{name}\" does not exist"),
                            )
                        })?;
                let def = crate::catalog::databases::DatabaseDef { acl: stored, ..def };
                crate::catalog::databases::put(&self.db, txn, name, Some(&def))
            }
            Target::Schema(name) => {
                let read_ts = txn.read_ts()?;
                let def = match crate::catalog::schemas::lookup(
                    &self.db,
                    txn.database,
                    Some(txn),
                    read_ts,
                    name,
                )
                .await?
                {
                    Some(d) => d,
                    // A built-in schema gets a row to hold its ACL.
                    None => crate::catalog::schemas::SchemaDef {
                        name: name.clone(),
                        oid: crate::catalog::schemas::oid_of(&[], name).unwrap_or(0) as u32,
                        owner: crate::catalog::schemas::acl_of(
                            &self.db,
                            txn.database,
                            Some(txn),
                            read_ts,
                            name,
                        )
                        .await?
                        .map(|(o, _)| o)
                        .unwrap_or_default(),
                        comment: None,
                        acl: None,
                    },
                };
                let def = crate::catalog::schemas::SchemaDef { acl: stored, ..def };
                crate::catalog::schemas::put(&self.db, txn, name, Some(&def))
            }
        }
    }
}
