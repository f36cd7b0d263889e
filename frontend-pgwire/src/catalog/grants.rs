//! Who a session acts as, for privilege checks: the current role (the login role, or the
//! one `SET ROLE` chose), whether it is a superuser, and the roles whose privileges it
//! uses (itself and, through memberships with INHERIT, the roles it is a member of).
//!
//! Objects keep their owner and ACL in their own catalog rows (tables and views, sequences,
//! schemas); [`crate::catalog::acl`] reads and changes the lists.

use weft_engine::Timestamp;

use crate::catalog::acl::{self, AclItem, ObjectKind, Privs};
use crate::catalog::db::Db;
use crate::catalog::roles::{resolve, RoleDef, BOOTSTRAP_ROLE_NAME};
use crate::catalog::txn::Txn;
use crate::error::{codes, SqlError, SqlResult};

/// The role PostgreSQL 15 makes the owner of schema `public`: its members are the
/// database's owner (in weft, the bootstrap superuser).
pub const DATABASE_OWNER_ROLE: &str = "pg_database_owner";

/// How deep role memberships are followed (a cycle cannot be made, this only bounds the
/// walk).
const MEMBERSHIP_DEPTH_MAX: usize = 64;

/// The role a statement runs as.
#[derive(Debug, Clone)]
pub struct Acting {
    pub role: String,
    pub superuser: bool,
    pub createrole: bool,
    pub createdb: bool,
    /// The role and every role whose privileges it uses (inherited memberships).
    pub roles: Vec<String>,
}

impl Acting {
    /// A superuser: every check passes.
    pub fn superuser(role: &str) -> Acting {
        Acting {
            role: role.to_string(),
            superuser: true,
            createrole: true,
            createdb: true,
            roles: vec![role.to_string()],
        }
    }

    /// Whether the role has the privileges of `owner` (is it, or inherits from it).
    pub fn owns(&self, owner: &str) -> bool {
        self.superuser || self.roles.iter().any(|r| r == owner)
    }

    /// The privileges held on an object with this ACL (every one for a superuser), and
    /// those held with the grant option.
    pub fn held(&self, kind: ObjectKind, owner: &str, acl: Option<&[AclItem]>) -> (Privs, Privs) {
        if self.superuser {
            return (kind.all(), kind.all());
        }
        let (privs, grantable) = acl::held(&acl::effective(kind, owner, acl), &self.roles);
        // The owner holds every grant option, whatever the list says (as PostgreSQL's
        // aclmask).
        if self.owns(owner) {
            return (privs, kind.all());
        }
        (privs, grantable)
    }

    /// 42501 unless one of `want` is held on the object.
    pub fn require_any(
        &self,
        kind: ObjectKind,
        noun: &str,
        name: &str,
        owner: &str,
        acl: Option<&[AclItem]>,
        want: Privs,
    ) -> SqlResult<()> {
        if self.held(kind, owner, acl).0.any(want) {
            return Ok(());
        }
        Err(denied(noun, name))
    }

    /// 42501 unless the role owns the object.
    pub fn require_owner(&self, noun: &str, name: &str, owner: &str) -> SqlResult<()> {
        if self.owns(owner) {
            return Ok(());
        }
        Err(SqlError::new(
            codes::INSUFFICIENT_PRIVILEGE,
            format!("must be owner of {noun} {name}"),
        ))
    }
}

/// PostgreSQL's message for a missing privilege.
pub fn denied(noun: &str, name: &str) -> SqlError {
    SqlError::new(
        codes::INSUFFICIENT_PRIVILEGE,
        format!("permission denied for {noun} {name}"),
    )
}

/// A stored ACL (text items) read back; an item that does not read is an internal error.
pub fn parse_acl(items: Option<&Vec<String>>) -> SqlResult<Option<Vec<AclItem>>> {
    items
        .map(|v| v.iter().map(|s| AclItem::parse(s)).collect())
        .transpose()
}

/// An ACL as stored.
pub fn store_acl(acl: &[AclItem]) -> Vec<String> {
    acl.iter().map(AclItem::text).collect()
}

