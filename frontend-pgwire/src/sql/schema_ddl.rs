//! `CREATE SCHEMA` and `DROP SCHEMA`. Every database has `public`, `pg_catalog` and
//! `information_schema`; `CREATE SCHEMA s [AUTHORIZATION r]` makes another
//! ([`crate::catalog::schemas`]), whose relations are keyed `s.name`. `DROP SCHEMA` refuses
//! a schema that holds relations (2BP01) unless CASCADE drops them with it. The built-in
//! schemas cannot be dropped (0A000). `ALTER SCHEMA ... OWNER TO` gives a schema to another
//! role (the built-in ones stay where they are); renaming a schema answers 0A000.

use datafusion::sql::sqlparser::ast::{
    AlterSchema, AlterSchemaOperation, Ident, ObjectName, ObjectNamePart, Owner, SchemaName,
};
use weft_engine::schema::split_relation;

use crate::catalog::schemas::{is_built_in, SchemaDef};
use crate::catalog::txn::Txn;
use crate::error::{codes, SqlError, SqlResult};
use crate::sql::exec::Executor;
use crate::sql::names::ident_name;
use crate::sql::outcome::{CommandTag, Notice, Outcome};
use crate::sql::search_path::check_new_name;

fn schema_name(name: &ObjectName) -> SqlResult<String> {
    match name.0.as_slice() {
        [part] => part
            .as_ident()
            .map(ident_name)
            .ok_or_else(|| SqlError::syntax(format!("unsupported name {name}"))),
        _ => Err(SqlError::syntax(format!(
            "improper qualified name (too many dotted names): {name}"
        ))),
    }
}

fn notice(message: String) -> Notice {
    Notice {
        severity: "NOTICE",
        code: "00000",
        message,
    }
}

/// `schema.name` as an object name, both parts quoted (so they reach the executor as is).
fn qualified(key: &str) -> ObjectName {
    let (schema, name) = split_relation(key);
    ObjectName(vec![
        ObjectNamePart::Identifier(Ident::with_quote('"', schema)),
        ObjectNamePart::Identifier(Ident::with_quote('"', name)),
    ])
}

/// The relations of a schema, by kind.
#[derive(Default)]
struct Members {
    tables: Vec<String>,
    views: Vec<String>,
    /// Sequences no table owns (those a table owns go with it).
    sequences: Vec<String>,
}

impl Members {
    fn described(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (kind, keys) in [
            ("table", &self.tables),
            ("view", &self.views),
            ("sequence", &self.sequences),
        ] {
            for k in keys {
                out.push(format!(
                    "{kind} {}",
                    crate::catalog::schemas::sql_name(k).replace('"', "")
                ));
            }
        }
        out
    }
}

impl Executor {
    /// CREATE SCHEMA [IF NOT EXISTS] name [AUTHORIZATION role].
    pub async fn create_schema(
        &self,
        txn: &mut Txn,
        name: &SchemaName,
        if_not_exists: bool,
        notices: &mut Vec<Notice>,
    ) -> SqlResult<Outcome> {
        let tag = Outcome::Command(CommandTag::new("CREATE SCHEMA"));
        let (name, owner) = match name {
            SchemaName::Simple(n) => (schema_name(n)?, None),
            SchemaName::NamedAuthorization(n, r) => (schema_name(n)?, Some(ident_name(r))),
            SchemaName::UnnamedAuthorization(r) => (ident_name(r), Some(ident_name(r))),
        };
        if name.starts_with("pg_") {
            return Err(
                SqlError::new("42939", format!("unacceptable schema name \"{name}\""))
                    .with_detail("The prefix \"pg_\" is reserved for system schemas."),
            );
        }
        let read_ts = txn.read_ts()?;
        if crate::catalog::schemas::exists(&self.db, txn.database, Some(txn), read_ts, &name)
            .await?
        {
            if if_not_exists {
                notices.push(notice(format!(
                    "schema \"{name}\" already exists, skipping"
                )));
                return Ok(tag);
            }
            return Err(SqlError::new(
                codes::DUPLICATE_SCHEMA,
                format!("schema \"{name}\" already exists"),
            ));
        }
        check_new_name(&name, "schema")?;
        // AUTHORIZATION gives it to a role the creator is a member of; else the creator
        // owns it.
        let owner = match owner {
            Some(r) => {
                self.new_owner(txn, &Owner::Ident(Ident::with_quote('"', r)))
                    .await?
            }
            None => self.meta.current_role(),
        };
        let id = weft_engine::schema::FIRST_USER_TABLE_ID
            + self.db.entropy.u64() % (u64::MAX - weft_engine::schema::FIRST_USER_TABLE_ID);
        let def = SchemaDef {
            name: name.clone(),
            oid: weft_engine::schema::oid_for_table_id(id),
            owner,
            comment: None,
            acl: None,
        };
        crate::catalog::schemas::put(&self.db, txn, &name, Some(&def))?;
        Ok(tag)
    }

