//! `SET CONSTRAINTS { ALL | name [, ...] } { DEFERRED | IMMEDIATE }`, which the parser does
//! not read, carried as `CALL weft_set_constraints(mode, name...)`
//! ([`crate::sql::carrier`]). Django's test cases send `SET CONSTRAINTS ALL IMMEDIATE` and
//! `... DEFERRED` around every test.
//!
//! As in PostgreSQL: the setting lasts until the transaction ends and applies to deferrable
//! constraints only (weft's are foreign keys); IMMEDIATE also runs the affected checks
//! still pending, now; a named constraint that is not a foreign key of the database is
//! 42704, one that is not deferrable 42809; outside a transaction block the statement
//! warns (25P01) and changes nothing.

use datafusion::sql::sqlparser::ast::{Function, Statement};

use crate::catalog::txn::Txn;
use crate::error::{codes, SqlError, SqlResult};
use crate::sql::carrier;
use crate::sql::exec::Executor;
use crate::sql::outcome::{CommandTag, Notice, Outcome};

pub const PROCEDURE: &str = "weft_set_constraints";

/// The statement, if `sql` is a SET CONSTRAINTS; `None` for other statements.
pub fn parse(sql: &str) -> Option<SqlResult<Statement>> {
    let text = sql.trim().trim_end_matches(';').trim();
    let lower = text.to_ascii_lowercase();
    let rest = lower.strip_prefix("set")?.trim_start();
    let rest = rest.strip_prefix("constraints")?;
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    // The names keep their case from the original text (quoted names).
    let body = text[text.len() - rest.len()..].trim();
    let (names, mode) = match body.rsplit_once(char::is_whitespace) {
        Some((n, m)) => (n.trim(), m.to_ascii_lowercase()),
        None => return Some(Err(SqlError::syntax("syntax error at end of input"))),
    };
    if mode != "deferred" && mode != "immediate" {
        return Some(Err(SqlError::syntax(format!(
            "syntax error at or near \"{mode}\""
        ))));
    }
    let mut args = vec![Some(mode)];
    if names.eq_ignore_ascii_case("all") {
        args.push(None);
    } else {
        for n in names.split(',') {
            let n = n.trim();
            let n = match n.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
                Some(q) => q.replace("\"\"", "\""),
                None => n.to_ascii_lowercase(),
            };
            // A schema qualifier names the one schema there is.
            let n = n.strip_prefix("public.").unwrap_or(&n).to_string();
            if n.is_empty() {
                return Some(Err(SqlError::syntax("syntax error at or near \",\"")));
            }
            args.push(Some(n));
        }
    }
    Some(Ok(carrier::call(PROCEDURE, args)))
}

impl Executor {
    /// Runs a SET CONSTRAINTS carried by [`parse`].
    pub async fn set_constraints(
        &self,
        txn: &mut Txn,
        f: &Function,
        notices: &mut Vec<Notice>,
    ) -> SqlResult<Outcome> {
        let tag = Outcome::Command(CommandTag::new("SET CONSTRAINTS"));
        if !txn.explicit {
            notices.push(Notice {
                severity: "WARNING",
                code: "25P01",
                message: "SET CONSTRAINTS can only be used in transaction blocks".into(),
            });
            return Ok(tag);
        }
        let deferred = carrier::arg(f, 0).as_deref() == Some("deferred");
        let mut names = Vec::new();
        let mut n = 1;
        while let Some(name) = carrier::arg(f, n) {
            names.push(name);
            n += 1;
        }
        if names.is_empty() {
            txn.constraint_modes.all = Some(deferred);
            txn.constraint_modes.named.clear();
        } else {
            let catalog = txn.overlay(txn.database.catalog);
            let tables = self
                .db
                .list_tables(txn.database, txn.read_ts()?, catalog.as_deref())
                .await?;
            for name in &names {
                let Some(fk) = tables
                    .iter()
                    .flat_map(|t| t.foreign_keys.iter())
                    .find(|fk| &fk.name == name)
                else {
                    return Err(SqlError::new(
                        codes::UNDEFINED_OBJECT,
                        format!("constraint \"{name}\" does not exist"),
                    ));
                };
                if !fk.deferrable {
                    return Err(SqlError::new(
                        "42809",
                        format!("constraint \"{name}\" is not deferrable"),
                    ));
                }
                txn.constraint_modes.named.insert(name.clone(), deferred);
            }
        }
        if !deferred {
            // The checks of constraints now immediate run now; the others stay pending.
            let pending = std::mem::take(&mut txn.deferred);
            let (now, later): (Vec<_>, Vec<_>) = pending
                .into_iter()
                .partition(|d| names.is_empty() || names.contains(&d.constraint().to_string()));
            txn.deferred = now;
            self.check_deferred(txn).await?;
            txn.deferred = later;
        }
        Ok(tag)
    }
}
