//! Access control lists as PostgreSQL keeps them: a list of `aclitem`s, each a grantee
//! (a role, or PUBLIC), the privileges granted, which of them carry the grant option, and
//! the grantor. Written and read in PostgreSQL's text form, `grantee=arwdDxt*/grantor`
//! (PUBLIC is the empty grantee), which is what `pg_class.relacl`, `\dp` and pg_dump show.
//!
//! A pure core: which privileges an object type has, its default ACL, GRANT and REVOKE on a
//! list, and whether a set of roles holds a privilege. Who the roles are and where the lists
//! are stored is [`crate::catalog::grants`]'s; the checks on statements are
//! [`crate::sql::privileges`]'s.

use crate::error::{codes, SqlError, SqlResult};

/// One privilege, as a bit; the bits are in PostgreSQL's order, which is the order of the
/// letters in the text form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Privs(pub u16);

pub const INSERT: Privs = Privs(1 << 0);
pub const SELECT: Privs = Privs(1 << 1);
pub const UPDATE: Privs = Privs(1 << 2);
pub const DELETE: Privs = Privs(1 << 3);
pub const TRUNCATE: Privs = Privs(1 << 4);
pub const REFERENCES: Privs = Privs(1 << 5);
pub const TRIGGER: Privs = Privs(1 << 6);
pub const EXECUTE: Privs = Privs(1 << 7);
pub const USAGE: Privs = Privs(1 << 8);
pub const CREATE: Privs = Privs(1 << 9);
pub const TEMPORARY: Privs = Privs(1 << 10);
pub const CONNECT: Privs = Privs(1 << 11);

/// The letters of the text form, bit by bit.
const LETTERS: &[(Privs, char, &str)] = &[
    (INSERT, 'a', "INSERT"),
    (SELECT, 'r', "SELECT"),
    (UPDATE, 'w', "UPDATE"),
    (DELETE, 'd', "DELETE"),
    (TRUNCATE, 'D', "TRUNCATE"),
    (REFERENCES, 'x', "REFERENCES"),
    (TRIGGER, 't', "TRIGGER"),
    (EXECUTE, 'X', "EXECUTE"),
    (USAGE, 'U', "USAGE"),
    (CREATE, 'C', "CREATE"),
    (TEMPORARY, 'T', "TEMPORARY"),
    (CONNECT, 'c', "CONNECT"),
];

impl Privs {
    pub const NONE: Privs = Privs(0);

    pub fn union(self, o: Privs) -> Privs {
        Privs(self.0 | o.0)
    }
    pub fn minus(self, o: Privs) -> Privs {
        Privs(self.0 & !o.0)
    }
    pub fn intersect(self, o: Privs) -> Privs {
        Privs(self.0 & o.0)
    }
    pub fn contains(self, o: Privs) -> bool {
        self.0 & o.0 == o.0
    }
    pub fn any(self, o: Privs) -> bool {
        self.0 & o.0 != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The privilege's name as SQL spells it (`SELECT`), for a single bit.
    pub fn name(self) -> &'static str {
        LETTERS
            .iter()
            .find(|(p, _, _)| *p == self)
            .map(|(_, _, n)| *n)
            .unwrap_or("?")
    }

    /// A privilege named as GRANT and `has_*_privilege` name it (`select`, `TEMP`, ...).
    pub fn named(name: &str) -> Option<Privs> {
        let n = name.trim().to_ascii_uppercase();
        if n == "TEMP" {
            return Some(TEMPORARY);
        }
        LETTERS.iter().find(|(_, _, s)| *s == n).map(|(p, _, _)| *p)
    }
}

/// The kinds of object that carry an ACL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// Tables and views.
    Table,
    Sequence,
    Schema,
    Database,
}

impl ObjectKind {
    /// Every privilege the kind has (what `ALL PRIVILEGES` grants).
    pub fn all(self) -> Privs {
        match self {
            ObjectKind::Table => Privs(
                INSERT.0 | SELECT.0 | UPDATE.0 | DELETE.0 | TRUNCATE.0 | REFERENCES.0 | TRIGGER.0,
            ),
            ObjectKind::Sequence => Privs(USAGE.0 | SELECT.0 | UPDATE.0),
            ObjectKind::Schema => Privs(USAGE.0 | CREATE.0),
            ObjectKind::Database => Privs(CREATE.0 | TEMPORARY.0 | CONNECT.0),
        }
    }

    /// The word PostgreSQL's messages use for the kind ("permission denied for table t").
    pub fn noun(self) -> &'static str {
        match self {
            ObjectKind::Table => "table",
            ObjectKind::Sequence => "sequence",
            ObjectKind::Schema => "schema",
            ObjectKind::Database => "database",
        }
    }
}

/// One entry: `grantee` (empty for PUBLIC) holds `privs`, `grantable` of them with the grant
/// option, granted by `grantor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclItem {
    pub grantee: String,
    pub grantor: String,
    pub privs: Privs,
    pub grantable: Privs,
}

