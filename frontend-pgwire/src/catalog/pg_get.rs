//! PostgreSQL's renderings of catalog objects: `pg_get_constraintdef`, `pg_get_indexdef`,
//! regclass names, a column's serial sequence, defaults' text, quoted identifiers.

use weft_engine::schema::TableDef;
use weft_engine::types::SqlType;

use crate::catalog::indexes::{constraints_of, indexes_of, ConstraintView, IndexView};
use crate::catalog::oids::table_oid;
use crate::catalog::session_meta::Snapshot;

/// What `pg_get_constraintdef` prints for a constraint oid.
pub fn constraint_def(snap: &Snapshot, path: &[String], oid: i32) -> Option<String> {
    snap.tables.iter().find_map(|t| {
        let c = constraints_of(t).into_iter().find(|c| c.oid == oid)?;
        let mut text = constraint_text(t, &c);
        if let Some(f) = &c.reference {
            let parent = snap.tables.iter().find(|p| p.name == f.parent)?;
            text = reference_text(t, parent, f, path);
        }
        Some(text)
    })
}

/// `pg_get_constraintdef(oid, pretty)`: pretty printing drops the parentheses PostgreSQL
/// puts around a CHECK's expression.
pub fn constraint_def_pretty(
    snap: &Snapshot,
    path: &[String],
    oid: i32,
    pretty: bool,
) -> Option<String> {
    let text = constraint_def(snap, path, oid)?;
    if !pretty {
        return Some(text);
    }
    let (body, tail) = match text.strip_suffix(" NOT VALID") {
        Some(b) => (b, " NOT VALID"),
        None => (text.as_str(), ""),
    };
    match body
        .strip_prefix("CHECK ((")
        .and_then(|b| b.strip_suffix("))"))
    {
        Some(inner) => Some(format!("CHECK ({inner}){tail}")),
        None => Some(text),
    }
}

