//! The adapter to DataFusion: the template every session's state is cloned from (weft's
//! type planner, PostgreSQL's type semantics as analyzer rules and expression planners,
//! the SubPlan query planner, the system functions), and a session's context over weft's
//! catalog.

use std::sync::Arc;

use datafusion::logical_expr::ScalarUDF;

use datafusion::catalog::MemoryCatalogProviderList;
use datafusion::error::Result as DfResult;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use weft_engine::service::StorageService;
use weft_journal::CommitService;

use crate::catalog::db::{Db, CATALOG_NAME, SCHEMA_NAME};
use crate::catalog::memory::MemoryLimits;
use crate::catalog::session_meta::SessionMeta;
use crate::catalog::txn::TxnLimits;
use crate::catalog::view::View;

/// The node's [`Db`], with the DataFusion template its sessions plan with.
pub fn new_db(
    storage: Arc<dyn StorageService>,
    adjudicator: Arc<dyn CommitService>,
    limits: TxnLimits,
    memory: MemoryLimits,
    entropy: weft_engine::Entropy,
) -> Arc<Db> {
    let config = SessionConfig::new()
        .with_default_catalog_and_schema(CATALOG_NAME, SCHEMA_NAME)
        .with_create_default_catalog_and_schema(false)
        .with_information_schema(false)
        .with_target_partitions(2)
        // Scans estimate their rows (weft_engine::storage::scan): a scan of a few keys is
        // not split round-robin across threads, and a small side is joined by collecting it.
        .set_bool(
            "datafusion.execution.use_row_number_estimates_to_optimize_partitioning",
            true,
        )
        .set_str("datafusion.sql_parser.dialect", "PostgreSQL")
        // `0.1` is a numeric, as in PostgreSQL, not a float (0.1 + 0.2 = 0.3).
        .set_bool("datafusion.sql_parser.parse_float_as_decimal", true);
    // One memory pool for every query of the node (crate::catalog::memory).
    let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
        .with_memory_pool(crate::catalog::memory::node_pool(memory))
        .build_arc()
        .expect("a runtime with the default disk manager builds");
    let base_state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        // Correlated subqueries DataFusion cannot decorrelate run per outer row.
        .with_query_planner(Arc::new(crate::sql::subplan::WeftQueryPlanner))
        // Casts to PostgreSQL's oid types (`::regclass`, `::pg_catalog.text`) plan.
        .with_type_planner(Arc::new(WeftTypePlanner))
        // `ORDER BY <primary key> LIMIT n` reads the table in key order and stops.
        .with_physical_optimizer_rule(Arc::new(weft_engine::provider::key_order::KeyOrderLimit))
        .build();
    // jsonb's operators, ahead of DataFusion's own planners (which take `||` and `@>`
    // for arrays).
    let mut builder = SessionStateBuilder::new_from_existing(base_state);
    if let Some(planners) = builder.expr_planners().as_mut() {
        planners.insert(
            0,
            Arc::new(crate::types::jsonb::planner::JsonOperators::default()),
        );
        planners.insert(0, Arc::new(crate::types::datetime::DateIntervalArithmetic));
        planners.insert(0, Arc::new(crate::types::floats::RealWidening));
    }
    let base_state = builder.build();
    // `x op ANY|ALL (subquery)` runs as a SubPlan (crate::sql::subplan): DataFusion's rewrite
    // of it confuses a subquery's table with the same table outside it, and renames
    // the column it computes.
    let rules: Vec<_> = base_state
        .optimizers()
        .iter()
        .filter(|r| r.name() != "rewrite_set_comparison")
        .cloned()
        .collect();
    let mut base_state = SessionStateBuilder::new_from_existing(base_state)
        .with_optimizer_rules(rules)
        .build();
    // character(n) and uuid in comparisons and LIKE, as in PostgreSQL.
    base_state.add_analyzer_rule(Arc::new(crate::types::text_types::TextTypeSemantics));
    // Integer overflow is an error and casts to integers round, as in PostgreSQL.
    base_state.add_analyzer_rule(Arc::new(crate::types::integers::CheckedIntegers::default()));
    base_state.add_analyzer_rule(Arc::new(crate::types::floats::FloatRounding::default()));
    base_state.add_analyzer_rule(Arc::new(crate::types::floats::FloatSemantics::default()));
    base_state.add_analyzer_rule(Arc::new(
        crate::types::datetime::DateTimeSemantics::default(),
    ));
    // `x::jsonb` through jsonb's input function.
    base_state.add_analyzer_rule(Arc::new(crate::types::jsonb::planner::JsonCasts::default()));
    // numeric division and avg with PostgreSQL's result scales: before type coercion,
    // which makes avg's integer argument a float.
    let mut builder = SessionStateBuilder::new_from_existing(base_state);
    if let Some(analyzer) = builder.analyzer().as_mut() {
        let at = analyzer
            .rules
            .iter()
            .position(|r| r.name() == "type_coercion")
            .unwrap_or(0);
        // pg_typeof after numeric's rewrite of avg, whose type it changes.
        analyzer.rules.insert(at, crate::types::pg_typeof::rule());
        analyzer.rules.insert(
            at,
            Arc::new(crate::types::numeric::NumericSemantics::default()),
        );
        // `int4_col + 1` is an integer sum, as in PostgreSQL.
        analyzer
            .rules
            .insert(at, Arc::new(crate::types::integers::IntegerLiterals));
        // '{1,2}' as an array where an array is wanted, before type coercion (which
        // cannot compare an array with text).
        analyzer
            .rules
            .insert(at, Arc::new(crate::types::arrays::ArrayCasts::default()));
    }
    let mut base_state = builder.build();
    {
        use datafusion::execution::FunctionRegistry;
        base_state
            .register_udf(Arc::new(crate::types::pg_typeof::udf()))
            .expect("pg_typeof registers in a fresh state");
        base_state
            .register_udf(Arc::new(crate::types::datetime::at_time_zone_udf()))
            .expect("weft_at_time_zone registers in a fresh state");
        base_state
            .register_udf(Arc::new(crate::types::datetime::justify_hours_udf()))
            .expect("justify_hours registers in a fresh state");
        // PostgreSQL's template patterns, in place of DataFusion's chrono patterns.
        base_state
            .register_udf(Arc::new(crate::types::to_char::udf()))
            .expect("to_char registers in a fresh state");
        for f in crate::types::jsonb::udfs::registered() {
            base_state
                .register_udf(f)
                .expect("the json functions register in a fresh state");
        }
        // PostgreSQL's `variance` is the sample variance.
        let var_samp = datafusion::functions_aggregate::variance::var_samp_udaf();
        base_state
            .register_udaf(Arc::new(
                var_samp.as_ref().clone().with_aliases(["variance"]),
            ))
            .expect("variance registers in a fresh state");
    }
    let mut statics = datafusion_pg_catalog::pg_catalog::PgCatalogStaticTables::try_new()
        .expect("the bundled pg_catalog rows load");
    crate::catalog::char_columns::mark(&mut statics);
    let statics = Arc::new(statics);
    let type_oids = Arc::new(crate::catalog::pgfuncs::type_oids(statics.pg_type.data()));
    crate::catalog::pgfuncs::register_static(&mut base_state, type_oids, entropy.clone())
        .expect("the system functions register in a fresh state");
    let base_state = {
        let ctx = SessionContext::new_with_state(base_state);
        ctx.register_udtf("pg_get_keywords", statics.pg_get_keywords.clone());
        crate::types::jsonb::sets::register(&ctx);
        // generate_series over int4 arguments (array_upper, ...), as clients write it.
        datafusion_pg_catalog::pg_catalog::generate_series_arg_coercion::CoerceIntArgsToBigInt::widen(&ctx);
        ctx.state()
    };
    let no_catalogs: Arc<dyn datafusion::catalog::CatalogProviderList> =
        Arc::new(MemoryCatalogProviderList::new());
    let pg_static = Arc::new(
        datafusion_pg_catalog::pg_catalog::PgCatalogSchemaProvider::try_new(
            no_catalogs,
            statics,
            datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider,
        )
        .expect("the static pg_catalog provider builds"),
    );
    Db::new(
        storage,
        adjudicator,
        limits,
        memory,
        base_state,
        pg_static,
        entropy,
    )
}

