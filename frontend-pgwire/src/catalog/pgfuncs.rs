//! The PostgreSQL system functions clients call: `version()`, `current_database()`,
//! `format_type`, `pg_get_constraintdef`, `current_setting`, ...
//!
//! Functions that need no session state are registered here once, in the template state
//! every session starts from; functions that answer about the session (its user, database,
//! backend pid, settings) or about the catalog are
//! [`crate::catalog::session_funcs`]'s, registered in each session's context.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int32Array, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int32Type};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::SessionState;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use datafusion_pg_catalog::pg_catalog as pgc;

use crate::catalog::session_meta::SessionMeta;

pub(crate) type Body = dyn Fn(&[ArrayRef], usize) -> DfResult<ArrayRef> + Send + Sync;

/// A function over arrays of any argument types (each body casts what it needs), taking
/// one of the listed argument counts.
pub(crate) struct Fun {
    pub(crate) name: &'static str,
    pub(crate) signature: Signature,
    pub(crate) ret: DataType,
    /// The PostgreSQL type of the result where its Arrow type does not say it (`uuid`).
    pub(crate) pg_type: Option<&'static str>,
    pub(crate) body: Arc<Body>,
}

impl std::fmt::Debug for Fun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}()", self.name)
    }
}

impl PartialEq for Fun {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for Fun {}
impl Hash for Fun {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state)
    }
}

impl ScalarUDFImpl for Fun {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(self.ret.clone())
    }
    fn return_field_from_args(
        &self,
        _args: datafusion::logical_expr::ReturnFieldArgs,
    ) -> DfResult<arrow::datatypes::FieldRef> {
        let field = arrow::datatypes::Field::new(self.name, self.ret.clone(), true);
        Ok(Arc::new(match self.pg_type {
            Some(t) => field.with_metadata(
                [(weft_engine::types::PG_TYPE_KEY.to_string(), t.to_string())].into(),
            ),
            None => field,
        }))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let out = (self.body)(&arrays, rows)?;
        if args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)))
            && out.len() == 1
        {
            return Ok(ColumnarValue::Scalar(
                datafusion::scalar::ScalarValue::try_from_array(&out, 0)?,
            ));
        }
        Ok(ColumnarValue::Array(out))
    }
}

pub(crate) fn fun(
    name: &'static str,
    arities: &[usize],
    ret: DataType,
    volatility: Volatility,
    body: impl Fn(&[ArrayRef], usize) -> DfResult<ArrayRef> + Send + Sync + 'static,
) -> ScalarUDF {
    ScalarUDF::new_from_impl(fun_impl(name, arities, ret, volatility, body))
}

/// The function [`fun`] makes, before it is registered.
pub(crate) fn fun_impl(
    name: &'static str,
    arities: &[usize],
    ret: DataType,
    volatility: Volatility,
    body: impl Fn(&[ArrayRef], usize) -> DfResult<ArrayRef> + Send + Sync + 'static,
) -> Fun {
    let sigs = arities
        .iter()
        .map(|&n| {
            if n == 0 {
                TypeSignature::Nullary
            } else {
                TypeSignature::Any(n)
            }
        })
        .collect();
    Fun {
        name,
        signature: Signature::one_of(sigs, volatility),
        ret,
        pg_type: None,
        body: Arc::new(body),
    }
}

/// `f` with its result typed `pg_type` for PostgreSQL (its Arrow type is text).
pub(crate) fn typed(pg_type: &'static str, f: Fun) -> ScalarUDF {
    ScalarUDF::new_from_impl(Fun {
        pg_type: Some(pg_type),
        ..f
    })
}

/// A function that returns the same text on every row.
pub(crate) fn constant_text(name: &'static str, value: String) -> ScalarUDF {
    fun(
        name,
        &[0],
        DataType::Utf8,
        Volatility::Stable,
        move |_, rows| {
            Ok(Arc::new(StringArray::from(vec![value.clone(); rows.max(1)])) as ArrayRef)
        },
    )
}

