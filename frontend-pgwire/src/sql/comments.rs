//! `COMMENT ON TABLE`, `COMMENT ON COLUMN` and `COMMENT ON SCHEMA`: a description kept in
//! the table's (or schema's) definition, so it is transactional and goes with the object,
//! which `obj_description`, `col_description` and `pg_description` show.

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
        let key = weft_engine::schema::relation_key;
        let comment = comment.filter(|c| !c.is_empty());
        match (object_type, parts.as_slice()) {
            (CommentObject::Schema, [schema]) => {
                let read_ts = txn.read_ts()?;
                let Some(mut def) = crate::catalog::schemas::lookup(
                    &self.db,
                    txn.database,
                    Some(txn),
                    read_ts,
                    schema,
                )
                .await?
                else {
                    if crate::catalog::schemas::is_built_in(schema) {
                        return Err(SqlError::unsupported(format!(
                            "COMMENT ON SCHEMA {schema} is not supported"
                        )));
                    }
                    return Err(SqlError::new(
                        codes::INVALID_SCHEMA_NAME,
                        format!("schema \"{schema}\" does not exist"),
                    ));
                };
                def.comment = comment;
                crate::catalog::schemas::put(&self.db, txn, schema, Some(&def))?;
            }
            (CommentObject::Table, [table]) | (CommentObject::Table, [_, table]) => {
                let table = match parts.as_slice() {
                    [schema, _] => key(schema, table),
                    _ => table.clone(),
                };
                let mut def = (*self.table_def(txn, &table).await?).clone();
                def.comment = comment;
                self.put_table_def(txn, &def)?;
            }
            (CommentObject::Column, [table, column])
            | (CommentObject::Column, [_, table, column]) => {
                let table = match parts.as_slice() {
                    [schema, _, _] => key(schema, table),
                    _ => table.clone(),
                };
                let table = &table;
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