/// The owner a catalog row names: `None` is the bootstrap superuser.
pub fn owner_name(owner: Option<&String>) -> &str {
    owner.map(String::as_str).unwrap_or(BOOTSTRAP_ROLE_NAME)
}

/// The owner as a catalog row stores it (the bootstrap superuser as `None`, so rows of
/// objects it owns keep the form they had before owners were recorded).
pub fn stored_owner(role: &str) -> Option<String> {
    (role != BOOTSTRAP_ROLE_NAME).then(|| role.to_string())
}

/// The role `name` acts as, at `read_ts`.
pub async fn acting(
    db: &Db,
    txn: Option<&Txn>,
    read_ts: Timestamp,
    name: &str,
) -> SqlResult<Acting> {
    if crate::catalog::roles::always_superuser(db, name) {
        return Ok(Acting::superuser(name));
    }
    let Some(def) = resolve(db, txn, read_ts, name).await? else {
        // The role was dropped while the session was open: it holds nothing.
        return Ok(Acting {
            role: name.to_string(),
            superuser: false,
            createrole: false,
            createdb: false,
            roles: vec![name.to_string()],
        });
    };
    let mut roles = vec![name.to_string()];
    if def.inherit {
        inherited(db, txn, read_ts, &def, &mut roles).await?;
    }
    Ok(Acting {
        role: name.to_string(),
        superuser: def.superuser,
        createrole: def.createrole,
        createdb: def.createdb,
        roles,
    })
}

/// Adds to `roles` every role `def` inherits privileges from, breadth first.
async fn inherited(
    db: &Db,
    txn: Option<&Txn>,
    read_ts: Timestamp,
    def: &RoleDef,
    roles: &mut Vec<String>,
) -> SqlResult<()> {
    let mut frontier: Vec<RoleDef> = vec![def.clone()];
    for _ in 0..MEMBERSHIP_DEPTH_MAX {
        let mut next = Vec::new();
        for d in &frontier {
            for m in &d.member_of {
                if roles.contains(&m.role) {
                    continue;
                }
                roles.push(m.role.clone());
                if let Some(parent) = resolve(db, txn, read_ts, &m.role).await? {
                    // A NOINHERIT role passes on nothing it is a member of.
                    if parent.inherit {
                        next.push(parent);
                    }
                }
            }
        }
        if next.is_empty() {
            break;
        }
        frontier = next;
    }
    Ok(())
}

/// Whether `member` is a member of `role`, directly or through other roles, whatever their
/// INHERIT (what `SET ROLE` and `pg_has_role(..., 'MEMBER')` ask).
pub async fn is_member(
    db: &Db,
    txn: Option<&Txn>,
    read_ts: Timestamp,
    member: &str,
    role: &str,
) -> SqlResult<bool> {
    if member == role {
        return Ok(true);
    }
    let mut seen = vec![member.to_string()];
    let mut frontier = vec![member.to_string()];
    for _ in 0..MEMBERSHIP_DEPTH_MAX {
        let mut next = Vec::new();
        for name in &frontier {
            let Some(def) = resolve(db, txn, read_ts, name).await? else {
                continue;
            };
            for m in def.member_of {
                if m.role == role {
                    return Ok(true);
                }
                if !seen.contains(&m.role) {
                    seen.push(m.role.clone());
                    next.push(m.role);
                }
            }
        }
        if next.is_empty() {
            break;
        }
        frontier = next;
    }
    Ok(false)
}

/// The relation key a `regclass` text names (`'s'`, `'public.s'`, `'"S"'`).
pub fn regclass_key(text: &str) -> Option<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = text.trim().chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            '"' => quoted = !quoted,
            '.' if !quoted => parts.push(std::mem::take(&mut cur)),
            c if quoted => cur.push(c),
            c => cur.push(c.to_ascii_lowercase()),
        }
    }
    parts.push(cur);
    match parts.as_slice() {
        [name] if !name.is_empty() => Some(name.clone()),
        [.., schema, name] if !name.is_empty() => {
            Some(weft_engine::schema::relation_key(schema, name))
        }
        _ => None,
    }
}