    /// ALTER SCHEMA [IF EXISTS] name OWNER TO role | RENAME TO new.
    pub async fn alter_schema(
        &self,
        txn: &mut Txn,
        a: &AlterSchema,
        notices: &mut Vec<Notice>,
    ) -> SqlResult<Outcome> {
        let name = schema_name(&a.name)?;
        let read_ts = txn.read_ts()?;
        if !crate::catalog::schemas::exists(&self.db, txn.database, Some(txn), read_ts, &name)
            .await?
        {
            if a.if_exists {
                notices.push(notice(format!(
                    "schema \"{name}\" does not exist, skipping"
                )));
                return Ok(Outcome::Command(CommandTag::new("ALTER SCHEMA")));
            }
            return Err(SqlError::new(
                codes::INVALID_SCHEMA_NAME,
                format!("schema \"{name}\" does not exist"),
            ));
        }
        for op in &a.operations {
            match op {
                AlterSchemaOperation::OwnerTo { owner } => {
                    let role = self.new_owner(txn, owner).await?;
                    if crate::catalog::schemas::is_built_in(&name) {
                        if role == crate::catalog::roles::BOOTSTRAP_ROLE_NAME {
                            continue;
                        }
                        return Err(SqlError::unsupported(format!(
                            "changing the owner of schema \"{name}\" is not supported"
                        )));
                    }
                    if let Some(mut def) = crate::catalog::schemas::lookup(
                        &self.db,
                        txn.database,
                        Some(txn),
                        read_ts,
                        &name,
                    )
                    .await?
                    {
                        def.owner = role;
                        crate::catalog::schemas::put(&self.db, txn, &name, Some(&def))?;
                    }
                }
                AlterSchemaOperation::Rename { .. } => {
                    return Err(SqlError::unsupported(
                        "ALTER SCHEMA ... RENAME TO is not supported",
                    )
                    .with_hint("create the new schema and move the data with INSERT ... SELECT"))
                }
                other => {
                    return Err(SqlError::unsupported(format!(
                        "ALTER SCHEMA ... {other} is not supported"
                    )))
                }
            }
        }
        Ok(Outcome::Command(CommandTag::new("ALTER SCHEMA")))
    }

    /// The relations in schema `name`.
    async fn members(&self, txn: &Txn, name: &str) -> SqlResult<Members> {
        let read_ts = txn.read_ts()?;
        let in_schema = |key: &str| split_relation(key).0 == name;
        let catalog = txn.overlay(txn.database.catalog);
        let tables = self
            .db
            .list_tables(txn.database, read_ts, catalog.as_deref())
            .await?;
        let views = txn.overlay(txn.database.views);
        let views =
            crate::catalog::views::list(&self.db, txn.database, read_ts, views.as_deref()).await?;
        let seqs = txn.overlay(txn.database.sequences);
        let seqs =
            crate::catalog::sequences::list(&self.db, txn.database, read_ts, seqs.as_deref())
                .await?;
        Ok(Members {
            tables: tables
                .iter()
                .filter(|t| in_schema(&t.name))
                .map(|t| t.name.clone())
                .collect(),
            views: views
                .iter()
                .filter(|v| in_schema(&v.name))
                .map(|v| v.name.clone())
                .collect(),
            sequences: seqs
                .iter()
                .filter(|q| in_schema(&q.name) && q.owned_by.is_none())
                .map(|q| q.name.clone())
                .collect(),
        })
    }

    /// DROP SCHEMA [IF EXISTS] name [, ...] [CASCADE | RESTRICT].
    pub async fn drop_schemas(
        &self,
        txn: &mut Txn,
        names: &[ObjectName],
        if_exists: bool,
        cascade: bool,
        notices: &mut Vec<Notice>,
    ) -> SqlResult<Outcome> {
        for n in names {
            let name = schema_name(n)?;
            if is_built_in(&name) {
                return Err(SqlError::unsupported(format!(
                    "dropping the schema \"{name}\" is not supported"
                )));
            }
            let read_ts = txn.read_ts()?;
            if crate::catalog::schemas::lookup(&self.db, txn.database, Some(txn), read_ts, &name)
                .await?
                .is_none()
            {
                if !if_exists {
                    return Err(SqlError::new(
                        codes::INVALID_SCHEMA_NAME,
                        format!("schema \"{name}\" does not exist"),
                    ));
                }
                notices.push(notice(format!(
                    "schema \"{name}\" does not exist, skipping"
                )));
                continue;
            }
            let members = self.members(txn, &name).await?;
            let described = members.described();
            if !described.is_empty() {
                if !cascade {
                    let detail = described
                        .iter()
                        .map(|d| format!("{d} depends on schema {name}"))
                        .collect::<Vec<_>>()
                        .join("\n");
                    return Err(SqlError::new(
                        codes::DEPENDENT_OBJECTS_STILL_EXIST,
                        format!("cannot drop schema {name} because other objects depend on it"),
                    )
                    .with_detail(detail)
                    .with_hint("Use DROP ... CASCADE to drop the dependent objects too."));
                }
                notices.push(notice(if described.len() == 1 {
                    format!("drop cascades to {}", described[0])
                } else {
                    format!("drop cascades to {} other objects", described.len())
                }));
                let mut quiet = Vec::new();
                let views: Vec<ObjectName> = members.views.iter().map(|k| qualified(k)).collect();
                if !views.is_empty() {
                    self.drop_views(txn, &views, true, true, &mut quiet).await?;
                }
                let tables: Vec<ObjectName> = members.tables.iter().map(|k| qualified(k)).collect();
                if !tables.is_empty() {
                    self.drop_tables(txn, &tables, true, true, &mut quiet)
                        .await?;
                }
                let seqs: Vec<ObjectName> =
                    members.sequences.iter().map(|k| qualified(k)).collect();
                if !seqs.is_empty() {
                    self.drop_sequences(txn, &seqs, true, &mut quiet).await?;
                }
            }
            crate::catalog::schemas::put(&self.db, txn, &name, None)?;
        }
        Ok(Outcome::Command(CommandTag::new("DROP SCHEMA")))
    }
}