/// An argument as Int32 (oids, typmods, attribute numbers).
pub(crate) fn ints(a: &ArrayRef) -> DfResult<Int32Array> {
    Ok(cast(a, &DataType::Int32)?
        .as_primitive::<Int32Type>()
        .clone())
}

pub(crate) fn texts(a: &ArrayRef) -> DfResult<StringArray> {
    Ok(cast(a, &DataType::Utf8)?.as_string::<i32>().clone())
}

/// What `version()` answers: PostgreSQL's form, which drivers parse for the version.
pub fn version_string() -> String {
    format!(
        "PostgreSQL 15.0 (weft {}) on {}-linux, 64-bit",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH
    )
}

/// The PostgreSQL name of a type oid with a type modifier, as `format_type` prints it.
pub fn format_type(oid: i32, typmod: i32) -> Option<String> {
    let with_len = |base: &str| {
        if typmod >= 4 {
            format!("{base}({})", typmod - 4)
        } else {
            base.to_string()
        }
    };
    Some(match oid {
        16 => "boolean".into(),
        17 => "bytea".into(),
        18 => "\"char\"".into(),
        19 => "name".into(),
        20 => "bigint".into(),
        21 => "smallint".into(),
        23 => "integer".into(),
        24 => "regproc".into(),
        25 => "text".into(),
        26 => "oid".into(),
        114 => "json".into(),
        700 => "real".into(),
        701 => "double precision".into(),
        1042 => with_len("character"),
        1043 => with_len("character varying"),
        1082 => "date".into(),
        1083 => "time without time zone".into(),
        1114 => "timestamp without time zone".into(),
        1184 => "timestamp with time zone".into(),
        1186 => "interval".into(),
        1700 => {
            if typmod >= 4 {
                let m = typmod - 4;
                format!("numeric({},{})", (m >> 16) & 0xffff, m & 0xffff)
            } else {
                "numeric".into()
            }
        }
        2205 => "regclass".into(),
        2206 => "regtype".into(),
        2950 => "uuid".into(),
        3802 => "jsonb".into(),
        1000 => "boolean[]".into(),
        1005 => "smallint[]".into(),
        1007 => "integer[]".into(),
        1016 => "bigint[]".into(),
        1009 => "text[]".into(),
        1021 => "real[]".into(),
        1022 => "double precision[]".into(),
        _ => return None,
    })
}

/// The oid of each type name in PostgreSQL's pg_type rows, and the SQL spellings of the
/// common ones (`integer`, `double precision`, ...).
pub fn type_oids(pg_type: &[arrow::array::RecordBatch]) -> std::collections::HashMap<String, i32> {
    let mut out = std::collections::HashMap::new();
    for b in pg_type {
        let (Some(names), Some(oids)) = (b.column_by_name("typname"), b.column_by_name("oid"))
        else {
            continue;
        };
        let (Ok(names), Ok(oids)) = (texts(names), ints(oids)) else {
            continue;
        };
        for i in 0..names.len() {
            if !names.is_null(i) && !oids.is_null(i) {
                out.insert(names.value(i).to_string(), oids.value(i));
            }
        }
    }
    for (alias, name) in [
        ("integer", "int4"),
        ("int", "int4"),
        ("smallint", "int2"),
        ("bigint", "int8"),
        ("real", "float4"),
        ("double precision", "float8"),
        ("boolean", "bool"),
        ("character varying", "varchar"),
        ("character", "bpchar"),
        ("char", "bpchar"),
        ("decimal", "numeric"),
        ("timestamp without time zone", "timestamp"),
        ("timestamp with time zone", "timestamptz"),
        ("time without time zone", "time"),
    ] {
        if let Some(&oid) = out.get(name) {
            out.insert(alias.to_string(), oid);
        }
    }
    out
}