/// A FOREIGN KEY as `pg_get_constraintdef` prints it.
fn reference_text(
    t: &TableDef,
    parent: &TableDef,
    f: &weft_engine::index::ForeignKeyDef,
    path: &[String],
) -> String {
    let cols = |d: &TableDef, cs: &[usize]| {
        cs.iter()
            .map(|&k| quote_ident(&d.columns[k].name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let action = |a: char| match a {
        'r' => Some("RESTRICT"),
        'c' => Some("CASCADE"),
        'n' => Some("SET NULL"),
        'd' => Some("SET DEFAULT"),
        _ => None,
    };
    let mut out = format!(
        "FOREIGN KEY ({}) REFERENCES {}({})",
        cols(t, &f.columns),
        crate::catalog::schemas::visible_name(&parent.name, path),
        cols(parent, &f.parent_columns)
    );
    if let Some(a) = action(f.on_update) {
        out.push_str(&format!(" ON UPDATE {a}"));
    }
    if let Some(a) = action(f.on_delete) {
        out.push_str(&format!(" ON DELETE {a}"));
    }
    if f.deferrable {
        out.push_str(" DEFERRABLE");
    }
    if f.deferred {
        out.push_str(" INITIALLY DEFERRED");
    }
    if !f.validated {
        out.push_str(" NOT VALID");
    }
    out
}

/// What `pg_get_indexdef` prints for an index oid (pretty printing drops the parentheses
/// around a partial index's predicate).
pub fn index_def(snap: &Snapshot, oid: i32, pretty: bool) -> Option<String> {
    snap.tables.iter().find_map(|t| {
        indexes_of(t)
            .into_iter()
            .find(|i| i.oid == oid)
            .map(|i| index_text(t, &i, pretty))
    })
}

/// `pg_get_indexdef(oid, column, pretty)`: the whole definition for column 0, the
/// column's name for a key column, empty past the last.
pub fn index_def_column(
    snap: &Snapshot,
    oid: i32,
    column: Option<i32>,
    pretty: bool,
) -> Option<String> {
    match column {
        None | Some(0) => index_def(snap, oid, pretty),
        Some(k) if k < 0 => None,
        Some(k) => snap.tables.iter().find_map(|t| {
            let i = indexes_of(t).into_iter().find(|i| i.oid == oid)?;
            Some(
                i.columns
                    .get(k as usize - 1)
                    .map(|&c| quote_ident(&t.columns[c].name))
                    .unwrap_or_default(),
            )
        }),
    }
}

/// `obj_description(oid)`: a table's or a schema's comment.
pub fn table_comment(snap: &Snapshot, _path: &[String], oid: i32) -> Option<String> {
    if oid == crate::catalog::oids::NS_PUBLIC {
        return Some("standard public schema".into());
    }
    if let Some(d) = snap.schemas.iter().find(|d| d.oid as i32 == oid) {
        return d.comment.clone();
    }
    snap.tables
        .iter()
        .find(|t| table_oid(t) == oid)
        .and_then(|t| t.comment.clone())
}

/// `col_description(table oid, attnum)`: a column's comment.
pub fn column_comment(snap: &Snapshot, oid: i32, attnum: i32) -> Option<String> {
    let t = snap.tables.iter().find(|t| table_oid(t) == oid)?;
    t.columns
        .get(usize::try_from(attnum).ok()?.checked_sub(1)?)?
        .comment
        .clone()
}

/// The name of a relation oid (a table, an index, a sequence), as regclass prints it:
/// qualified by its schema unless that is `public`.
pub fn relation_name(snap: &Snapshot, path: &[String], oid: i32) -> Option<String> {
    let sql_name = |key: &str| crate::catalog::schemas::visible_name(key, path);
    if let Some(q) = snap.sequences.iter().find(|q| q.oid as i32 == oid) {
        return Some(sql_name(&q.name));
    }
    if let Some(v) = snap.views.iter().find(|v| v.oid as i32 == oid) {
        return Some(sql_name(&v.name));
    }
    snap.tables.iter().find_map(|t| {
        if table_oid(t) == oid {
            Some(sql_name(&t.name))
        } else {
            indexes_of(t)
                .into_iter()
                .find(|i| i.oid == oid)
                .map(|i| sql_name(&weft_engine::schema::relation_key(t.schema(), &i.name)))
        }
    })
}

/// The oid of a relation name (`t`, `s.t`, a quoted name), if it exists: an unqualified
/// name is looked for in the schemas of `path` in order.
pub fn regclass(snap: &Snapshot, name: &str, path: &[String]) -> Option<i32> {
    let parts: Vec<String> = split_name(name)?;
    match parts.as_slice() {
        [rel] => path
            .iter()
            .find_map(|schema| relation_oid(snap, schema, rel)),
        [schema, rel] => relation_oid(snap, schema, rel),
        _ => None,
    }
}

/// The oid of relation `rel` in `schema`, if it exists.
pub(crate) fn relation_oid(snap: &Snapshot, schema: &str, rel: &str) -> Option<i32> {
    let key = weft_engine::schema::relation_key(schema, rel);
    if let Some(q) = snap.sequences.iter().find(|q| q.name == key) {
        return Some(q.oid as i32);
    }
    if let Some(v) = snap.views.iter().find(|v| v.name == key) {
        return Some(v.oid as i32);
    }
    snap.tables.iter().find_map(|t| {
        if t.name == key {
            Some(table_oid(t))
        } else if t.schema() == schema {
            indexes_of(t)
                .into_iter()
                .find(|i| i.name == rel)
                .map(|i| i.oid)
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
            let key = match parts.as_slice() {
                [name] => name.clone(),
                [schema, name] => weft_engine::schema::relation_key(schema, name),
                _ => return None,
            };
            snap.tables.iter().find(|t| t.name == key)?
        }
    };
    let c = t.columns.iter().find(|c| c.name == column)?;
    let seq = crate::catalog::sequences::default_sequence(c.default.as_deref()?)?;
    let (schema, name) = weft_engine::schema::split_relation(seq);
    Some(format!("{}.{}", quote_ident(schema), quote_ident(name)))
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
/// A sequence's name shows as `regclass` prints it under the search path `path`.
pub(crate) fn default_text(c: &weft_engine::schema::ColumnDef, path: &[String]) -> Option<String> {
    if c.identity.is_some() {
        // psql shows "generated ... as identity" from attidentity instead.
        return None;
    }
    let d = c.default.as_ref()?;
    if let Some(seq) = crate::catalog::sequences::default_sequence(d) {
        return Some(format!(
            "nextval('{}'::regclass)",
            crate::catalog::schemas::visible_name(seq, path)
        ));
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

/// The definition `pg_get_constraintdef` prints.
pub(crate) fn constraint_text(t: &TableDef, c: &ConstraintView) -> String {
    let cols = || {
        c.columns
            .iter()
            .map(|&k| quote_ident(&t.columns[k].name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let valid = if c.validated { "" } else { " NOT VALID" };
    match c.kind {
        "p" => format!("PRIMARY KEY ({})", cols()),
        "u" => {
            let nnd = t
                .indexes
                .iter()
                .any(|i| i.oid as i32 == c.index_oid && i.nulls_not_distinct);
            format!(
                "UNIQUE {}({})",
                if nnd { "NULLS NOT DISTINCT " } else { "" },
                cols()
            )
        }
        _ => format!("CHECK (({})){valid}", c.check.clone().unwrap_or_default()),
    }
}

/// The statement `pg_get_indexdef` prints.
pub(crate) fn index_text(t: &TableDef, i: &IndexView, pretty: bool) -> String {
    let q = quote_ident;
    let key: Vec<String> = i.columns[..i.key_columns]
        .iter()
        .enumerate()
        .map(|(n, &k)| {
            let mut c = q(&t.columns[k].name);
            if let Some(o) = &i.opclasses[n] {
                c.push(' ');
                c.push_str(o);
            }
            match (i.descending[n], i.nulls_first[n]) {
                (true, true) => c.push_str(" DESC"),
                (true, false) => c.push_str(" DESC NULLS LAST"),
                (false, true) => c.push_str(" NULLS FIRST"),
                (false, false) => {}
            }
            c
        })
        .collect();
    let include: Vec<String> = i.columns[i.key_columns..]
        .iter()
        .map(|&k| q(&t.columns[k].name))
        .collect();
    // Pretty printing leaves out the schema of a table the search path finds.
    let mut out = format!(
        "CREATE {}INDEX {} ON {}{} USING btree ({})",
        if i.unique { "UNIQUE " } else { "" },
        q(&i.name),
        if pretty && t.schema() == "public" {
            String::new()
        } else {
            format!("{}.", q(t.schema()))
        },
        q(t.relname()),
        key.join(", ")
    );
    if !include.is_empty() {
        out.push_str(&format!(" INCLUDE ({})", include.join(", ")));
    }
    if i.nulls_not_distinct {
        out.push_str(" NULLS NOT DISTINCT");
    }
    if let Some(p) = &i.predicate {
        if pretty {
            out.push_str(&format!(" WHERE {p}"));
        } else {
            out.push_str(&format!(" WHERE ({p})"));
        }
    }
    out
}

// ------------------------------------------------------------------ building tables