/// A role name as the text form writes it: quoted when it holds anything but letters,
/// digits and underscores (as PostgreSQL's `putid`).
fn put_name(out: &mut String, name: &str) {
    let safe = name.chars().all(|c| c.is_alphanumeric() || c == '_');
    if safe {
        out.push_str(name);
    } else {
        out.push('"');
        out.push_str(&name.replace('"', "\"\""));
        out.push('"');
    }
}

/// Reads a name of the text form from the front of `s`: the name and the rest.
fn get_name(s: &str) -> SqlResult<(String, &str)> {
    if let Some(rest) = s.strip_prefix('"') {
        let mut name = String::new();
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            if c == '"' {
                if rest[i + 1..].starts_with('"') {
                    name.push('"');
                    chars.next();
                } else {
                    return Ok((name, &rest[i + 1..]));
                }
            } else {
                name.push(c);
            }
        }
        return Err(bad_item(s));
    }
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    Ok((s[..end].to_string(), &s[end..]))
}

fn bad_item(s: &str) -> SqlError {
    SqlError::new(
        codes::INVALID_TEXT_REPRESENTATION,
        format!("invalid input syntax for type aclitem: \"{s}\""),
    )
}

impl AclItem {
    /// The text form, `grantee=privs/grantor`.
    pub fn text(&self) -> String {
        let mut out = String::new();
        put_name(&mut out, &self.grantee);
        out.push('=');
        for (p, letter, _) in LETTERS {
            if self.privs.contains(*p) {
                out.push(*letter);
                if self.grantable.contains(*p) {
                    out.push('*');
                }
            }
        }
        out.push('/');
        put_name(&mut out, &self.grantor);
        out
    }

    /// Reads the text form.
    pub fn parse(s: &str) -> SqlResult<AclItem> {
        let (grantee, rest) = get_name(s.trim())?;
        let rest = rest.strip_prefix('=').ok_or_else(|| bad_item(s))?;
        let (mut privs, mut grantable) = (Privs::NONE, Privs::NONE);
        let mut chars = rest.char_indices().peekable();
        let mut after = None;
        while let Some((i, c)) = chars.next() {
            if c == '/' {
                after = Some(&rest[i + 1..]);
                break;
            }
            let (p, _, _) = LETTERS
                .iter()
                .find(|(_, l, _)| *l == c)
                .ok_or_else(|| bad_item(s))?;
            privs = privs.union(*p);
            if chars.peek().is_some_and(|(_, n)| *n == '*') {
                chars.next();
                grantable = grantable.union(*p);
            }
        }
        let (grantor, tail) = get_name(after.ok_or_else(|| bad_item(s))?)?;
        if !tail.is_empty() || grantor.is_empty() {
            return Err(bad_item(s));
        }
        Ok(AclItem {
            grantee,
            grantor,
            privs,
            grantable,
        })
    }
}

/// An object's ACL: `None` is the kind's default for its owner (what PostgreSQL shows as a
/// NULL `relacl`); GRANT and REVOKE make it explicit.
pub fn effective(kind: ObjectKind, owner: &str, acl: Option<&[AclItem]>) -> Vec<AclItem> {
    match acl {
        Some(a) => a.to_vec(),
        None => default_acl(kind, owner),
    }
}

/// The kind's default ACL (PostgreSQL's `acldefault`): the owner holds every privilege;
/// PUBLIC holds CONNECT and TEMPORARY on databases.
pub fn default_acl(kind: ObjectKind, owner: &str) -> Vec<AclItem> {
    let mut out = vec![AclItem {
        grantee: owner.to_string(),
        grantor: owner.to_string(),
        privs: kind.all(),
        grantable: Privs::NONE,
    }];
    if kind == ObjectKind::Database {
        out.insert(
            0,
            AclItem {
                grantee: String::new(),
                grantor: owner.to_string(),
                privs: Privs(TEMPORARY.0 | CONNECT.0),
                grantable: Privs::NONE,
            },
        );
    }
    out
}

/// GRANT: adds `privs` (with the grant option when `grantable`) for `grantee`, from
/// `grantor`, to the entry of that pair or to a new entry at the end (as `aclupdate`).
pub fn grant(acl: &mut Vec<AclItem>, grantee: &str, grantor: &str, privs: Privs, grantable: bool) {
    let g = if grantable { privs } else { Privs::NONE };
    if let Some(e) = acl
        .iter_mut()
        .find(|e| e.grantee == grantee && e.grantor == grantor)
    {
        e.privs = e.privs.union(privs);
        e.grantable = e.grantable.union(g);
        return;
    }
    acl.push(AclItem {
        grantee: grantee.to_string(),
        grantor: grantor.to_string(),
        privs,
        grantable: g,
    });
}

/// REVOKE: takes `privs` (or only their grant option) from `grantee`'s entry from
/// `grantor`; an entry left with nothing is removed.
pub fn revoke(
    acl: &mut Vec<AclItem>,
    grantee: &str,
    grantor: &str,
    privs: Privs,
    grant_option_only: bool,
) {
    for e in acl
        .iter_mut()
        .filter(|e| e.grantee == grantee && e.grantor == grantor)
    {
        e.grantable = e.grantable.minus(privs);
        if !grant_option_only {
            e.privs = e.privs.minus(privs);
        }
    }
    acl.retain(|e| !e.privs.is_empty());
}

