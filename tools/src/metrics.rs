//! A node's metrics: one [`Registry`] of every component's counters and histograms, the
//! gauges read from the components at each scrape ([`NodeGauges`], and [`SessionGauges`],
//! which a `weft frontend` serves too), and the HTTP
//! endpoint that serves them (`weft serve --metrics-listen`) in Prometheus's text format
//! (OpenMetrics 1.0, which Prometheus and its agents scrape as they are).
//!
//! Bounds: at most [`METRICS_CONNECTIONS_MAX`] connections at once (more are closed
//! unanswered), a request's headers within [`METRICS_HEADER_TIMEOUT`], a connection's
//! life within [`METRICS_CONNECTION_AGE_MAX`], and requests of at most
//! [`METRICS_REQUEST_BYTES_MAX`] bytes. Only `GET /metrics` (and `HEAD`) answers 200.

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use weft_crossbar::Hub;
use weft_engine::storage::StorageNode;
use weft_engine::{Clock, Timestamp};
use weft_frontend_pgwire::Db;
use weft_journal::Sequencer;

/// The most metrics connections served at once; one more is closed unanswered.
pub const METRICS_CONNECTIONS_MAX: usize = 16;
/// How long a metrics client may take to send a request's headers.
pub const METRICS_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a metrics connection may live, however busy.
pub const METRICS_CONNECTION_AGE_MAX: Duration = Duration::from_secs(60);
/// The largest request (line and headers) a metrics client may send.
pub const METRICS_REQUEST_BYTES_MAX: usize = 16 << 10;

/// What an OpenMetrics text body is sent as.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The gauges and counters a node keeps in its components' own state, read at each
/// scrape rather than updated on every event.
pub struct NodeGauges {
    pub epoch: u64,
    pub clock: Arc<dyn Clock>,
    pub sequencer: Arc<Sequencer>,
    pub hub: Hub,
    pub storage: Arc<StorageNode>,
}

impl fmt::Debug for NodeGauges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeGauges")
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JournalLabel {
    journal: u32,
}

/// Nanoseconds of commit timestamps as seconds; 0 when `behind` is not behind `ahead`.
fn lag_seconds(ahead: Timestamp, behind: Timestamp) -> f64 {
    ahead.saturating_sub(behind) as f64 / 1e9
}

fn gauge(enc: &mut DescriptorEncoder, name: &str, help: &str, value: f64) -> fmt::Result {
    let g = ConstGauge::new(value);
    let m = enc.encode_descriptor(name, help, None, g.metric_type())?;
    g.encode(m)
}

fn counter(enc: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    let c = ConstCounter::new(value);
    let m = enc.encode_descriptor(name, help, None, c.metric_type())?;
    c.encode(m)
}

/// What every process that serves clients reports (`weft serve` and `weft frontend`): its
/// sessions and fast-path counts, read from the frontend's handle at scrape time.
pub struct SessionGauges {
    pub db: Arc<Db>,
}

impl fmt::Debug for SessionGauges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionGauges").finish_non_exhaustive()
    }
}

impl Collector for SessionGauges {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        gauge(
            &mut enc,
            "weft_sessions",
            "Client connections open",
            self.db.sessions() as f64,
        )?;
        gauge(
            &mut enc,
            "weft_sessions_max",
            "The most client connections served at once (--max-connections)",
            self.db.max_connections() as f64,
        )?;
        counter(
            &mut enc,
            "weft_point_selects",
            "Statements answered by the point-select fast path",
            self.db
                .point_selects
                .load(std::sync::atomic::Ordering::Relaxed),
        )?;
        counter(
            &mut enc,
            "weft_point_writes",
            "INSERT, UPDATE and DELETE statements answered by the point-write fast path",
            self.db
                .point_writes
                .load(std::sync::atomic::Ordering::Relaxed),
        )?;
        Ok(())
    }
}

