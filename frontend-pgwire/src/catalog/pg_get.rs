//! PostgreSQL's renderings of catalog objects: `pg_get_constraintdef`, `pg_get_indexdef`,
//! regclass names, a column's serial sequence, defaults' text, quoted identifiers.

use weft_engine::schema::TableDef;
use weft_engine::types::SqlType;

use crate::catalog::oids::pkey_constraint_oid;
use crate::catalog::oids::pkey_index_oid;
use crate::catalog::oids::pkey_name;
use crate::catalog::oids::table_oid;
use crate::catalog::session_meta::Snapshot;

/// What `pg_get_constraintdef` prints for a constraint oid.
pub fn constraint_def(snap: &Snapshot, oid: i32) -> Option<String> {
    let t = snap
        .tables
        .iter()
        .find(|t| !t.primary_key.is_empty() && pkey_constraint_oid(t) == oid)?;
    Some(format!("PRIMARY KEY ({})", key_columns(t)))
}

/// What `pg_get_indexdef` prints for an index oid.
pub fn index_def(snap: &Snapshot, oid: i32) -> Option<String> {
    let t = snap
        .tables
        .iter()
        .find(|t| !t.primary_key.is_empty() && pkey_index_oid(t) == oid)?;
    Some(format!(
        "CREATE UNIQUE INDEX {} ON public.{} USING btree ({})",
        quote_ident(&pkey_name(t)),
        quote_ident(&t.name),
        key_columns(t)
    ))
}

/// The oid of a relation name (`t`, `public.t`, a quoted name), if it exists.
pub fn regclass(snap: &Snapshot, name: &str) -> Option<i32> {
    let parts: Vec<String> = split_name(name)?;
    let (schema, rel) = match parts.as_slice() {
        [rel] => (None, rel.as_str()),
        [schema, rel] => (Some(schema.as_str()), rel.as_str()),
        _ => return None,
    };
    if schema.is_some_and(|s| s != "public") {
        return None;
    }
    if let Some(q) = snap.sequences.iter().find(|q| q.name == rel) {
        return Some(q.oid as i32);
    }
    snap.tables.iter().find_map(|t| {
        if t.name == rel {
            Some(table_oid(t))
        } else if !t.primary_key.is_empty() && pkey_name(t) == rel {
            Some(pkey_index_oid(t))
        } else {
            None
        }
    })
}

/// `pg_get_serial_sequence(table, column)`: the sequence a column's default draws from, as
/// `public.name`. The table may be a name or an oid (as text).
pub fn serial_sequence(snap: &Snapshot, table: &str, column: &str) -> Option<String> {
    let t = match table.trim().parse::<i32>() {
        Ok(oid) => snap.tables.iter().find(|t| table_oid(t) == oid)?,
        Err(_) => {
            let parts = split_name(table)?;
            let name = parts.last()?;
            snap.tables.iter().find(|t| &t.name == name)?
        }
    };
    let c = t.columns.iter().find(|c| c.name == column)?;
    let seq = crate::catalog::sequences::default_sequence(c.default.as_deref()?)?;
    Some(format!("public.{}", quote_ident(seq)))
}

/// Splits a possibly qualified, possibly quoted name the way PostgreSQL reads it.
pub fn split_name(name: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut chars = name.trim().chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    '"' => break,
                    c => part.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == '.' {
                    break;
                }
                part.extend(c.to_lowercase());
                chars.next();
            }
        }
        out.push(part);
        match chars.next() {
            None => return Some(out),
            Some('.') => continue,
            Some(_) => return None,
        }
    }
}

/// A column default as PostgreSQL prints it back: a string literal carries a cast to the
/// column's type (`'open'::text`); other expressions print as written.
pub(crate) fn default_text(c: &weft_engine::schema::ColumnDef) -> Option<String> {
    if c.identity.is_some() {
        // psql shows "generated ... as identity" from attidentity instead.
        return None;
    }
    let d = c.default.as_ref()?;
    if let Some(seq) = crate::catalog::sequences::default_sequence(d) {
        return Some(format!("nextval('{}'::regclass)", quote_ident(seq)));
    }
    let t = d.trim();
    let quoted = t.len() >= 2
        && t.starts_with('\'')
        && t.ends_with('\'')
        && !t[1..t.len() - 1].replace("''", "").contains('\'');
    if !quoted {
        return Some(d.clone());
    }
    let ty = match &c.ty {
        SqlType::Varchar { .. } => "character varying".to_string(),
        SqlType::Char { .. } => "bpchar".to_string(),
        SqlType::Numeric { .. } => "numeric".to_string(),
        other => other.pg_name(),
    };
    Some(format!("{t}::{ty}"))
}

pub(crate) fn key_columns(t: &TableDef) -> String {
    t.primary_key
        .iter()
        .map(|&i| quote_ident(&t.columns[i].name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Quotes an identifier when PostgreSQL would.
pub fn quote_ident(s: &str) -> String {
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

// ------------------------------------------------------------------ building tables
