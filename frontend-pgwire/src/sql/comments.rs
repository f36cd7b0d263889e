//! `COMMENT ON TABLE` and `COMMENT ON COLUMN`: a description kept in the table's
//! definition (so it is transactional, and goes with the table), which
//! `obj_description`, `col_description` and `pg_description` show.

use datafusion::sql::sqlparser::ast::{CommentObject, ObjectName};

use crate::catalog::txn::Txn;
use crate::error::{codes, SqlError, SqlResult};
use crate::sql::exec::Executor;
use crate::sql::names::ident_name;
use crate::sql::outcome::{CommandTag, Outcome};

impl Executor {
    pub async fn comment_on(
        &self,
        txn: &mut Txn,
        object_type: CommentObject,
        name: &ObjectName,
        comment: Option<String>,
    ) -> SqlResult<Outcome> {
        let parts: Vec<String> = name
            .0
            .iter()
            .filter_map(|p| p.as_ident().map(ident_name))
            .collect();
        // A leading `public.` is the only schema.
        let parts: &[String] = match parts.as_slice() {
            [schema, rest @ ..] if schema == "public" && !rest.is_empty() => rest,
            all => all,
        };
        let comment = comment.filter(|c| !c.is_empty());
        match (object_type, parts) {
            (CommentObject::Table, [table]) => {
                let mut def = (*self.table_def(txn, table).await?).clone();
                def.comment = comment;
                self.put_table_def(txn, &def)?;
            }
            (CommentObject::Column, [table, column]) => {
                let mut def = (*self.table_def(txn, table).await?).clone();
                let i = def.column_index(column).ok_or_else(|| {
                    SqlError::new(
                        codes::UNDEFINED_COLUMN,
                        format!("column \"{column}\" of relation \"{table}\" does not exist"),
                    )
                })?;
                def.columns[i].comment = comment;
                self.put_table_def(txn, &def)?;
            }
            (CommentObject::Table | CommentObject::Column, _) => {
                return Err(SqlError::syntax(format!("improper qualified name: {name}")))
            }
            (other, _) => {
                return Err(SqlError::unsupported(format!(
                    "COMMENT ON {other} is not supported"
                )))
            }
        }
        Ok(Outcome::Command(CommandTag::new("COMMENT")))
    }
}
