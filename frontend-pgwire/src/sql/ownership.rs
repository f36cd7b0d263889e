//! `ALTER TABLE | SEQUENCE ... OWNER TO role`. weft records no owner per object: every
//! table and sequence is owned by the bootstrap role (pg_class.relowner), whose name is
//! what pg_dump writes. Giving an object to that role changes nothing and succeeds, so a
//! dump restores; giving it to another role answers 0A000 (restore with `--no-owner`), and
//! to a role that does not exist 42704, as PostgreSQL does.

use datafusion::sql::sqlparser::ast::Owner;

use crate::catalog::roles::BOOTSTRAP_ROLE_NAME;
use crate::catalog::txn::Txn;
use crate::error::{codes, SqlError, SqlResult};
use crate::sql::exec::Executor;
use crate::sql::names::ident_name;

impl Executor {
    pub(crate) async fn owner_to(&self, txn: &Txn, owner: &Owner) -> SqlResult<()> {
        let role = match owner {
            Owner::Ident(i) => ident_name(i),
            Owner::CurrentRole | Owner::CurrentUser | Owner::SessionUser => {
                self.meta.identity().user
            }
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
            "changing an object's owner to \"{role}\" is not supported: every object is owned by \"{BOOTSTRAP_ROLE_NAME}\""
        ))
        .with_hint("restore with pg_restore --no-owner (or pg_dump --no-owner)"))
    }
}
