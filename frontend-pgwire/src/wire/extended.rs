//! The extended query protocol: Parse (with the statement described once), Bind with
//! parameter types, Describe, Execute and Sync.

use std::fmt::Debug;
use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, SchemaRef};
use async_trait::async_trait;
use datafusion::sql::sqlparser::ast::Statement;
use futures::sink::{Sink, SinkExt};
use futures::StreamExt;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::ExtendedQueryHandler;
use pgwire::api::results::{
    DescribePortalResponse, DescribeStatementResponse, FieldInfo, Response, Tag,
};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, PgWireConnectionState, Type, DEFAULT_NAME};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::extendedquery::Sync as PgSync;
use pgwire::messages::response::ReadyForQuery;
use pgwire::messages::PgWireBackendMessage;

use crate::error::{codes, SqlError, SqlResult};
use crate::session::describe::explain_json;
use crate::session::describe::explain_json_schema;
use crate::session::describe::explained_statement;
use crate::session::machine::Core;
use crate::session::machine::Reply;
use crate::sql::outcome::Outcome;
use crate::sql::prepare::parse;
use crate::wire::connection::SessionHandler;
use crate::wire::encode::{fields_for, pg_type_of, query_response, stream_response};
use crate::wire::errors::IntoPgWire;
use crate::wire::messages::send_notices;
use crate::wire::messages::wire_status;
use crate::wire::messages::wire_tag;

/// A statement parsed and described at Parse time.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub stmt: Statement,
    /// The statement's text as the client sent it (`pg_stat_activity.query`), kept so that
    /// an execution need not print the statement again.
    pub text: Arc<str>,
    pub param_types: Vec<Option<DataType>>,
    /// Parameters compared with or assigned to a uuid, json, jsonb, varchar or char column
    /// are described as that type (weft stores them as text, DataFusion infers text).
    pub param_wire: Vec<Option<Type>>,
    /// The Arrow type of each parameter that is cast (`$1::numeric(12,2)`), which a binary
    /// parameter DataFusion left untyped is decoded into.
    pub param_cast: Vec<Option<DataType>>,
    pub schema: Option<SchemaRef>,
}

pub struct WeftQueryParser {
    pub(crate) core: Arc<Core>,
}

impl WeftQueryParser {
    /// The statement `sql` prepared: parsed, checked and described.
    async fn parse_prepared(&self, sql: &str) -> SqlResult<Option<Prepared>> {
        let mut stmts = parse(sql)?;
        if stmts.len() > 1 {
            return Err(SqlError::syntax(
                "cannot insert multiple commands into a prepared statement",
            ));
        }
        let Some(stmt) = stmts.pop() else {
            return Ok(None);
        };
        if explained_statement(&stmt).is_some() {
            return Ok(Some(Prepared {
                stmt,
                text: sql.into(),
                param_types: Vec::new(),
                param_wire: Vec::new(),
                param_cast: Vec::new(),
                schema: Some(explain_json_schema()),
            }));
        }
        let (param_types, schema) = self.core.describe(&stmt).await?;
        let param_wire = self.core.param_wire_types(&stmt, param_types.len()).await;
        let param_cast = crate::session::describe::cast_arrow_types(&stmt, param_types.len());
        Ok(Some(Prepared {
            param_wire,
            param_cast,
            stmt,
            text: sql.into(),
            param_types,
            schema,
        }))
    }
}

#[async_trait]
impl QueryParser for WeftQueryParser {
    type Statement = Prepared;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        // An error here (a syntax error, an unknown table) is a failed statement too.
        let parsed = self.parse_prepared(sql).await;
        if let Err(e) = &parsed {
            self.core.count_error(e.code);
        }
        parsed.map_err(SqlError::into_pgwire)
    }

    fn get_parameter_types(&self, stmt: &Prepared) -> PgWireResult<Vec<Type>> {
        stmt.param_types
            .iter()
            .map(|t| match t {
                Some(t) => arrow_pg::datatypes::into_pg_type(t),
                None => Ok(Type::UNKNOWN),
            })
            .collect()
    }

    fn get_result_schema(
        &self,
        stmt: &Prepared,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        match &stmt.schema {
            Some(s) => fields_for(s, column_format.unwrap_or(&Format::UnifiedText)),
            None => Ok(Vec::new()),
        }
    }
}