/// A session's DataFusion context (weft's tables are registered per statement, by
/// [`plan_through`]), and the session's `nextval`, which column defaults call.
pub fn session_context(db: &Arc<Db>, meta: &Arc<SessionMeta>) -> (SessionContext, Arc<ScalarUDF>) {
    let ctx = db.fresh_context();
    let nextval = Arc::new(crate::catalog::session_funcs::nextval_udf(db, meta));
    crate::catalog::session_funcs::register_session(&ctx, db, meta);
    (ctx, nextval)
}

/// Makes weft's catalog as `view` reads it the one the session's next plan resolves its
/// tables in: a provider value of this statement's, replacing the last statement's.
pub fn plan_through(
    ctx: &SessionContext,
    db: &Arc<Db>,
    view: View,
    meta: Arc<SessionMeta>,
    nextval: Arc<ScalarUDF>,
) {
    ctx.register_catalog(
        CATALOG_NAME,
        crate::catalog::schema::provider(db, view, meta, nextval),
    );
}

/// Casts to PostgreSQL's types that weft stores as text (`::jsonb`, `::json`, `::uuid`), and
/// to the oid types (`::regclass`, `::pg_catalog.text`) through `datafusion-pg-catalog`.
#[derive(Debug)]
struct WeftTypePlanner;

