//! The system functions that answer about the session (its user, database, backend pid,
//! settings, sequences' `nextval` and `currval`) or about the catalog at the statement's
//! snapshot, and `pg_cancel_backend`/`pg_terminate_backend`: registered in each session's
//! context.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int32Array, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{ScalarUDF, Signature, TypeSignature, Volatility};
use datafusion::prelude::SessionContext;

use crate::catalog::advisory::{LockKey, Scope};
use crate::catalog::pgfuncs::block_on;
use crate::catalog::pgfuncs::constant_text;
use crate::catalog::pgfuncs::external;
use crate::catalog::pgfuncs::fun;
use crate::catalog::pgfuncs::ints;
use crate::catalog::pgfuncs::sequence_name;
use crate::catalog::pgfuncs::snapshot_text;
use crate::catalog::pgfuncs::texts;
use crate::catalog::pgfuncs::Fun;
use crate::catalog::session_meta::SessionMeta;

/// `nextval(name)`: one value per row, recorded for the session's `currval`/`lastval`.
pub fn nextval_udf(db: &Arc<crate::catalog::db::Db>, meta: &Arc<SessionMeta>) -> ScalarUDF {
    let (db, meta) = (db.clone(), meta.clone());
    fun(
        "nextval",
        &[1],
        DataType::Int64,
        Volatility::Volatile,
        move |args, rows| {
            let names = texts(&args[0])?;
            let n = names.len().max(rows);
            let mut out = Vec::with_capacity(n);
            // Values for runs of rows naming the same sequence are reserved together.
            let mut i = 0;
            while i < n {
                let idx = if names.len() == 1 { 0 } else { i };
                if names.is_null(idx) {
                    out.push(None);
                    i += 1;
                    continue;
                }
                let text = names.value(idx);
                let mut j = i + 1;
                while j < n && (names.len() == 1 || (!names.is_null(j) && names.value(j) == text)) {
                    j += 1;
                }
                let name = sequence_name(text)?;
                let values = match meta.pending_values(&name, j - i) {
                    Some(v) => v,
                    None => block_on(crate::catalog::sequences::next_values(
                        &db,
                        meta.tables(),
                        &name,
                        j - i,
                    )),
                }
                .map_err(external)?;
                if let Some(&last) = values.last() {
                    meta.currvals
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(name, last);
                    *meta.lastval.lock().unwrap_or_else(|e| e.into_inner()) = Some(last);
                }
                out.extend(values.into_iter().map(Some));
                i = j;
            }
            Ok(Arc::new(arrow::array::Int64Array::from(out)) as ArrayRef)
        },
    )
}

/// `pg_cancel_backend(pid)` / `pg_terminate_backend(pid [, timeout])`: true once the
/// session was signalled, false when no session has that pid. A superuser may signal any
/// session, another role only its own.
fn signal_backend_udf(
    name: &'static str,
    terminate: bool,
    db: &Arc<crate::catalog::db::Db>,
    meta: &Arc<SessionMeta>,
) -> ScalarUDF {
    let (db, meta) = (db.clone(), meta.clone());
    // An int4 pid, so that a parameter (`pg_cancel_backend($1)`) is one; any integer
    // (a literal is an int8) is cast to it.
    use datafusion::common::types::{logical_int32, logical_int64, NativeType};
    use datafusion::logical_expr::{Coercion, TypeSignatureClass};
    let int = |t, native| {
        Coercion::new_implicit(
            TypeSignatureClass::Native(t),
            vec![TypeSignatureClass::Integer],
            native,
        )
    };
    let pid = || int(logical_int32(), NativeType::Int32);
    let mut sigs = vec![TypeSignature::Coercible(vec![pid()])];
    if terminate {
        sigs.push(TypeSignature::Coercible(vec![
            pid(),
            int(logical_int64(), NativeType::Int64),
        ]));
    }
    let body = Arc::new(move |args: &[ArrayRef], _: usize| {
        let pids = cast(&args[0], &DataType::Int32)?;
        let pids = pids.as_primitive::<arrow::datatypes::Int32Type>();
        let who = meta.identity().user;
        let read_ts = db.adjudicator.read_ts();
        let superuser = block_on(crate::catalog::roles::list(&db, read_ts))
            .map_err(external)?
            .iter()
            .any(|r| r.name == who && r.superuser);
        let mut out = Vec::with_capacity(pids.len());
        for pid in pids.iter() {
            let Some(pid) = pid else {
                out.push(None);
                continue;
            };
            let Some(b) = db.backends.get(pid) else {
                out.push(Some(false));
                continue;
            };
            if !crate::catalog::activity::may_signal(&who, superuser, &b) {
                return Err(external(crate::error::SqlError::new(
                    crate::error::codes::INSUFFICIENT_PRIVILEGE,
                    format!(
                        "must be a member of the role whose {} or member of pg_signal_backend",
                        if terminate {
                            "process is being terminated"
                        } else {
                            "query is being canceled"
                        }
                    ),
                )));
            }
            if terminate {
                b.terminate();
            } else {
                b.cancel();
            }
            out.push(Some(true));
        }
        Ok(Arc::new(BooleanArray::from(out)) as ArrayRef)
    });
    ScalarUDF::new_from_impl(Fun {
        name,
        signature: Signature::one_of(sigs, Volatility::Volatile),
        ret: DataType::Boolean,
        pg_type: None,
        body,
    })
}