/// Functions that answer the same for every session: registered in the template state.
/// `entropy` draws `gen_random_uuid()`'s values.
pub fn register_static(
    state: &mut SessionState,
    type_oids: Arc<std::collections::HashMap<String, i32>>,
    entropy: weft_engine::Entropy,
) -> DfResult<()> {
    use datafusion::execution::FunctionRegistry;
    let udfs = vec![
        constant_text("version", version_string()),
        nextval_placeholder(),
        pgc::create_current_schema_udf(),
        pgc::create_current_schemas_udf(),
        pgc::has_privilege_udf::create_has_privilege_udf("has_function_privilege"),
        fun(
            "pg_encoding_to_char",
            &[1],
            DataType::Utf8,
            Volatility::Stable,
            |args, _| {
                let o = ints(&args[0])?;
                let out: StringArray = o
                    .iter()
                    .map(|v| v.map(|e| if e == 6 { "UTF8" } else { "SQL_ASCII" }))
                    .collect();
                Ok(Arc::new(out) as ArrayRef)
            },
        ),
        expandarray(),
        more_than_one_row(),
        pgc::create_pg_relation_is_publishable_udf(),
        pgc::create_pg_get_statisticsobjdef_columns_udf(),
        pgc::create_pg_get_partkeydef_udf(),
        pgc::create_pg_relation_size_udf(),
        pgc::create_pg_total_relation_size_udf(),
        pgc::create_pg_stat_get_numscans(),
        pgc::create_pg_get_partition_ancestors_udf(),
        pgc::quote_ident_udf::create_quote_ident_udf(),
        pgc::quote_ident_udf::create_parse_ident_udf(),
        pgc::array_bounds_udf::create_array_upper_udf(),
        pgc::array_bounds_udf::create_array_lower_udf(),
        fun(
            "format_type",
            &[2],
            DataType::Utf8,
            Volatility::Stable,
            |args, _| {
                let (oids, mods) = (ints(&args[0])?, ints(&args[1])?);
                let out: StringArray = (0..oids.len())
                    .map(|i| {
                        if oids.is_null(i) {
                            return None;
                        }
                        let m = if mods.is_null(i) { -1 } else { mods.value(i) };
                        Some(format_type(oids.value(i), m).unwrap_or_else(|| "???".into()))
                    })
                    .collect();
                Ok(Arc::new(out) as ArrayRef)
            },
        ),
        // weft stores a default's SQL text where PostgreSQL stores its node tree.
        fun(
            "pg_get_expr",
            &[2, 3],
            DataType::Utf8,
            Volatility::Stable,
            |args, _| Ok(Arc::new(texts(&args[0])?) as ArrayRef),
        ),
        // Every relation and type weft has is in public or pg_catalog, both on the path.
        always_true("pg_table_is_visible"),
        always_true("pg_type_is_visible"),
        // Functions and collations too (psql's \df, SQLAlchemy and Alembic reflection).
        always_true("pg_function_is_visible"),
        always_true("pg_collation_is_visible"),
        typed(
            "uuid",
            fun_impl(
                "gen_random_uuid",
                &[0],
                DataType::Utf8,
                Volatility::Volatile,
                move |_, rows| {
                    let out: StringArray = (0..rows)
                        .map(|_| {
                            let bytes = entropy.bytes::<16>();
                            Some(
                                uuid::Builder::from_random_bytes(bytes)
                                    .into_uuid()
                                    .hyphenated()
                                    .to_string(),
                            )
                        })
                        .collect();
                    Ok(Arc::new(out) as ArrayRef)
                },
            ),
        ),
        // set_config() over the rows of a query (pg_dump sets a setting weft does not
        // have this way, from pg_settings, and so over no row). A call on a row is 0A000:
        // the session applies `SELECT set_config('name', 'value', local)` itself.
        fun(
            "set_config",
            &[3],
            DataType::Utf8,
            Volatility::Volatile,
            |_, rows| {
                if rows > 0 {
                    return Err(external(crate::error::SqlError::unsupported(
                        "set_config() is supported only as SELECT set_config('name', 'value', is_local)",
                    )));
                }
                Ok(Arc::new(StringArray::from(Vec::<Option<&str>>::new())) as ArrayRef)
            },
        ),
        // Roles and databases take no comments: every shared description is NULL.
        null_text("shobj_description", &[2]),
        // weft has no triggers (its foreign keys are not triggers).
        null_text("pg_get_triggerdef", &[1, 2]),
        fun(
            "to_regtype",
            &[1],
            DataType::Int32,
            Volatility::Stable,
            move |args, _| {
                let names = texts(&args[0])?;
                let out: Int32Array = names
                    .iter()
                    .map(|n| {
                        n.and_then(|n| {
                            let n = n.trim().trim_start_matches("pg_catalog.").to_lowercase();
                            type_oids.get(n.trim_matches('"')).copied()
                        })
                    })
                    .collect();
                Ok(Arc::new(out) as ArrayRef)
            },
        ),
        fun(
            "pg_is_in_recovery",
            &[0],
            DataType::Boolean,
            Volatility::Stable,
            |_, rows| Ok(Arc::new(BooleanArray::from(vec![false; rows.max(1)])) as ArrayRef),
        ),
        fun(
            "pg_my_temp_schema",
            &[0],
            DataType::Int32,
            Volatility::Stable,
            |_, rows| Ok(Arc::new(Int32Array::from(vec![0; rows.max(1)])) as ArrayRef),
        ),
    ];
    for f in udfs {
        state.register_udf(Arc::new(f))?;
    }
    Ok(())
}

