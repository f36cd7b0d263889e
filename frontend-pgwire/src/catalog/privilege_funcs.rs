//! The privilege inquiry functions, answered from the statement's catalog snapshot with
//! the same rules the statement checks use: `has_table_privilege`,
//! `has_sequence_privilege`, `has_schema_privilege`, `has_database_privilege`,
//! `has_any_column_privilege` and `has_column_privilege` (weft's privileges are whole-table
//! ones), `pg_has_role`, and `pg_get_userbyid`. Each takes the role first or not, by name
//! or oid, and the object by name or oid, as PostgreSQL's do; a name that does not exist is
//! an error, an oid that does not exist NULL.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Volatility;
use datafusion::prelude::SessionContext;

use crate::catalog::acl::{self, AclItem, ObjectKind};
use crate::catalog::grants::{owner_name, parse_acl, Acting, DATABASE_OWNER_ROLE};
use crate::catalog::oids::{role_name, role_oid};
use crate::catalog::pgfuncs::{external, fun};
use crate::catalog::roles::RoleDef;
use crate::catalog::session_meta::{SessionMeta, Snapshot};
use crate::error::{codes, SqlError, SqlResult};

/// An argument cell: a name, an oid, or NULL.
enum Arg {
    Name(String),
    Oid(i32),
    Null,
}

fn cells(a: &ArrayRef) -> DfResult<Vec<Arg>> {
    if matches!(
        a.data_type(),
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 | DataType::UInt32
    ) {
        let ints = cast(a, &DataType::Int64)?;
        let ints = ints.as_primitive::<arrow::datatypes::Int64Type>();
        return Ok(ints
            .iter()
            .map(|v| v.map_or(Arg::Null, |v| Arg::Oid(v as i32)))
            .collect());
    }
    let texts = cast(a, &DataType::Utf8)?;
    Ok(texts
        .as_string::<i32>()
        .iter()
        .map(|v| v.map_or(Arg::Null, |v| Arg::Name(v.to_string())))
        .collect())
}

/// The role a sync check acts as, from the snapshot's roles (the same rules as
/// [`crate::catalog::grants::acting`]).
pub fn acting_in(known: &[RoleDef], name: &str) -> Acting {
    let Some(def) = known.iter().find(|r| r.name == name) else {
        return Acting {
            role: name.to_string(),
            superuser: false,
            createrole: false,
            createdb: false,
            roles: vec![name.to_string()],
        };
    };
    if def.superuser {
        return Acting::superuser(name);
    }
    let mut roles = vec![name.to_string()];
    if def.inherit {
        let mut frontier = vec![def];
        while let Some(d) = frontier.pop() {
            for m in &d.member_of {
                if roles.contains(&m.role) {
                    continue;
                }
                roles.push(m.role.clone());
                if let Some(p) = known.iter().find(|r| r.name == m.role && r.inherit) {
                    frontier.push(p);
                }
            }
        }
    }
    Acting {
        role: name.to_string(),
        superuser: false,
        createrole: def.createrole,
        createdb: def.createdb,
        roles,
    }
}

/// Whether `member` is a member of `role` in the snapshot, whatever INHERIT says.
fn member_in(known: &[RoleDef], member: &str, role: &str) -> bool {
    let mut seen = vec![member.to_string()];
    let mut i = 0;
    while i < seen.len() {
        if seen[i] == role {
            return true;
        }
        if let Some(d) = known.iter().find(|r| r.name == seen[i]) {
            for m in &d.member_of {
                if !seen.contains(&m.role) {
                    seen.push(m.role.clone());
                }
            }
        }
        i += 1;
    }
    false
}

/// An object's kind, owner and ACL as the snapshot has it.
type Found = (ObjectKind, String, Option<Vec<AclItem>>);