/// The advisory lock key of row `i`: one bigint, or two int4s.
fn advisory_key(args: &[ArrayRef], i: usize) -> datafusion::error::Result<Option<LockKey>> {
    let at = |a: &ArrayRef| if a.len() == 1 { 0 } else { i };
    match args {
        [a] => {
            let a = cast(a, &DataType::Int64)?;
            let a = a.as_primitive::<arrow::datatypes::Int64Type>();
            let j = at(&args[0]);
            Ok((!a.is_null(j)).then(|| LockKey::Big(a.value(j))))
        }
        [a, b] => {
            let (a, b) = (ints(a)?, ints(b)?);
            let (j, k) = (at(&args[0]), at(&args[1]));
            Ok((!a.is_null(j) && !b.is_null(k)).then(|| LockKey::Pair(a.value(j), b.value(k))))
        }
        _ => Err(DataFusionError::Plan(
            "advisory lock functions take a bigint or two integers".into(),
        )),
    }
}

/// The `pg_advisory_*` family: `lock` waits, `try` answers at once, `unlock` releases a
/// session hold; `shared` and transaction-scoped variants.
fn advisory_udfs(db: &Arc<crate::catalog::db::Db>, meta: &Arc<SessionMeta>) -> Vec<ScalarUDF> {
    #[derive(Clone, Copy)]
    enum Op {
        Lock,
        Try,
        Unlock,
    }
    let mut out = Vec::new();
    for (name, op, shared, scope) in [
        ("pg_advisory_lock", Op::Lock, false, Scope::Session),
        ("pg_advisory_lock_shared", Op::Lock, true, Scope::Session),
        ("pg_advisory_xact_lock", Op::Lock, false, Scope::Transaction),
        (
            "pg_advisory_xact_lock_shared",
            Op::Lock,
            true,
            Scope::Transaction,
        ),
        ("pg_try_advisory_lock", Op::Try, false, Scope::Session),
        ("pg_try_advisory_lock_shared", Op::Try, true, Scope::Session),
        (
            "pg_try_advisory_xact_lock",
            Op::Try,
            false,
            Scope::Transaction,
        ),
        (
            "pg_try_advisory_xact_lock_shared",
            Op::Try,
            true,
            Scope::Transaction,
        ),
        ("pg_advisory_unlock", Op::Unlock, false, Scope::Session),
        (
            "pg_advisory_unlock_shared",
            Op::Unlock,
            true,
            Scope::Session,
        ),
    ] {
        let (db, meta) = (db.clone(), meta.clone());
        let ret = match op {
            Op::Lock => DataType::Utf8,
            Op::Try | Op::Unlock => DataType::Boolean,
        };
        out.push(fun(
            name,
            &[1, 2],
            ret,
            Volatility::Volatile,
            move |args, rows| {
                let n = args
                    .iter()
                    .map(|a| a.len())
                    .max()
                    .unwrap_or(0)
                    .max(rows)
                    .max(1);
                let pid = meta.identity().pid;
                let locks = &db.advisory;
                let mut flags = Vec::with_capacity(n);
                for i in 0..n {
                    let Some(key) = advisory_key(args, i)? else {
                        flags.push(None);
                        continue;
                    };
                    flags.push(Some(match op {
                        Op::Try => locks.try_lock(pid, key, shared, scope),
                        Op::Unlock => locks.unlock(pid, key, shared),
                        Op::Lock => {
                            if !locks.try_lock(pid, key, shared, scope) {
                                let settings = meta.settings();
                                let ms = |k: &str| {
                                    settings
                                        .get(k)
                                        .and_then(|v| {
                                            crate::catalog::durations::parse_duration_ms(v)
                                        })
                                        .filter(|ms| *ms > 0)
                                };
                                let timeout = match (ms("lock_timeout"), ms("statement_timeout")) {
                                    (Some(l), Some(s)) if s < l => Some((s, "57014")),
                                    (Some(l), _) => Some((l, "55P03")),
                                    (None, Some(s)) => Some((s, "57014")),
                                    (None, None) => None,
                                }
                                .map(|(ms, code)| (std::time::Duration::from_millis(ms), code));
                                let cancel = db.backends.get(pid).map(|b| b.cancel_signal());
                                block_on(locks.lock_waiting(
                                    pid,
                                    key,
                                    shared,
                                    scope,
                                    cancel.as_deref(),
                                    timeout,
                                ))
                                .map_err(external)?;
                            }
                            true
                        }
                    }));
                }
                Ok(match op {
                    Op::Lock => {
                        Arc::new(flags.iter().map(|f| f.map(|_| "")).collect::<StringArray>())
                            as ArrayRef
                    }
                    _ => Arc::new(BooleanArray::from(flags)) as ArrayRef,
                })
            },
        ));
    }
    let (db, meta) = (db.clone(), meta.clone());
    out.push(fun(
        "pg_advisory_unlock_all",
        &[0],
        DataType::Utf8,
        Volatility::Volatile,
        move |_, rows| {
            db.advisory
                .release(meta.identity().pid, Some(Scope::Session));
            Ok(Arc::new(StringArray::from(vec![Some(""); rows.max(1)])) as ArrayRef)
        },
    ));
    out
}

