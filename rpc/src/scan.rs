//! A scan run by a storage node in another process, as a DataFusion plan: its record
//! batches stream over Flight `DoGet` as the storage node produces them.

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::Ticket;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};
use futures::{StreamExt, TryStreamExt};
use prost::Message;
use weft_engine::storage::scan::{scan_schema, ScanRequest};
use weft_engine::EngineError;

use crate::peer::Peer;
use crate::wire;

/// A scan's batches, telling the connection when the scan is dropped before its end.
struct Tracked {
    inner: futures::stream::BoxStream<'static, DfResult<arrow::record_batch::RecordBatch>>,
    peer: Arc<Peer>,
    ended: bool,
}

impl futures::Stream for Tracked {
    type Item = DfResult<arrow::record_batch::RecordBatch>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let next = self.inner.poll_next_unpin(cx);
        if matches!(next, std::task::Poll::Ready(None | Some(Err(_)))) {
            self.ended = true;
        }
        next
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if !self.ended {
            self.peer.cancelled();
        }
    }
}

pub struct RemoteScanExec {
    peer: Arc<Peer>,
    table_name: String,
    read_ts: u64,
    /// The encoded request (a Flight ticket).
    ticket: bytes::Bytes,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl RemoteScanExec {
    pub fn new(peer: Arc<Peer>, req: ScanRequest) -> Result<RemoteScanExec, EngineError> {
        let schema = scan_schema(&req);
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        let ticket = wire::encode_scan(&req)?.encode_to_vec().into();
        Ok(RemoteScanExec {
            peer,
            table_name: req.table_name,
            read_ts: req.read_ts,
            ticket,
            schema,
            properties,
        })
    }
}

impl fmt::Debug for RemoteScanExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteScanExec")
            .field("table", &self.table_name)
            .finish()
    }
}

impl DisplayAs for RemoteScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "WeftRemoteScan: table={}, read_ts={}",
            self.table_name, self.read_ts
        )
    }
}

fn df_error(e: FlightError) -> DataFusionError {
    let engine = match e {
        FlightError::Tonic(s) => crate::peer::engine_error(*s),
        other => EngineError::Unavailable(other.to_string()),
    };
    DataFusionError::External(Box::new(engine))
}

impl ExecutionPlan for RemoteScanExec {
    fn name(&self) -> &str {
        "WeftRemoteScan"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal(
                "a remote scan has no children".into(),
            ))
        }
    }

    fn execute(
        &self,
        partition: usize,
        _ctx: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "a remote scan has one partition, not {partition}"
            )));
        }
        let mut client = crate::peer::client(&self.peer.channel());
        let ticket = Ticket {
            ticket: self.ticket.clone(),
        };
        let batches = futures::stream::once(async move {
            let response = client
                .do_get(ticket)
                .await
                .map_err(|s| df_error(FlightError::Tonic(Box::new(s))))?;
            let data = response
                .into_inner()
                .map_err(|s| FlightError::Tonic(Box::new(s)));
            Ok::<_, DataFusionError>(
                FlightRecordBatchStream::new_from_flight_data(data).map_err(df_error),
            )
        })
        .try_flatten();
        let tracked = Tracked {
            inner: batches.boxed(),
            peer: self.peer.clone(),
            ended: false,
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            tracked,
        )))
    }
}