fn relation_by_key(snap: &Snapshot, key: &str) -> SqlResult<Option<Found>> {
    if let Some(t) = snap.tables.iter().find(|t| t.name == key) {
        return Ok(Some((
            ObjectKind::Table,
            owner_name(t.owner.as_ref()).to_string(),
            parse_acl(t.acl.as_ref())?,
        )));
    }
    if let Some(v) = snap.views.iter().find(|v| v.name == key) {
        return Ok(Some((
            ObjectKind::Table,
            owner_name(v.owner.as_ref()).to_string(),
            parse_acl(v.acl.as_ref())?,
        )));
    }
    if let Some(q) = snap.sequences.iter().find(|q| q.name == key) {
        return Ok(Some((
            ObjectKind::Sequence,
            owner_name(q.owner.as_ref()).to_string(),
            parse_acl(q.acl.as_ref())?,
        )));
    }
    Ok(None)
}

fn relation_by_oid(snap: &Snapshot, oid: i32) -> SqlResult<Option<Found>> {
    let key = snap
        .tables
        .iter()
        .find(|t| crate::catalog::oids::table_oid(t) == oid)
        .map(|t| t.name.clone())
        .or_else(|| {
            snap.views
                .iter()
                .find(|v| v.oid as i32 == oid)
                .map(|v| v.name.clone())
        })
        .or_else(|| {
            snap.sequences
                .iter()
                .find(|q| q.oid as i32 == oid)
                .map(|q| q.name.clone())
        });
    match key {
        Some(k) => relation_by_key(snap, &k),
        None => Ok(None),
    }
}

/// A relation named as text: qualified, or found along the search path.
fn relation_by_name(snap: &Snapshot, path: &[String], name: &str) -> SqlResult<Found> {
    let missing = || {
        SqlError::new(
            codes::UNDEFINED_TABLE,
            format!("relation \"{name}\" does not exist"),
        )
    };
    let key = crate::catalog::grants::regclass_key(name).ok_or_else(missing)?;
    if key.contains('.') || path.is_empty() {
        return relation_by_key(snap, &key)?.ok_or_else(missing);
    }
    for schema in path {
        let k = weft_engine::schema::relation_key(schema, &key);
        if let Some(f) = relation_by_key(snap, &k)? {
            return Ok(f);
        }
    }
    relation_by_key(snap, &key)?.ok_or_else(missing)
}

/// A schema's owner and ACL in the snapshot.
fn schema_acl(snap: &Snapshot, name: &str) -> Option<(String, Vec<AclItem>)> {
    use crate::catalog::schemas::is_built_in;
    use weft_engine::schema::PUBLIC_SCHEMA;
    let stored = snap
        .schemas
        .iter()
        .chain(&snap.built_in_acls)
        .find(|s| s.name == name);
    let (owner, list) = match (stored, is_built_in(name)) {
        (Some(d), _) => (d.owner.clone(), parse_acl(d.acl.as_ref()).ok()?),
        (None, true) => (
            if name == PUBLIC_SCHEMA {
                DATABASE_OWNER_ROLE.to_string()
            } else {
                crate::catalog::roles::BOOTSTRAP_ROLE_NAME.to_string()
            },
            None,
        ),
        (None, false) => return None,
    };
    let list = match list {
        Some(l) => l,
        None if is_built_in(name) => {
            let mut a = acl::default_acl(ObjectKind::Schema, &owner);
            acl::grant(&mut a, "", &owner, acl::USAGE, false);
            a
        }
        None => acl::default_acl(ObjectKind::Schema, &owner),
    };
    Some((owner, list))
}

/// Whether `who` holds any of the privileges `wanted` names on the object.
fn holds(
    who: &Acting,
    kind: ObjectKind,
    owner: &str,
    list: &[AclItem],
    wanted: &str,
) -> SqlResult<bool> {
    let asked = acl::parse_wanted(kind, wanted)?;
    let (privs, grantable) = who.held(kind, owner, Some(list));
    Ok(asked.iter().any(|(p, option)| {
        if *option {
            grantable.contains(*p)
        } else {
            privs.contains(*p)
        }
    }))
}