#[async_trait]
impl ExtendedQueryHandler for SessionHandler {
    type Statement = Prepared;
    type QueryParser = WeftQueryParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        Arc::new(WeftQueryParser {
            core: self.core.clone(),
        })
    }

    /// As pgwire's, with ParseComplete queued for the Sync or Flush.
    async fn on_parse<C>(
        &self,
        client: &mut C,
        message: pgwire::messages::extendedquery::Parse,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        let parser = self.query_parser();
        match StoredStatement::parse(client, &message, parser).await? {
            Some(stmt) => client.portal_store().put_statement(Arc::new(stmt)),
            None => client.portal_store().put_empty_statement(name),
        }
        client
            .feed(PgWireBackendMessage::ParseComplete(
                pgwire::messages::extendedquery::ParseComplete::new(),
            ))
            .await?;
        Ok(())
    }

    /// As pgwire's, with CloseComplete queued for the Sync or Flush.
    async fn on_close<C>(
        &self,
        client: &mut C,
        message: pgwire::messages::extendedquery::Close,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        use pgwire::messages::extendedquery::{
            CloseComplete, TARGET_TYPE_BYTE_PORTAL, TARGET_TYPE_BYTE_STATEMENT,
        };
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        match message.target_type {
            TARGET_TYPE_BYTE_STATEMENT => client.portal_store().rm_statement(name),
            TARGET_TYPE_BYTE_PORTAL => client.portal_store().rm_portal(name),
            _ => {}
        }
        client
            .feed(PgWireBackendMessage::CloseComplete(CloseComplete::new()))
            .await?;
        Ok(())
    }

    async fn on_bind<C>(
        &self,
        client: &mut C,
        message: pgwire::messages::extendedquery::Bind,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        use pgwire::api::store::Entry;
        let statement_name = message.statement_name.as_deref().unwrap_or(DEFAULT_NAME);
        let portal_name = message.portal_name.as_deref().unwrap_or(DEFAULT_NAME);
        match client.portal_store().get_statement(statement_name) {
            Some(Entry::Value(statement)) => {
                let formats = message.parameter_format_codes.len();
                if formats > 1 && formats != message.parameters.len() {
                    return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                        "ERROR".to_owned(),
                        codes::PROTOCOL_VIOLATION.to_owned(),
                        format!(
                            "bind message has {formats} parameter formats but {} parameters",
                            message.parameters.len()
                        ),
                    ))));
                }
                let portal = Portal::try_new(&message, statement)?;
                client.portal_store().put_portal(Arc::new(portal));
            }
            Some(Entry::Empty) => {
                if !message.parameters.is_empty() {
                    return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                        "ERROR".to_owned(),
                        codes::PROTOCOL_VIOLATION.to_owned(),
                        format!(
                            "bind message supplies {} parameters, but prepared statement \"{}\" requires 0",
                            message.parameters.len(),
                            statement_name
                        ),
                    ))));
                }
                client.portal_store().put_empty_portal(portal_name);
            }
            None => return Err(PgWireError::StatementNotFound(statement_name.to_owned())),
        }
        // Queued, not flushed: it leaves with the rest of the answer at Sync.
        client
            .feed(PgWireBackendMessage::BindComplete(
                pgwire::messages::extendedquery::BindComplete::new(),
            ))
            .await?;
        Ok(())
    }

    async fn on_execute<C>(
        &self,
        client: &mut C,
        message: pgwire::messages::extendedquery::Execute,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // The default execution, with its flushes deferred to Sync (see deferred.rs).
        let r = crate::wire::execute::execute(
            self,
            &mut crate::wire::deferred::Deferred(client),
            message,
        )
        .await;
        // Any error fails the transaction block, as in PostgreSQL: also one that a
        // streamed result met after its statement returned.
        if r.is_err() {
            let mut st = self.core.state.lock().await;
            self.core.fail(&mut st);
        }
        if matches!(client.state(), PgWireConnectionState::CopyInProgress(_)) {
            // COPY FROM STDIN: the client waits for CopyInResponse before it sends data,
            // and a Sync during the copy is ignored, so it leaves now.
            client.flush().await?;
        }
        r
    }

    /// As pgwire's, except that a statement returning no rows (INSERT, UPDATE, DELETE
    /// without RETURNING) is described with NoData even when it has parameters: a
    /// RowDescription of no columns means a query that returns rows (pgjdbc then rejects
    /// `executeUpdate`).
    async fn on_describe<C>(
        &self,
        client: &mut C,
        message: pgwire::messages::extendedquery::Describe,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        use pgwire::api::results::DescribeResponse;
        use pgwire::messages::data::{NoData, ParameterDescription};
        // Queued, not flushed: the description leaves with the rest of the answer at
        // Sync or Flush, in one write (pgbench -M prepared sends Bind, Describe, Execute,
        // Sync for every statement).
        let client = &mut crate::wire::deferred::Deferred(client);
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        // A cursor DECLAREd in SQL is a portal too, as in PostgreSQL: psycopg describes it
        // by name to learn its columns.
        if message.target_type == pgwire::messages::extendedquery::TARGET_TYPE_BYTE_PORTAL
            && client.portal_store().get_portal(name).is_none()
        {
            let schema = {
                let st = self.core.state.lock().await;
                st.cursors.get(name).map(|c| c.schema.clone())
            };
            if let Some(schema) = schema {
                let fields = fields_for(&schema, &Format::UnifiedText)?;
                client
                    .send(PgWireBackendMessage::RowDescription(
                        pgwire::messages::data::RowDescription::new(
                            fields.iter().map(Into::into).collect(),
                        ),
                    ))
                    .await?;
                return Ok(());
            }
        }
        let stmt = match client.portal_store().get_statement(name) {
            Some(pgwire::api::store::Entry::Value(stmt))
                if message.target_type
                    == pgwire::messages::extendedquery::TARGET_TYPE_BYTE_STATEMENT
                    && stmt.statement.schema.is_none() =>
            {
                stmt
            }
            _ => return self._on_describe(client, message).await,
        };
        let described = self.do_describe_statement(client, &stmt).await?;
        let oids = described
            .parameters()
            .unwrap_or_default()
            .iter()
            .map(|t| t.oid())
            .collect();
        client
            .send(PgWireBackendMessage::ParameterDescription(
                ParameterDescription::new(oids),
            ))
            .await?;
        client
            .send(PgWireBackendMessage::NoData(NoData::default()))
            .await?;
        Ok(())
    }

    async fn do_describe_statement<C>(
        &self,
        _client: &mut C,
        target: &StoredStatement<Self::Statement>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let p = &target.statement;
        let params: Vec<Type> = p
            .param_types
            .iter()
            .enumerate()
            .map(
                |(i, t)| match target.parameter_types.get(i).cloned().flatten() {
                    Some(declared) if declared != Type::UNKNOWN => Ok(declared),
                    _ if p.param_wire.get(i).cloned().flatten().is_some() => {
                        Ok(p.param_wire[i].clone().expect("checked"))
                    }
                    _ => match t {
                        Some(t) => pg_type_of(&Field::new("", t.clone(), true)),
                        None => Ok(Type::TEXT),
                    },
                },
            )
            .collect::<PgWireResult<_>>()?;
        let fields = match &p.schema {
            Some(s) => fields_for(s, &Format::UnifiedText)?,
            None => Vec::new(),
        };
        Ok(DescribeStatementResponse::new(params, fields))
    }

    async fn do_describe_portal<C>(
        &self,
        _client: &mut C,
        target: &Portal<Self::Statement>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let fields = match &target.statement.statement.schema {
            Some(s) => fields_for(s, &target.result_column_format)?,
            None => Vec::new(),
        };
        Ok(DescribePortalResponse::new(fields))
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let normalized = normalize_params(
            portal,
            &portal.statement.statement.param_wire,
            &portal.statement.statement.param_types,
        );
        let portal = normalized.as_ref().unwrap_or(portal);
        let p = &portal.statement.statement;
        if let Some(name) = explained_statement(&p.stmt) {
            let described = match client.portal_store().get_statement(&name) {
                Some(pgwire::api::store::Entry::Value(s)) => s.statement.schema.clone(),
                _ => {
                    return Err(SqlError::new(
                        "26000",
                        format!("prepared statement \"{name}\" does not exist"),
                    )
                    .into_pgwire())
                }
            };
            let schema = explain_json_schema();
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(StringArray::from(vec![explain_json(
                    described.as_deref(),
                )]))],
            )
            .map_err(|e| SqlError::internal(e.to_string()).into_pgwire())?;
            return Ok(Response::Query(query_response(
                &schema,
                vec![batch],
                &portal.result_column_format,
            )?));
        }
        let params = if portal.parameter_len() > 0 {
            let binary = |i: usize| portal.parameter_format.is_binary(i);
            let inferred: Vec<Option<&DataType>> = (0..portal.parameter_len())
                .map(|i| {
                    p.param_types.get(i).and_then(|t| t.as_ref()).or_else(|| {
                        p.param_cast
                            .get(i)
                            .and_then(|t| t.as_ref())
                            .filter(|_| binary(i))
                    })
                })
                .collect();
            // A binary parameter is in the format of the type weft described for it
            // (`$1::int4` is described as int4, so a client sends four bytes). A text one
            // stays text: the statement's own cast reads it, as PostgreSQL's input
            // function would.
            let described: Vec<Option<&Type>> = (0..portal.parameter_len())
                .map(|i| {
                    p.param_wire
                        .get(i)
                        .and_then(|t| t.as_ref())
                        .filter(|_| binary(i))
                })
                .collect();
            Some(
                arrow_pg::datatypes::df::deserialize_parameters_with_server_types(
                    portal, &inferred, &described,
                )?,
            )
        } else {
            None
        };
        let core = &self.core;
        let mut st = core.state.lock().await;
        core.activity_begin(&st, &p.text);
        let mut notices = Vec::new();
        let started = tokio::time::Instant::now();
        let result = core
            .run_counted(&mut st, p.stmt.clone(), params.as_ref(), true, &mut notices)
            .await
            .map(|r| core.interruptible(&st, r, started));
        core.activity_end(&st);
        drop(st);
        send_notices(client, notices).await?;
        match result {
            Ok(Reply::Outcome(Outcome::Rows { schema, batches })) => {
                let (schema, batches) = as_described(p.schema.clone(), schema, batches)?;
                Ok(Response::Query(query_response(
                    &schema,
                    batches,
                    &portal.result_column_format,
                )?))
            }
            Ok(Reply::Outcome(Outcome::Stream(rows))) => {
                // As above, batch by batch.
                let (schema, batches) = match p
                    .schema
                    .clone()
                    .filter(|s| s.fields().len() == rows.schema.fields().len())
                {
                    Some(described) => {
                        let to = described.clone();
                        let batches = rows
                            .batches
                            .map(move |b| {
                                b.and_then(|b| crate::wire::conform::conform_batch(&to, b))
                            })
                            .boxed();
                        (described, batches)
                    }
                    None => (rows.schema, rows.batches),
                };
                Ok(Response::Query(stream_response(
                    &schema,
                    batches,
                    &portal.result_column_format,
                )?))
            }
            Ok(Reply::Outcome(Outcome::Returned {
                command,
                schema,
                batches,
            })) => {
                let (schema, batches) = as_described(p.schema.clone(), schema, batches)?;
                let mut resp = query_response(&schema, batches, &portal.result_column_format)?;
                resp.set_command_tag(command);
                Ok(Response::Query(resp))
            }
            Ok(Reply::Outcome(Outcome::Fetched { schema, batches })) => {
                let mut resp = query_response(&schema, batches, &portal.result_column_format)?;
                resp.set_command_tag("FETCH");
                Ok(Response::Query(resp))
            }
            Ok(Reply::Outcome(Outcome::Command(tag))) => Ok(Response::Execution(wire_tag(tag))),
            Ok(Reply::Begin) => Ok(Response::TransactionStart(Tag::new("BEGIN"))),
            Ok(Reply::End(tag)) => Ok(Response::TransactionEnd(Tag::new(tag))),
            Ok(Reply::CopyIn { columns }) => Ok(Response::CopyIn(
                pgwire::api::results::CopyResponse::new(0, columns, futures::stream::empty()),
            )),
            Ok(Reply::Outcome(Outcome::CopyOut {
                schema,
                batches,
                format,
            })) => {
                let columns = schema.fields().len();
                let (lines, _) = crate::wire::encode::copy_out_lines(&schema, &batches, &format)
                    .map_err(|e| e.into_pgwire())?;
                let data = lines
                    .into_iter()
                    .map(|l| Ok(pgwire::messages::copy::CopyData::new(bytes::Bytes::from(l))));
                Ok(Response::CopyOut(pgwire::api::results::CopyResponse::new(
                    0,
                    columns,
                    futures::stream::iter(data.collect::<Vec<_>>()),
                )))
            }
            Ok(Reply::Outcome(Outcome::CopyIn(_))) => Err(PgWireError::ApiError(
                "a COPY FROM outcome escaped the session".into(),
            )),
            Err(e) => Err(e.into_pgwire()),
        }
    }

    async fn on_sync<C>(&self, client: &mut C, _message: PgSync) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        client.portal_store().rm_portal(DEFAULT_NAME);
        let status = wire_status(self.core.ready_status(&*self.core.state.lock().await));
        client.set_transaction_status(status);
        client
            .send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
                status,
            )))
            .await?;
        client.flush().await?;
        Ok(())
    }
}