impl Collector for NodeGauges {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let now = self.clock.now().latest;
        gauge(
            &mut enc,
            "weft_ownership_epoch",
            "The epoch under which this process owns the store",
            self.epoch as f64,
        )?;
        gauge(
            &mut enc,
            "weft_commits_in_flight",
            "Commits given a timestamp and not yet durable, over every journal",
            self.sequencer.in_flight() as f64,
        )?;
        {
            let g = ConstGauge::new(0.0f64);
            let mut family = enc.encode_descriptor(
                "weft_journal_watermark_lag_seconds",
                "How long the journal's oldest commit not yet durable has waited, holding its \
                 watermark back (0: none waits)",
                None,
                g.metric_type(),
            )?;
            for (j, (oldest, _)) in self.sequencer.journal_status().into_iter().enumerate() {
                let lag = oldest.map(|ts| lag_seconds(now, ts)).unwrap_or(0.0);
                let label = JournalLabel { journal: j as u32 };
                ConstGauge::new(lag).encode(family.encode_family(&label)?)?;
            }
        }
        let durable = self.sequencer.durable_max();
        let released = self.hub.released();
        let applied = self.storage.applied_ts();
        gauge(
            &mut enc,
            "weft_crossbar_lag_seconds",
            "Commit time between the newest durable commit and the crossbar's total order \
             (the merge's backlog)",
            lag_seconds(durable, released),
        )?;
        gauge(
            &mut enc,
            "weft_storage_apply_lag_seconds",
            "Commit time between the newest durable commit and what storage has applied",
            lag_seconds(durable, applied),
        )?;
        let hub = self.hub.stats();
        gauge(
            &mut enc,
            "weft_crossbar_subscribers",
            "Storage subscribers attached to the crossbar's live stream",
            hub.attached as f64,
        )?;
        counter(
            &mut enc,
            "weft_crossbar_cut_offs",
            "Subscribers cut off the live stream for falling behind",
            hub.cut_offs,
        )?;
        counter(
            &mut enc,
            "weft_crossbar_rejoins",
            "Subscribers that caught up from the store and rejoined the live stream",
            hub.rejoins,
        )?;
        let cache = &self.storage.cache().stats;
        let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        counter(
            &mut enc,
            "weft_segment_cache_hits",
            "Segment slices read from the cache",
            load(&cache.hits),
        )?;
        counter(
            &mut enc,
            "weft_segment_cache_misses",
            "Segment slices read from the store",
            load(&cache.misses),
        )?;
        counter(
            &mut enc,
            "weft_segment_cache_evictions",
            "Segment slices evicted from the cache for space",
            load(&cache.evictions),
        )?;
        gauge(
            &mut enc,
            "weft_segment_cache_bytes",
            "Bytes of decoded segment slices cached",
            self.storage.cache().bytes() as f64,
        )?;
        Ok(())
    }
}

/// The registry's text, as a scrape answers it.
pub fn render(registry: &Registry) -> String {
    let mut text = String::new();
    // Writing to a String cannot fail; a collector's error would be a bug.
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, registry) {
        tracing::error!(error = %e, "metrics: encoding failed");
    }
    text
}

fn answer(req: &Request<hyper::body::Incoming>, registry: &Registry) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, content_type: &str, body: Bytes| {
        let mut r = Response::new(Full::new(body));
        *r.status_mut() = status;
        if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
            r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
        }
        r
    };
    let text = "text/plain; charset=utf-8";
    if req.uri().path() != "/metrics" {
        return reply(
            StatusCode::NOT_FOUND,
            text,
            Bytes::from_static(b"weft serves its metrics at /metrics\n"),
        );
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = reply(
            StatusCode::METHOD_NOT_ALLOWED,
            text,
            Bytes::from_static(b"only GET and HEAD\n"),
        );
        r.headers_mut().insert(
            hyper::header::ALLOW,
            hyper::header::HeaderValue::from_static("GET, HEAD"),
        );
        return r;
    }
    reply(StatusCode::OK, CONTENT_TYPE, Bytes::from(render(registry)))
}

/// Serves `registry` on `listener` until the future is dropped.
pub async fn serve(listener: TcpListener, registry: Arc<Registry>) {
    let permits = Arc::new(tokio::sync::Semaphore::new(METRICS_CONNECTIONS_MAX));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors, most likely: back off rather than spin.
                tracing::warn!(error = %e, "metrics: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%peer, limit = METRICS_CONNECTIONS_MAX, "metrics: too many connections; closing one");
            continue;
        };
        let registry = registry.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req| {
                let r = answer(&req, &registry);
                async move { Ok::<_, Infallible>(r) }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(METRICS_HEADER_TIMEOUT)
                .max_buf_size(METRICS_REQUEST_BYTES_MAX);
            let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            match tokio::time::timeout(METRICS_CONNECTION_AGE_MAX, conn).await {
                Ok(Ok(())) | Err(_) => {}
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "metrics: connection ended"),
            }
        });
    }
}
