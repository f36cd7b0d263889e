//! `ALTER TABLE | SEQUENCE | VIEW | SCHEMA ... OWNER TO role` and `CREATE SCHEMA ...
//! AUTHORIZATION role`: the new owner is checked as PostgreSQL checks it (the role exists,
//! 42704; the current role is a member of it or a superuser, 42501) and stored in the
//! object's catalog row. Whether the current role owns the object is checked before, with
//! the statement's other privileges ([`crate::sql::privileges`]).
//!
//! Databases stay owned by the bootstrap superuser: giving one to another role answers
//! 0A000 (restore with `--no-owner`).

use datafusion::sql::sqlparser::ast::Owner;

use crate::catalog::roles::BOOTSTRAP_ROLE_NAME;
use crate::catalog::txn::Txn;
use crate::error::{codes, SqlError, SqlResult};
use crate::sql::exec::Executor;
use crate::sql::names::ident_name;

impl Executor {
    /// The role `OWNER TO` names, once checked.
    pub(crate) async fn new_owner(&self, txn: &Txn, owner: &Owner) -> SqlResult<String> {
        let role = match owner {
            Owner::Ident(i) => ident_name(i),
            Owner::CurrentRole | Owner::CurrentUser => self.meta.current_role(),
            Owner::SessionUser => self.meta.identity().user,
        };
        let read_ts = txn.read_ts()?;
        if !crate::catalog::roles::exists(&self.db, Some(txn), read_ts, &role).await? {
            return Err(SqlError::new(
                codes::UNDEFINED_OBJECT,
                format!("role \"{role}\" does not exist"),
            ));
        }
        let acting = self.acting(txn).await?;
        if !acting.superuser
            && !crate::catalog::grants::is_member(&self.db, Some(txn), read_ts, &acting.role, &role)
                .await?
        {
            return Err(SqlError::new(
                codes::INSUFFICIENT_PRIVILEGE,
                format!("must be member of role \"{role}\""),
            ));
        }
        Ok(role)
    }

    /// `ALTER TABLE name OWNER TO role` of a sequence or a view (as pg_dump writes it for
    /// both).
    pub(crate) async fn relation_owner_to(
        &self,
        txn: &mut Txn,
        name: &str,
        owner: &Owner,
    ) -> SqlResult<()> {
        let role = self.new_owner(txn, owner).await?;
        let stored = crate::catalog::grants::stored_owner(&role);
        if let Some(mut seq) = self.sequence_def(txn, name).await? {
            seq.owner = stored;
            return crate::catalog::sequences::put(self.db.as_ref(), txn, name, Some(&seq));
        }
        if let Some(mut view) = self.view_def(txn, name).await? {
            view.owner = stored;
            return crate::catalog::views::put(self.db.as_ref(), txn, name, Some(&view));
        }
        Err(SqlError::new(
            codes::UNDEFINED_TABLE,
            format!("relation \"{name}\" does not exist"),
        ))
    }

    /// `OWNER` of `CREATE|ALTER DATABASE`: only the bootstrap superuser owns databases.
    pub(crate) async fn database_owner_to(&self, txn: &Txn, owner: &Owner) -> SqlResult<()> {
        let role = match owner {
            Owner::Ident(i) => ident_name(i),
            Owner::CurrentRole | Owner::CurrentUser => self.meta.current_role(),
            Owner::SessionUser => self.meta.identity().user,
        };
        if role == BOOTSTRAP_ROLE_NAME {
            return Ok(());
        }
        let exists =
            crate::catalog::roles::exists(&self.db, Some(txn), txn.read_ts()?, &role).await?;
        if !exists {
            return Err(SqlError::new(
                codes::UNDEFINED_OBJECT,
                format!("role \"{role}\" does not exist"),
            ));
        }
        Err(SqlError::unsupported(format!(
            "changing a database's owner to \"{role}\" is not supported: every database is owned by \"{BOOTSTRAP_ROLE_NAME}\""
        ))
        .with_hint("restore with pg_restore --no-owner (or pg_dump --no-owner)"))
    }
}
