//! Time: timestamps and the bounded-error clock.
//!
//! A [`Timestamp`] is a `u64` of nanoseconds since the Unix epoch. A [`Clock`] returns an
//! interval `{earliest, latest}` that contains true time. Read timestamps come from `latest`
//! (so they are in the future of every commit already acknowledged anywhere), commit
//! timestamps from `earliest` (see `weft-journal`'s adjudicator).

use std::time::{SystemTime, UNIX_EPOCH};

pub type Timestamp = u64;

/// An interval that contains true time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockInterval {
    pub earliest: Timestamp,
    pub latest: Timestamp,
}

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> ClockInterval;
}

/// The machine's real-time clock widened by a configured error bound.
#[derive(Debug, Clone)]
pub struct SystemClock {
    pub error_bound_ns: u64,
}

impl SystemClock {
    pub fn new(error_bound_ns: u64) -> Self {
        Self { error_bound_ns }
    }
}

impl Clock for SystemClock {
    fn now(&self) -> ClockInterval {
        #[allow(clippy::disallowed_methods)] // the one place that reads the wall clock
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        ClockInterval {
            earliest: now.saturating_sub(self.error_bound_ns),
            latest: now.saturating_add(self.error_bound_ns),
        }
    }
}

/// A clock that follows tokio's: on a runtime with paused time (a simulation), time moves
/// only when every task waits, so a simulated hour passes in milliseconds and a seed
/// replays alike. Starts at `origin` (nanoseconds since the Unix epoch).
#[derive(Debug, Clone)]
pub struct TokioClock {
    origin: Timestamp,
    start: tokio::time::Instant,
    pub error_bound_ns: u64,
}

impl TokioClock {
    pub fn new(origin: Timestamp, error_bound_ns: u64) -> Self {
        TokioClock {
            origin,
            start: tokio::time::Instant::now(),
            error_bound_ns,
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> ClockInterval {
        let now = self.origin + self.start.elapsed().as_nanos() as u64;
        ClockInterval {
            earliest: now.saturating_sub(self.error_bound_ns),
            latest: now.saturating_add(self.error_bound_ns),
        }
    }
}

/// Formats a timestamp as RFC 3339 for logs and error messages.
pub fn format_ts(ts: Timestamp) -> String {
    let secs = (ts / 1_000_000_000) as i64;
    let nanos = (ts % 1_000_000_000) as u32;
    match chrono_like(secs, nanos) {
        Some(s) => s,
        None => ts.to_string(),
    }
}

fn chrono_like(secs: i64, nanos: u32) -> Option<String> {
    let dt = datafusion::arrow::temporal_conversions::timestamp_s_to_datetime(secs)?;
    Some(format!("{}.{:09}Z", dt.format("%Y-%m-%dT%H:%M:%S"), nanos))
}