/// Functions about this session and the catalog it sees: registered in its own context.
pub fn register_session(
    ctx: &SessionContext,
    db: &Arc<crate::catalog::db::Db>,
    meta: &Arc<SessionMeta>,
) {
    ctx.register_udf(nextval_udf(db, meta));
    crate::catalog::schema_funcs::register(ctx, meta);
    crate::catalog::sizes::register(ctx, db, meta);
    for f in advisory_udfs(db, meta) {
        ctx.register_udf(f);
    }
    for (name, terminate) in [("pg_cancel_backend", false), ("pg_terminate_backend", true)] {
        ctx.register_udf(signal_backend_udf(name, terminate, db, meta));
    }
    let m = meta.clone();
    ctx.register_udf(fun(
        "currval",
        &[1],
        DataType::Int64,
        Volatility::Volatile,
        move |args, _| {
            let names = texts(&args[0])?;
            let cur = m.currvals.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let mut out = Vec::with_capacity(names.len());
            for n in names.iter() {
                let Some(n) = n else {
                    out.push(None);
                    continue;
                };
                let name = sequence_name(n)?;
                match cur.get(&name) {
                    Some(v) => out.push(Some(*v)),
                    None => {
                        return Err(external(crate::error::SqlError::new(
                            "55000",
                            format!(
                                "currval of sequence \"{name}\" is not yet defined in this session"
                            ),
                        )))
                    }
                }
            }
            Ok(Arc::new(arrow::array::Int64Array::from(out)) as ArrayRef)
        },
    ));
    let m = meta.clone();
    ctx.register_udf(fun(
        "lastval",
        &[0],
        DataType::Int64,
        Volatility::Volatile,
        move |_, rows| {
            let Some(v) = *m.lastval.lock().unwrap_or_else(|e| e.into_inner()) else {
                return Err(external(crate::error::SqlError::new(
                    "55000",
                    "lastval is not yet defined in this session",
                )));
            };
            Ok(Arc::new(arrow::array::Int64Array::from(vec![v; rows.max(1)])) as ArrayRef)
        },
    ));
    let d = db.clone();
    let sm = meta.clone();
    ctx.register_udf(fun(
        "setval",
        &[2, 3],
        DataType::Int64,
        Volatility::Volatile,
        move |args, _| {
            let names = texts(&args[0])?;
            let values = cast(&args[1], &DataType::Int64)?;
            let values = values.as_primitive::<arrow::datatypes::Int64Type>();
            let called = match args.get(2) {
                Some(a) => cast(a, &DataType::Boolean)?.as_boolean().clone(),
                None => BooleanArray::from(vec![true; names.len()]),
            };
            let mut out = Vec::with_capacity(names.len());
            for i in 0..names.len() {
                if names.is_null(i) || values.is_null(i) {
                    out.push(None);
                    continue;
                }
                let name = sequence_name(names.value(i))?;
                let is_called = called.is_null(i) || called.value(i);
                let v = block_on(crate::catalog::sequences::set_value(
                    &d,
                    sm.tables(),
                    &name,
                    values.value(i),
                    is_called,
                ))
                .map_err(external)?;
                out.push(Some(v));
            }
            Ok(Arc::new(arrow::array::Int64Array::from(out)) as ArrayRef)
        },
    ));
    crate::catalog::privilege_funcs::register(ctx, meta);
    let who = meta.identity();
    ctx.register_udf(constant_text("session_user", who.user.clone()));
    // The role SET ROLE chose, read when the statement runs.
    for name in ["current_user", "user", "current_role"] {
        let m = meta.clone();
        ctx.register_udf(fun(
            name,
            &[0],
            DataType::Utf8,
            Volatility::Stable,
            move |_, rows| {
                let role = m.current_role();
                Ok(Arc::new(StringArray::from(vec![role; rows.max(1)])) as ArrayRef)
            },
        ));
    }
    for name in ["current_database", "current_catalog"] {
        ctx.register_udf(constant_text(name, who.database.clone()));
    }
    let pid = who.pid;
    ctx.register_udf(fun(
        "pg_backend_pid",
        &[0],
        DataType::Int32,
        Volatility::Stable,
        move |_, rows| Ok(Arc::new(Int32Array::from(vec![pid; rows.max(1)])) as ArrayRef),
    ));
    let m = meta.clone();
    ctx.register_udf(fun(
        "current_setting",
        &[1, 2],
        DataType::Utf8,
        Volatility::Stable,
        move |args, _| {
            let names = texts(&args[0])?;
            let missing_ok = match args.get(1) {
                Some(a) => cast(a, &DataType::Boolean)?.as_boolean().clone(),
                None => BooleanArray::from(vec![false; names.len()]),
            };
            let settings = m.settings();
            let mut out = Vec::with_capacity(names.len());
            for i in 0..names.len() {
                if names.is_null(i) {
                    out.push(None);
                    continue;
                }
                let name = names.value(i).to_lowercase();
                match settings.get(&name) {
                    Some(v) => out.push(Some(v.clone())),
                    None if !missing_ok.is_null(i) && missing_ok.value(i) => out.push(None),
                    None => {
                        return Err(DataFusionError::External(Box::new(
                            crate::error::SqlError::new(
                                crate::error::codes::UNDEFINED_PARAMETER,
                                format!("unrecognized configuration parameter \"{name}\""),
                            ),
                        )))
                    }
                }
            }
            Ok(Arc::new(StringArray::from(out)) as ArrayRef)
        },
    ));
    // pg_get_constraintdef(oid [, pretty]): pretty drops a CHECK's outer parentheses.
    let m = meta.clone();
    ctx.register_udf(fun(
        "pg_get_constraintdef",
        &[1, 2],
        DataType::Utf8,
        Volatility::Stable,
        move |args, _| {
            let oids = ints(&args[0])?;
            let pretty = match args.get(1) {
                Some(a) => Some(cast(a, &DataType::Boolean)?),
                None => None,
            };
            let snap = m.snapshot();
            let path = m.search_path();
            let out: StringArray = oids
                .iter()
                .enumerate()
                .map(|(i, o)| {
                    let p = pretty.as_ref().is_some_and(|p| {
                        let p = p.as_boolean();
                        let at = if p.len() == 1 { 0 } else { i };
                        !p.is_null(at) && p.value(at)
                    });
                    o.and_then(|o| {
                        crate::catalog::pg_get::constraint_def_pretty(&snap, &path, o, p)
                    })
                })
                .collect();
            Ok(Arc::new(out) as ArrayRef)
        },
    ));
    // pg_get_indexdef(oid [, column, pretty]): column k > 0 is that key column's name.
    let m = meta.clone();
    ctx.register_udf(fun(
        "pg_get_indexdef",
        &[1, 3],
        DataType::Utf8,
        Volatility::Stable,
        move |args, _| {
            let oids = ints(&args[0])?;
            let cols = match args.get(1) {
                Some(a) => Some(ints(a)?),
                None => None,
            };
            let pretty = match args.get(2) {
                Some(a) => Some(cast(a, &DataType::Boolean)?),
                None => None,
            };
            let snap = m.snapshot();
            let out: StringArray = oids
                .iter()
                .enumerate()
                .map(|(n, o)| {
                    let col = cols.as_ref().and_then(|c| {
                        let at = if c.len() == 1 { 0 } else { n };
                        (!c.is_null(at)).then(|| c.value(at))
                    });
                    let p = pretty.as_ref().is_some_and(|p| {
                        let p = p.as_boolean();
                        let at = if p.len() == 1 { 0 } else { n };
                        !p.is_null(at) && p.value(at)
                    });
                    o.and_then(|o| crate::catalog::pg_get::index_def_column(&snap, o, col, p))
                })
                .collect();
            Ok(Arc::new(out) as ArrayRef)
        },
    ));
    // Descriptions (COMMENT ON) of relations and their columns.
    ctx.register_udf(snapshot_text(
        "obj_description",
        &[1, 2],
        meta,
        crate::catalog::pg_get::table_comment,
    ));
    let m = meta.clone();
    ctx.register_udf(fun(
        "col_description",
        &[2],
        DataType::Utf8,
        Volatility::Stable,
        move |args, _| {
            let (oids, nums) = (ints(&args[0])?, ints(&args[1])?);
            let snap = m.snapshot();
            let n = oids.len().max(nums.len());
            let at = |a: &Int32Array, i: usize| {
                let j = if a.len() == 1 { 0 } else { i };
                (!a.is_null(j)).then(|| a.value(j))
            };
            let out: StringArray = (0..n)
                .map(|i| {
                    crate::catalog::pg_get::column_comment(&snap, at(&oids, i)?, at(&nums, i)?)
                })
                .collect();
            Ok(Arc::new(out) as ArrayRef)
        },
    ));
    ctx.register_udf(snapshot_text(
        "pg_get_viewdef",
        &[1, 2],
        meta,
        crate::catalog::view_catalog::view_def,
    ));
    // A relation's name by oid: how a `regclass` value prints.
    ctx.register_udf(snapshot_text(
        "weft_relname",
        &[1],
        meta,
        crate::catalog::pg_get::relation_name,
    ));
    let m = meta.clone();
    ctx.register_udf(fun(
        "pg_get_serial_sequence",
        &[2],
        DataType::Utf8,
        Volatility::Stable,
        move |args, _| {
            let (tables, cols) = (texts(&args[0])?, texts(&args[1])?);
            let snap = m.snapshot();
            let out: StringArray = (0..tables.len())
                .map(|i| {
                    if tables.is_null(i) || cols.is_null(i) {
                        return None;
                    }
                    crate::catalog::pg_get::serial_sequence(&snap, tables.value(i), cols.value(i))
                })
                .collect();
            Ok(Arc::new(out) as ArrayRef)
        },
    ));
    let m = meta.clone();
    ctx.register_udf(fun(
        "to_regclass",
        &[1],
        DataType::Int32,
        Volatility::Stable,
        move |args, _| {
            // An oid already (`CAST(attrelid AS regclass)`): itself.
            if args[0].data_type().is_integer() {
                return Ok(Arc::new(ints(&args[0])?) as ArrayRef);
            }
            let names = texts(&args[0])?;
            let snap = m.snapshot();
            let path = m.search_path();
            let out: Int32Array = names
                .iter()
                .map(|n| n.and_then(|n| crate::catalog::pg_get::regclass(&snap, n, &path)))
                .collect();
            Ok(Arc::new(out) as ArrayRef)
        },
    ));
}