/// The body shared by the `has_*_privilege` functions: (role?, object, privileges).
fn has_privilege(
    meta: Arc<SessionMeta>,
    kind: ObjectKind,
    args: &[ArrayRef],
    rows: usize,
) -> DfResult<ArrayRef> {
    let snap = meta.snapshot();
    let path = meta.search_path();
    let n = args.first().map_or(rows.max(1), |a| a.len());
    let (roles, objects, wanted) = match args.len() {
        2 => (None, cells(&args[0])?, cells(&args[1])?),
        // has_column_privilege(table, column, privilege): the column is not told apart.
        3 if matches!(kind, ObjectKind::Table)
            && args[1].data_type() == &DataType::Utf8
            && args[0].data_type() != &DataType::Utf8 =>
        {
            (None, cells(&args[0])?, cells(&args[2])?)
        }
        3 => (Some(cells(&args[0])?), cells(&args[1])?, cells(&args[2])?),
        _ => (Some(cells(&args[0])?), cells(&args[1])?, cells(&args[3])?),
    };
    let current = meta.current_role();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let who = match roles.as_ref().map(|r| &r[i]) {
            None => Some(current.clone()),
            Some(Arg::Name(r)) => {
                let r = if r.eq_ignore_ascii_case("public") {
                    String::new()
                } else {
                    r.clone()
                };
                if !r.is_empty() && !snap.roles.iter().any(|k| k.name == r) {
                    return Err(external(SqlError::new(
                        codes::UNDEFINED_OBJECT,
                        format!("role \"{r}\" does not exist"),
                    )));
                }
                Some(r)
            }
            Some(Arg::Oid(o)) => Some(role_name(&snap.roles, *o)),
            Some(Arg::Null) => None,
        };
        let Arg::Name(wanted) = &wanted[i] else {
            out.push(None);
            continue;
        };
        let Some(who) = who else {
            out.push(None);
            continue;
        };
        // PUBLIC (the empty role) holds only what is granted to PUBLIC.
        let acting = if who.is_empty() {
            Acting {
                role: String::new(),
                superuser: false,
                createrole: false,
                createdb: false,
                roles: Vec::new(),
            }
        } else {
            acting_in(&snap.roles, &who)
        };
        let found: Option<(ObjectKind, String, Vec<AclItem>)> = match (&objects[i], kind) {
            (Arg::Null, _) => None,
            (Arg::Name(name), ObjectKind::Schema) => Some(
                schema_acl(&snap, name)
                    .map(|(o, l)| (ObjectKind::Schema, o, l))
                    .ok_or_else(|| {
                        external(SqlError::new(
                            codes::INVALID_SCHEMA_NAME,
                            format!("schema \"{name}\" does not exist"),
                        ))
                    })?,
            ),
            (Arg::Oid(oid), ObjectKind::Schema) => {
                crate::catalog::schemas::name_of(&snap.schemas, *oid)
                    .and_then(|name| schema_acl(&snap, &name))
                    .map(|(o, l)| (ObjectKind::Schema, o, l))
            }
            (object, ObjectKind::Database) => {
                let def = snap.databases.iter().find(|d| match object {
                    Arg::Name(n) => d.name == *n,
                    Arg::Oid(o) => d.oid == *o,
                    Arg::Null => false,
                });
                match (def, object) {
                    (Some(d), _) => {
                        let owner = crate::catalog::roles::BOOTSTRAP_ROLE_NAME.to_string();
                        let stored = parse_acl(d.acl.as_ref()).map_err(external)?;
                        let list = acl::effective(ObjectKind::Database, &owner, stored.as_deref());
                        Some((ObjectKind::Database, owner, list))
                    }
                    (None, Arg::Name(n)) => {
                        return Err(external(SqlError::new(
                            codes::INVALID_CATALOG_NAME,
                            format!("database \"{n}\" does not exist"),
                        )))
                    }
                    (None, _) => None,
                }
            }
            (Arg::Name(name), _) => {
                let (k, o, l) = relation_by_name(&snap, &path, name).map_err(external)?;
                Some((k, o.clone(), acl::effective(k, &o, l.as_deref())))
            }
            (Arg::Oid(oid), _) => relation_by_oid(&snap, *oid)
                .map_err(external)?
                .map(|(k, o, l)| (k, o.clone(), acl::effective(k, &o, l.as_deref()))),
        };
        let Some((found_kind, owner, list)) = found else {
            out.push(None);
            continue;
        };
        // has_sequence_privilege on a table, or has_table_privilege's sequence privileges.
        if kind == ObjectKind::Sequence && found_kind != ObjectKind::Sequence {
            if let Arg::Name(name) = &objects[i] {
                return Err(external(SqlError::new(
                    codes::WRONG_OBJECT_TYPE,
                    format!("\"{name}\" is not a sequence"),
                )));
            }
        }
        out.push(Some(
            holds(&acting, found_kind, &owner, &list, wanted).map_err(external)?,
        ));
    }
    Ok(Arc::new(BooleanArray::from(out)) as ArrayRef)
}

