//! `ALTER TABLE t ALTER COLUMN c ADD GENERATED { ALWAYS | BY DEFAULT } AS IDENTITY
//! [( options )]`, as pg_dump writes every identity column: the column becomes an
//! identity column drawing from a new sequence `t_c_seq` owned by it, as if it had been
//! declared so in CREATE TABLE. Rows already there keep their values.
//!
//! pg_dump names the sequence in the options (`SEQUENCE NAME public.t_c_seq`) and writes
//! them in its own order, neither of which the SQL parser reads: [`without_sequence_name`]
//! takes the name out and orders the options before parsing, and [`check_sequence_name`]
//! then makes sure the name is the one weft gives the sequence.

use datafusion::sql::sqlparser::ast::{
    AlterColumnOperation, AlterTableOperation, GeneratedAs, SequenceOptions, Statement,
};
use weft_engine::schema::{TableDef, FIRST_USER_TABLE_ID};
use weft_engine::SqlType;

use crate::catalog::txn::Txn;
use crate::error::{codes, SqlError, SqlResult};
use crate::sql::exec::{table_name, Executor};
use crate::sql::names::ident_name;

/// `sql` with the options of an `ADD GENERATED ... AS IDENTITY (...)` in the parser's order
/// and without `SEQUENCE NAME <name>`, and that name's last part, unquoted, if given.
pub fn without_sequence_name(sql: &str) -> Option<(String, Option<String>)> {
    let upper = sql.to_ascii_uppercase();
    let generated = upper.find("ADD GENERATED")?;
    let open = generated + upper[generated..].find('(')?;
    let close = open + upper[open..].find(')')?;
    let inside = &sql[open + 1..close];
    let mut words: Vec<&str> = inside.split_whitespace().collect();
    let mut name = None;
    if let Some(at) = words
        .windows(2)
        .position(|w| w[0].eq_ignore_ascii_case("SEQUENCE") && w[1].eq_ignore_ascii_case("NAME"))
    {
        let n = words.get(at + 2)?;
        name = Some(
            n.rsplit('.')
                .next()
                .unwrap_or(n)
                .trim_matches('"')
                .to_string(),
        );
        words.drain(at..at + 3);
    }
    let options = crate::sql::sequence_syntax::ordered_options(&words)?.join(" ");
    Some((
        format!("{}({options}){}", &sql[..open], &sql[close + 1..]),
        name,
    ))
}

/// The named sequence must be the one weft creates, `<table>_<column>_seq`.
pub fn check_sequence_name(stmts: &[Statement], name: &str) -> SqlResult<()> {
    for s in stmts {
        let Statement::AlterTable(at) = s else {
            continue;
        };
        let table = table_name(&at.name)?;
        for op in &at.operations {
            if let AlterTableOperation::AlterColumn {
                column_name,
                op: AlterColumnOperation::AddGenerated { .. },
            } = op
            {
                let expected = format!("{table}_{}_seq", ident_name(column_name));
                if expected != name {
                    return Err(SqlError::unsupported(format!(
                        "an identity column's sequence must be named \"{expected}\", not \"{name}\""
                    )));
                }
            }
        }
    }
    Ok(())
}

/// An identity column's `attidentity` (`a` for ALWAYS, `d` for BY DEFAULT), if its type
/// can be one.
pub(crate) fn identity_kind(ty: &SqlType, generated_as: Option<&GeneratedAs>) -> SqlResult<String> {
    if !matches!(ty, SqlType::SmallInt | SqlType::Integer | SqlType::BigInt) {
        return Err(SqlError::new(
            codes::INVALID_PARAMETER_VALUE,
            "identity column type must be smallint, integer, or bigint",
        ));
    }
    Ok(if matches!(generated_as, Some(GeneratedAs::Always)) {
        "a"
    } else {
        "d"
    }
    .to_string())
}

impl Executor {
    /// Makes column `i` of `def` an identity column.
    pub(crate) async fn add_identity(
        &self,
        txn: &mut Txn,
        def: &mut TableDef,
        i: usize,
        generated_as: Option<GeneratedAs>,
        options: Option<Vec<SequenceOptions>>,
    ) -> SqlResult<()> {
        let col = &def.columns[i];
        let prerequisite = |what: String| {
            SqlError::new(
                codes::OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!(
                    "column \"{}\" of relation \"{}\" {what}",
                    col.name, def.name
                ),
            )
        };
        if col.nullable {
            return Err(prerequisite(
                "must be declared NOT NULL before identity can be added".into(),
            ));
        }
        if col.identity.as_deref().is_some_and(|k| !k.is_empty()) {
            return Err(prerequisite("is already an identity column".into()));
        }
        if col.default.is_some() {
            return Err(prerequisite("already has a default value".into()));
        }
        let kind = identity_kind(&col.ty, generated_as.as_ref())?;
        let seq_name = format!("{}_{}_seq", def.name, col.name);
        if self.sequence_def(txn, &seq_name).await?.is_some() {
            return Err(SqlError::new(
                codes::DUPLICATE_TABLE,
                format!("relation \"{seq_name}\" already exists"),
            ));
        }
        let id = FIRST_USER_TABLE_ID + self.db.entropy.u64() % (u64::MAX - FIRST_USER_TABLE_ID);
        let mut seq = crate::catalog::sequences::SeqDef::new(
            seq_name.clone(),
            weft_engine::schema::oid_for_table_id(id),
            col.ty.clone(),
            1,
        );
        crate::catalog::sequences::apply_options(&mut seq, &options.unwrap_or_default())?;
        seq.owned_by = Some((def.name.clone(), col.name.clone()));
        seq.owner = def.owner.clone();
        crate::catalog::sequences::put(self.db.as_ref(), txn, &seq_name, Some(&seq))?;
        let col = &mut def.columns[i];
        col.identity = Some(kind);
        col.default = Some(format!("nextval('{seq_name}')"));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pg_dumps_sequence_name_is_taken_out() {
        let sql = "ALTER TABLE public.books ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (\n    SEQUENCE NAME public.books_id_seq\n    START WITH 1\n    INCREMENT BY 1\n    CACHE 1\n);";
        let (stripped, name) = without_sequence_name(sql).unwrap();
        let name = name.unwrap();
        assert_eq!(name, "books_id_seq");
        assert!(!stripped.contains("SEQUENCE NAME"), "{stripped}");
        let stmts = crate::sql::prepare::parse(&stripped).unwrap();
        check_sequence_name(&stmts, &name).unwrap();
        assert!(check_sequence_name(&stmts, "other_seq").is_err());
        assert!(without_sequence_name("SELECT 'SEQUENCE NAME x'").is_none());
        let (reordered, name) = without_sequence_name(
            "ALTER TABLE t ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (START WITH 5 INCREMENT BY 2)",
        )
        .unwrap();
        assert_eq!(name, None);
        assert!(
            reordered.ends_with("(INCREMENT BY 2 START WITH 5)"),
            "{reordered}"
        );
    }
}