impl datafusion::logical_expr::planner::TypePlanner for WeftTypePlanner {
    fn plan_type_field(
        &self,
        sql_type: &datafusion::sql::sqlparser::ast::DataType,
    ) -> DfResult<Option<arrow::datatypes::FieldRef>> {
        use datafusion::sql::sqlparser::ast::{DataType as T, TimezoneInfo};
        match sql_type {
            T::JSON => Ok(Some(Arc::new(crate::types::jsonb::udfs::json_field(
                "", false,
            )))),
            // `::timestamptz` is weft's timestamptz (microseconds, UTC), as its columns are.
            T::Timestamp(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => Ok(Some(Arc::new(
                weft_engine::SqlType::Timestamptz.arrow_field("", true),
            ))),
            T::Custom(name, args)
                if args.is_empty() && name.to_string().eq_ignore_ascii_case("timestamptz") =>
            {
                Ok(Some(Arc::new(
                    weft_engine::SqlType::Timestamptz.arrow_field("", true),
                )))
            }
            // PostgreSQL's one-byte `"char"` (`'r'::"char"` in catalog queries): text, as
            // the catalogs' `"char"` columns are.
            T::Custom(name, args)
                if args.is_empty()
                    && name.0.len() == 1
                    && name.0[0]
                        .as_ident()
                        .is_some_and(|i| i.quote_style == Some('"') && i.value == "char") =>
            {
                Ok(Some(Arc::new(arrow::datatypes::Field::new(
                    "",
                    arrow::datatypes::DataType::Utf8,
                    true,
                ))))
            }
            // `bpchar` without a length (as pg_dump writes a char(n) column's default,
            // `'abcd'::bpchar`): text of any length.
            T::Custom(name, args)
                if args.is_empty() && name.to_string().eq_ignore_ascii_case("bpchar") =>
            {
                Ok(Some(Arc::new(arrow::datatypes::Field::new(
                    "",
                    arrow::datatypes::DataType::Utf8,
                    true,
                ))))
            }
            T::JSONB => Ok(Some(Arc::new(crate::types::jsonb::udfs::json_field(
                "", true,
            )))),
            // An array of uuid: a list of text whose elements are uuids, as a uuid[]
            // column's (read by `weft_array_in` with uuid's input, on the wire as uuid[]).
            T::Array(
                datafusion::sql::sqlparser::ast::ArrayElemTypeDef::SquareBracket(inner, _)
                | datafusion::sql::sqlparser::ast::ArrayElemTypeDef::AngleBracket(inner),
            ) if matches!(inner.as_ref(), T::Uuid) => Ok(Some(Arc::new(
                weft_engine::SqlType::Array(Box::new(weft_engine::SqlType::Uuid))
                    .arrow_field("", true),
            ))),
            // An array of varchar: a list of plain text, as `weft_array_in` reads one.
            T::Array(
                datafusion::sql::sqlparser::ast::ArrayElemTypeDef::SquareBracket(inner, _)
                | datafusion::sql::sqlparser::ast::ArrayElemTypeDef::AngleBracket(inner),
            ) if matches!(
                inner.as_ref(),
                T::Varchar(_) | T::CharacterVarying(_) | T::CharVarying(_)
            ) =>
            {
                Ok(Some(Arc::new(arrow::datatypes::Field::new(
                    "",
                    arrow::datatypes::DataType::List(Arc::new(
                        arrow::datatypes::Field::new_list_field(
                            arrow::datatypes::DataType::Utf8,
                            true,
                        ),
                    )),
                    true,
                ))))
            }
            // varchar(n): text that goes on the wire as varchar; the cast keeps the first n
            // characters (`text_types` applies the length it carries).
            T::Varchar(_) | T::CharacterVarying(_) | T::CharVarying(_) => {
                match weft_engine::SqlType::from_ast(sql_type) {
                    Ok(t @ weft_engine::SqlType::Varchar { max_chars }) => {
                        let mut f = t.arrow_field("", true);
                        if let Some(n) = max_chars {
                            let mut md = f.metadata().clone();
                            md.insert(
                                crate::types::text_types::CAST_LENGTH_KEY.to_string(),
                                n.to_string(),
                            );
                            f = f.with_metadata(md);
                        }
                        Ok(Some(Arc::new(f)))
                    }
                    _ => Ok(None),
                }
            }
            // Text that goes on the wire as uuid, as a uuid column does.
            T::Uuid => Ok(Some(Arc::new(
                weft_engine::SqlType::Uuid.arrow_field("", true),
            ))),
            _ => datafusion_pg_catalog::pg_catalog::oid_type_planner::PgOidTypePlanner
                .plan_type_field(sql_type),
        }
    }
}