/// The privilege functions, bound to the session.
pub fn register(ctx: &SessionContext, meta: &Arc<SessionMeta>) {
    let kinds = [
        ("has_table_privilege", ObjectKind::Table, &[2usize, 3][..]),
        ("has_any_column_privilege", ObjectKind::Table, &[2, 3][..]),
        ("has_column_privilege", ObjectKind::Table, &[3, 4][..]),
        ("has_sequence_privilege", ObjectKind::Sequence, &[2, 3][..]),
        ("has_schema_privilege", ObjectKind::Schema, &[2, 3][..]),
        ("has_database_privilege", ObjectKind::Database, &[2, 3][..]),
    ];
    for (name, kind, arities) in kinds {
        let m = meta.clone();
        ctx.register_udf(fun(
            name,
            arities,
            DataType::Boolean,
            Volatility::Stable,
            move |args, rows| has_privilege(m.clone(), kind, args, rows),
        ));
    }
    let m = meta.clone();
    ctx.register_udf(fun(
        "pg_has_role",
        &[2, 3],
        DataType::Boolean,
        Volatility::Stable,
        move |args, rows| {
            let snap = m.snapshot();
            let n = args.first().map_or(rows.max(1), |a| a.len());
            let (users, roles, modes) = match args.len() {
                2 => (None, cells(&args[0])?, cells(&args[1])?),
                _ => (Some(cells(&args[0])?), cells(&args[1])?, cells(&args[2])?),
            };
            let name = |a: &Arg| match a {
                Arg::Name(n) => Some(n.clone()),
                Arg::Oid(o) => Some(role_name(&snap.roles, *o)),
                Arg::Null => None,
            };
            let mut out = Vec::with_capacity(n);
            for i in 0..n {
                let user = match &users {
                    Some(u) => name(&u[i]),
                    None => Some(m.current_role()),
                };
                let (Some(user), Some(role), Arg::Name(mode)) = (user, name(&roles[i]), &modes[i])
                else {
                    out.push(None);
                    continue;
                };
                let acting = acting_in(&snap.roles, &user);
                let answer = match mode.trim().to_ascii_uppercase().as_str() {
                    "MEMBER" => acting.superuser || member_in(&snap.roles, &user, &role),
                    "USAGE" => acting.superuser || acting.roles.contains(&role),
                    "MEMBER WITH ADMIN OPTION" | "USAGE WITH ADMIN OPTION" => {
                        acting.superuser
                            || snap.roles.iter().any(|r| {
                                r.name == user
                                    && r.member_of.iter().any(|x| x.role == role && x.admin)
                            })
                    }
                    other => {
                        return Err(external(SqlError::new(
                            codes::INVALID_PARAMETER_VALUE,
                            format!("unrecognized privilege type: \"{other}\""),
                        )))
                    }
                };
                out.push(Some(answer));
            }
            Ok(Arc::new(BooleanArray::from(out)) as ArrayRef)
        },
    ));
    // acldefault(kind, owner): the ACL an object of that kind has before any GRANT, in the
    // array's text form (pg_dump reads it as text, and compares it with `'{}'` in a CASE).
    let m = meta.clone();
    ctx.register_udf(fun(
        "acldefault",
        &[2],
        DataType::Utf8,
        Volatility::Stable,
        move |args, _| {
            let snap = m.snapshot();
            let kinds = cast(&args[0], &DataType::Utf8)?;
            let kinds = kinds.as_string::<i32>();
            let owners = crate::catalog::pgfuncs::ints(&args[1])?;
            let mut out = arrow::array::StringBuilder::new();
            for (k, o) in kinds.iter().zip(owners.iter()) {
                let (Some(k), Some(o)) = (k, o) else {
                    out.append_null();
                    continue;
                };
                let owner = role_name(&snap.roles, o);
                let list = match k {
                    "r" => acl::default_acl(ObjectKind::Table, &owner),
                    "s" => acl::default_acl(ObjectKind::Sequence, &owner),
                    "n" => acl::default_acl(ObjectKind::Schema, &owner),
                    "d" => acl::default_acl(ObjectKind::Database, &owner),
                    // Functions, types and languages: PUBLIC may use them.
                    "f" | "T" | "l" => {
                        let p = if k == "f" { acl::EXECUTE } else { acl::USAGE };
                        vec![
                            AclItem {
                                grantee: String::new(),
                                grantor: owner.clone(),
                                privs: p,
                                grantable: acl::Privs::NONE,
                            },
                            AclItem {
                                grantee: owner.clone(),
                                grantor: owner.clone(),
                                privs: p,
                                grantable: acl::Privs::NONE,
                            },
                        ]
                    }
                    _ => {
                        out.append_null();
                        continue;
                    }
                };
                let items: Vec<String> = list.iter().map(AclItem::text).collect();
                out.append_value(acl::array_text(&items));
            }
            Ok(Arc::new(out.finish()) as ArrayRef)
        },
    ));
    let m = meta.clone();
    ctx.register_udf(fun(
        "pg_get_userbyid",
        &[1],
        DataType::Utf8,
        Volatility::Stable,
        move |args, _| {
            let snap = m.snapshot();
            let o = crate::catalog::pgfuncs::ints(&args[0])?;
            let out: StringArray = o
                .iter()
                .map(|v| v.map(|v| role_name(&snap.roles, v)))
                .collect();
            Ok(Arc::new(out) as ArrayRef)
        },
    ));
}

/// The oid of a role for catalog rows (0 when it is not known).
pub fn owner_oid(snap: &Snapshot, owner: Option<&String>) -> i32 {
    role_oid(&snap.roles, owner_name(owner))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str, member_of: &[&str], inherit: bool) -> RoleDef {
        RoleDef {
            inherit,
            member_of: member_of
                .iter()
                .map(|r| crate::catalog::roles::Membership {
                    role: r.to_string(),
                    admin: false,
                    grantor: "postgres".into(),
                })
                .collect(),
            ..RoleDef::new(name)
        }
    }

    #[test]
    fn inherited_roles_follow_inherit_and_membership_does_not() {
        let known = vec![
            role("a", &["b"], true),
            role("b", &["c"], false),
            role("c", &[], true),
        ];
        // b is NOINHERIT: a uses b's privileges, not c's, which b does not pass on.
        assert_eq!(acting_in(&known, "a").roles, vec!["a", "b"]);
        assert_eq!(acting_in(&known, "b").roles, vec!["b"]);
        assert!(member_in(&known, "b", "c"));
        assert!(member_in(&known, "a", "c"));
        assert!(!member_in(&known, "c", "a"));
    }
}