/// The privileges any of `roles` (PUBLIC always among them) holds in `acl`, and those it
/// holds with the grant option.
pub fn held(acl: &[AclItem], roles: &[String]) -> (Privs, Privs) {
    let mut privs = Privs::NONE;
    let mut grantable = Privs::NONE;
    for e in acl {
        if e.grantee.is_empty() || roles.contains(&e.grantee) {
            privs = privs.union(e.privs);
            grantable = grantable.union(e.grantable);
        }
    }
    (privs, grantable)
}

/// A list of privilege names (`'SELECT, INSERT WITH GRANT OPTION'`, as the
/// `has_*_privilege` functions take them): the privileges and whether the grant option is
/// asked for, each; 22023 for a name the kind does not have.
pub fn parse_wanted(kind: ObjectKind, text: &str) -> SqlResult<Vec<(Privs, bool)>> {
    text.split(',')
        .map(|part| {
            let words: Vec<String> = part
                .split_whitespace()
                .map(|w| w.to_ascii_uppercase())
                .collect();
            let (name, option) = match words.as_slice() {
                [n] => (n.as_str(), false),
                [n, w, g, o] if w == "WITH" && g == "GRANT" && o == "OPTION" => (n.as_str(), true),
                _ => ("", false),
            };
            match Privs::named(name).filter(|p| kind.all().contains(*p)) {
                Some(p) => Ok((p, option)),
                None => Err(SqlError::new(
                    codes::INVALID_PARAMETER_VALUE,
                    format!("unrecognized privilege type: \"{}\"", part.trim()),
                )),
            }
        })
        .collect()
}

/// A list of items in PostgreSQL's array text form (`{a,"b c"}`): an item is quoted when
/// it is empty, reads as NULL, or holds a delimiter, brace, quote, backslash or space.
pub fn array_text(items: &[String]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|i| {
            let plain = !i.is_empty()
                && !i.eq_ignore_ascii_case("null")
                && !i
                    .chars()
                    .any(|c| matches!(c, ',' | '{' | '}' | '"' | '\\') || c.is_whitespace());
            if plain {
                i.clone()
            } else {
                format!("\"{}\"", i.replace('\\', "\\\\").replace('"', "\\\""))
            }
        })
        .collect();
    format!("{{{}}}", quoted.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_read_back_as_postgresql_writes_them() {
        for s in [
            "alice=arwdDxt/alice",
            "=r/alice",
            "bob=r*w/alice",
            "\"we ird\"=U/postgres",
            "\"a\"\"b\"=UC*/\"x y\"",
        ] {
            assert_eq!(AclItem::parse(s).unwrap().text(), s);
        }
        for bad in ["alice", "alice=q/bob", "alice=r", "alice=r/", "\"open=r/x"] {
            assert!(AclItem::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn grants_and_revokes_update_entries_in_place() {
        let mut acl = default_acl(ObjectKind::Table, "alice");
        grant(&mut acl, "bob", "alice", SELECT, false);
        grant(&mut acl, "", "alice", SELECT.union(INSERT), true);
        grant(&mut acl, "bob", "alice", UPDATE, false);
        let texts: Vec<String> = acl.iter().map(AclItem::text).collect();
        assert_eq!(
            texts,
            ["alice=arwdDxt/alice", "bob=rw/alice", "=a*r*/alice"]
        );
        revoke(&mut acl, "", "alice", INSERT, true);
        revoke(&mut acl, "bob", "alice", SELECT.union(UPDATE), false);
        let texts: Vec<String> = acl.iter().map(AclItem::text).collect();
        assert_eq!(texts, ["alice=arwdDxt/alice", "=ar*/alice"]);
        let (p, g) = held(&acl, &["carol".to_string()]);
        assert_eq!((p, g), (SELECT.union(INSERT), SELECT));
    }

    #[test]
    fn arrays_of_items_are_written_as_postgresql_writes_them() {
        let items = vec!["=r/alice".to_string(), "\"a b\"=U/x".to_string()];
        assert_eq!(array_text(&items), "{=r/alice,\"\\\"a b\\\"=U/x\"}");
        assert_eq!(array_text(&[]), "{}");
    }

    #[test]
    fn wanted_privileges_are_named_as_postgresql_names_them() {
        assert_eq!(
            parse_wanted(ObjectKind::Table, "select, INSERT WITH GRANT OPTION").unwrap(),
            vec![(SELECT, false), (INSERT, true)]
        );
        assert!(parse_wanted(ObjectKind::Table, "usage").is_err());
        assert_eq!(
            parse_wanted(ObjectKind::Schema, "usage").unwrap(),
            vec![(USAGE, false)]
        );
        assert_eq!(
            parse_wanted(ObjectKind::Database, "temp").unwrap(),
            vec![(TEMPORARY, false)]
        );
    }
}