/// Parameters of the types weft stores as text (uuid, json, jsonb, varchar, char, name),
/// rewritten as text parameters: arrow-pg decodes those types only into their own Rust
/// types, while weft wants the text. A binary uuid becomes its hyphenated form, a binary
/// jsonb loses its version byte; the others' binary form is their text already.
pub(crate) fn normalize_params<S: Clone>(
    portal: &Portal<S>,
    described: &[Option<Type>],
    inferred: &[Option<DataType>],
) -> Option<Portal<S>> {
    // The client's declared type, else the one weft described.
    let types: Vec<Option<Type>> = (0..portal.parameter_len())
        .map(|i| {
            portal
                .statement
                .parameter_types
                .get(i)
                .cloned()
                .flatten()
                .filter(|t| *t != Type::UNKNOWN)
                .or_else(|| described.get(i).cloned().flatten())
                .or_else(|| {
                    // A uuid[] column's parameter, described from its inferred type.
                    let t = inferred.get(i).cloned().flatten()?;
                    crate::types::column_type::override_type(&Field::new("", t, true))
                        .filter(|t| *t == Type::UUID_ARRAY)
                })
        })
        .collect();
    let types = &types;
    let textual = |t: &Type| {
        [
            Type::UUID,
            Type::JSON,
            Type::JSONB,
            Type::VARCHAR,
            Type::BPCHAR,
            Type::NAME,
        ]
        .contains(t)
    };
    // A NULL of no known type (no declared, described or inferred type) is read as a text
    // NULL; arrow-pg would drop it and shift the parameters after it.
    let untyped_null = |i: usize| {
        types[i].is_none()
            && inferred.get(i).cloned().flatten().is_none()
            && matches!(portal.parameters.get(i), Some(None))
    };
    let any_untyped_null = (0..types.len()).any(untyped_null);
    let text_array = |t: &Type| *t == Type::OID_ARRAY || *t == Type::UUID_ARRAY;
    if !types.iter().flatten().any(|t| textual(t) || text_array(t)) && !any_untyped_null {
        return None;
    }
    let mut parameters = portal.parameters.clone();
    let mut new_types = types.clone();
    for (i, slot) in new_types.iter_mut().enumerate() {
        if untyped_null(i) {
            *slot = Some(Type::TEXT);
        }
    }
    for (i, t) in types.iter().enumerate() {
        // An oid[] (asyncpg's type introspection binds one) or a uuid[] goes as its text
        // form, which the statement's cast or column reads; arrow-pg has no decoder for it.
        if let Some(t) = t.as_ref().filter(|t| text_array(t)) {
            if portal.parameter_format.is_binary(i) {
                if let Some(Some(b)) = parameters.get_mut(i) {
                    let text = if *t == Type::UUID_ARRAY {
                        crate::types::binary_array::uuid_array_text(b)
                    } else {
                        crate::types::binary_array::int4_array_text(b)
                    };
                    match text {
                        Some(text) => *b = bytes::Bytes::from(text),
                        None => continue,
                    }
                }
            }
            // uuid[]'s text is read by weft's array input (NULL elements included).
            new_types[i] = Some(if *t == Type::UUID_ARRAY {
                Type::TEXT
            } else {
                Type::UNKNOWN
            });
            continue;
        }
        let Some(t) = t.as_ref().filter(|t| textual(t)) else {
            continue;
        };
        let binary = portal.parameter_format.is_binary(i);
        if let Some(Some(b)) = parameters.get_mut(i) {
            if binary && *t == Type::UUID {
                if let Ok(u) = uuid::Uuid::from_slice(b) {
                    *b = bytes::Bytes::from(u.hyphenated().to_string());
                }
            } else if binary && *t == Type::JSONB && b.first() == Some(&1) {
                *b = b.slice(1..);
            }
        }
        new_types[i] = Some(Type::TEXT);
    }
    let stmt = StoredStatement::new(
        portal.statement.id.clone(),
        portal.statement.statement.clone(),
        new_types,
    );
    let mut out = Portal::new_cursor(portal.name.clone(), Arc::new(stmt));
    out.parameter_format = portal.parameter_format.clone();
    out.parameters = parameters;
    out.result_column_format = portal.result_column_format.clone();
    out.state = portal.state.clone();
    Some(out)
}

/// Rows in the column types promised at Describe, when one was: a plan with bound
/// parameters can type a column narrower than the one described without them
/// (`$1::int4 + 1`), and the values must come in the described types.
fn as_described(
    described: Option<arrow::datatypes::SchemaRef>,
    schema: arrow::datatypes::SchemaRef,
    batches: Vec<arrow::array::RecordBatch>,
) -> PgWireResult<(arrow::datatypes::SchemaRef, Vec<arrow::array::RecordBatch>)> {
    match described.filter(|s| s.fields().len() == schema.fields().len()) {
        Some(described) => {
            let batches =
                crate::wire::conform::conform(&described, batches).map_err(|e| e.into_pgwire())?;
            Ok((described, batches))
        }
        None => Ok((schema, batches)),
    }
}