/// A function of an oid that is true for every non-NULL argument.
pub(crate) fn always_true(name: &'static str) -> ScalarUDF {
    fun(
        name,
        &[1],
        DataType::Boolean,
        Volatility::Stable,
        |args, _| {
            let o = ints(&args[0])?;
            Ok(Arc::new(o.iter().map(|v| v.map(|_| true)).collect::<BooleanArray>()) as ArrayRef)
        },
    )
}

/// A function of an oid (and ignored flags) answered from the session's catalog snapshot.
pub(crate) fn snapshot_text(
    name: &'static str,
    arities: &[usize],
    meta: &Arc<SessionMeta>,
    f: fn(&crate::catalog::session_meta::Snapshot, &[String], i32) -> Option<String>,
) -> ScalarUDF {
    let m = meta.clone();
    fun(
        name,
        arities,
        DataType::Utf8,
        Volatility::Stable,
        move |args, _| {
            let oids = ints(&args[0])?;
            let snap = m.snapshot();
            let path = m.search_path();
            let out: StringArray = oids
                .iter()
                .map(|o| o.and_then(|o| f(&snap, &path, o)))
                .collect();
            Ok(Arc::new(out) as ArrayRef)
        },
    )
}

pub(crate) fn null_text(name: &'static str, arities: &[usize]) -> ScalarUDF {
    fun(
        name,
        arities,
        DataType::Utf8,
        Volatility::Stable,
        |args, rows| {
            let n = args.first().map(|a| a.len()).unwrap_or(rows.max(1));
            Ok(Arc::new(StringArray::from(vec![None::<&str>; n])) as ArrayRef)
        },
    )
}

/// A sequence name argument (`'t_id_seq'`, `'public.t_id_seq'`, `'"Odd"'`) as stored.
pub(crate) fn sequence_name(text: &str) -> DfResult<String> {
    let parts = crate::catalog::pg_get::split_name(text).unwrap_or_default();
    match parts.as_slice() {
        [n] => Ok(n.clone()),
        [schema, n] => Ok(weft_engine::schema::relation_key(schema, n)),
        _ => Err(DataFusionError::External(Box::new(
            crate::error::SqlError::new(
                crate::error::codes::UNDEFINED_TABLE,
                format!("relation \"{text}\" does not exist"),
            ),
        ))),
    }
}

