//! `CREATE SCHEMA` and `DROP SCHEMA`. weft has one schema of its own, `public` (beside
//! `pg_catalog` and `information_schema`), so these statements answer what PostgreSQL
//! would about the schemas that exist: `CREATE SCHEMA IF NOT EXISTS public` is a notice,
//! `CREATE SCHEMA public` 42P06, `DROP SCHEMA IF EXISTS other` a notice and
//! `DROP SCHEMA other` 3F000. Making another schema, or dropping one that exists, answers
//! 0A000.

use datafusion::sql::sqlparser::ast::{ObjectName, SchemaName};

use crate::error::{codes, SqlError, SqlResult};
use crate::sql::names::ident_name;
use crate::sql::outcome::{CommandTag, Notice, Outcome};

/// The schemas every database has.
const SCHEMAS: [&str; 3] = ["public", "pg_catalog", "information_schema"];

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

/// CREATE SCHEMA [IF NOT EXISTS] name.
pub fn create_schema(
    name: &SchemaName,
    if_not_exists: bool,
    notices: &mut Vec<Notice>,
) -> SqlResult<Outcome> {
    let tag = Outcome::Command(CommandTag::new("CREATE SCHEMA"));
    let name = match name {
        SchemaName::Simple(n) | SchemaName::NamedAuthorization(n, _) => schema_name(n)?,
        SchemaName::UnnamedAuthorization(_) => {
            return Err(SqlError::unsupported(
                "CREATE SCHEMA AUTHORIZATION is not supported: weft has the schema public only",
            ))
        }
    };
    if name.starts_with("pg_") {
        return Err(
            SqlError::new("42939", format!("unacceptable schema name \"{name}\""))
                .with_detail("The prefix \"pg_\" is reserved for system schemas."),
        );
    }
    if SCHEMAS.contains(&name.as_str()) {
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
    Err(SqlError::unsupported(format!(
        "CREATE SCHEMA {name} is not supported: weft has the schema public only"
    ))
    .with_hint("create the objects in public"))
}

/// DROP SCHEMA [IF EXISTS] name [, ...].
pub fn drop_schemas(
    names: &[ObjectName],
    if_exists: bool,
    notices: &mut Vec<Notice>,
) -> SqlResult<Outcome> {
    for n in names {
        let name = schema_name(n)?;
        if SCHEMAS.contains(&name.as_str()) {
            return Err(SqlError::unsupported(format!(
                "dropping the schema \"{name}\" is not supported"
            )));
        }
        if !if_exists {
            return Err(SqlError::new(
                codes::INVALID_SCHEMA_NAME,
                format!("schema \"{name}\" does not exist"),
            ));
        }
        notices.push(notice(format!(
            "schema \"{name}\" does not exist, skipping"
        )));
    }
    Ok(Outcome::Command(CommandTag::new("DROP SCHEMA")))
}