pub(crate) fn external(e: crate::error::SqlError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// Runs a storage operation from inside a function, which DataFusion calls synchronously
/// on a worker thread of the server's runtime.
/// The one place the frontend blocks a runtime thread (it needs the multi-threaded
/// runtime; a simulation on a current-thread runtime does not call these functions).
pub(crate) fn block_on<T>(fut: impl std::future::Future<Output = T>) -> T {
    #[allow(clippy::disallowed_methods)]
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(fut))
}

/// `weft_more_than_one_row(x)`: fails with 21000 for any row it is evaluated on. A scalar
/// subquery rewritten to an aggregate (compat.rs) calls it when a second row comes.
pub(crate) fn more_than_one_row() -> ScalarUDF {
    #[derive(Debug, PartialEq, Eq, Hash)]
    struct TooMany {
        signature: Signature,
    }
    impl ScalarUDFImpl for TooMany {
        fn name(&self) -> &str {
            "weft_more_than_one_row"
        }
        fn signature(&self) -> &Signature {
            &self.signature
        }
        fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
            Ok(args.first().cloned().unwrap_or(DataType::Null))
        }
        fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
            if args.number_rows > 0 {
                return Err(external(crate::error::SqlError::new(
                    crate::error::codes::CARDINALITY_VIOLATION,
                    "more than one row returned by a subquery used as an expression",
                )));
            }
            Ok(ColumnarValue::Array(arrow::array::new_empty_array(
                args.return_field.data_type(),
            )))
        }
    }
    ScalarUDF::new_from_impl(TooMany {
        signature: Signature::any(1, Volatility::Volatile),
    })
}

/// `information_schema._pg_expandarray(a)`'s values as one array of `(x, n)` records: the
/// elements with their 1-based positions. PostgreSQL's is a set-returning function; catalog
/// queries call it through `unnest` (see compat.rs), which gives the same rows.
pub(crate) fn expandarray() -> ScalarUDF {
    use arrow::array::{ListArray, StructArray};
    use arrow::buffer::OffsetBuffer;
    use arrow::datatypes::{Field, Fields};
    let fields = Fields::from(vec![
        Field::new("x", DataType::Int32, true),
        Field::new("n", DataType::Int32, false),
    ]);
    let item = Arc::new(Field::new("item", DataType::Struct(fields.clone()), true));
    fun(
        "_pg_expandarray",
        &[1],
        DataType::List(item.clone()),
        Volatility::Immutable,
        move |args, rows| {
            let list = cast(
                &args[0],
                &DataType::List(Arc::new(Field::new("item", DataType::Int32, true))),
            )?;
            let list = list.as_list::<i32>();
            let (mut xs, mut ns, mut lens) = (Vec::new(), Vec::new(), Vec::with_capacity(rows));
            for i in 0..list.len() {
                if list.is_null(i) {
                    lens.push(0);
                    continue;
                }
                let v = list.value(i);
                let v = v.as_primitive::<Int32Type>();
                for j in 0..v.len() {
                    xs.push(if v.is_null(j) { None } else { Some(v.value(j)) });
                    ns.push(j as i32 + 1);
                }
                lens.push(v.len());
            }
            let structs = StructArray::new(
                fields.clone(),
                vec![
                    Arc::new(Int32Array::from(xs)) as ArrayRef,
                    Arc::new(Int32Array::from(ns)) as ArrayRef,
                ],
                None,
            );
            let out = ListArray::new(
                item.clone(),
                OffsetBuffer::from_lengths(lens),
                Arc::new(structs),
                list.nulls().cloned(),
            );
            Ok(Arc::new(out) as ArrayRef)
        },
    )
}

/// `nextval` as the template state knows it, so that column defaults parse; a session's
/// context replaces it with one that draws values (`crate::catalog::session_funcs::nextval_udf`).
pub fn nextval_placeholder() -> ScalarUDF {
    fun(
        "nextval",
        &[1],
        DataType::Int64,
        Volatility::Volatile,
        |_, _| {
            Err(DataFusionError::Internal(
                "nextval was called outside a session".into(),
            ))
        },
    )
}
