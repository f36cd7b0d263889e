//! What the journal writers count, for a node's metrics endpoint: batches, records and
//! bytes made durable, and how long each batch took to become durable (an object PUT, or
//! an append and its `fdatasync`), per journal.
//!
//! The handles are cheap to clone and to update (an atomic add, or a short lock per
//! observation); a writer takes its journal's handles once, at start. A node registers
//! them with [`JournalMetrics::register`]; unregistered they count for nobody.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Latency buckets, in seconds: 50 µs doubling to about 1.6 s, then +Inf. Shared by every
/// latency histogram weft exports, so that they can be compared bucket for bucket.
pub fn latency_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.000_05, 2.0, 16)
}

/// A latency histogram with [`latency_buckets`].
pub fn latency_histogram() -> Histogram {
    Histogram::new(latency_buckets())
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JournalLabel {
    pub journal: u32,
}

/// The phases of a commit in the adjudicator, in order.
#[derive(
    Debug, Clone, Copy, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelValue,
)]
#[allow(non_camel_case_types)]
pub enum Phase {
    /// Encoding the record (outside every lock).
    encode,
    /// Waiting for room in the journal's bounded queue (the store is behind).
    queue,
    /// The conflict check and the timestamp, under the adjudicator's lock (waiting for
    /// the lock included).
    check,
    /// Waiting for the batch holding the record to become durable.
    durable,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabel {
    pub phase: Phase,
}

/// How long each phase of a commit took, for tracing the tail of commit latency to its
/// cause (see [`crate::adjudicator`]'s slow-commit log).
#[derive(Debug, Clone)]
pub struct CommitPhases {
    seconds: Family<PhaseLabel, Histogram, fn() -> Histogram>,
}

impl Default for CommitPhases {
    fn default() -> Self {
        CommitPhases {
            seconds: Family::new_with_constructor(latency_histogram),
        }
    }
}

impl CommitPhases {
    pub fn observe(&self, phase: Phase, seconds: f64) {
        self.seconds
            .get_or_create(&PhaseLabel { phase })
            .observe(seconds);
    }

    pub fn register(&self, r: &mut Registry) {
        r.register(
            "weft_commit_phase_seconds",
            "Time a commit spent in each phase of the adjudicator: encode, queue (room in the journal's queue), check (conflict check and timestamp, lock wait included), durable (its batch's write)",
            self.seconds.clone(),
        );
    }
}

/// Every journal writer's counters, labelled by journal.
#[derive(Debug, Clone)]
pub struct JournalMetrics {
    batches: Family<JournalLabel, Counter>,
    records: Family<JournalLabel, Counter>,
    bytes: Family<JournalLabel, Counter>,
    write_seconds: Family<JournalLabel, Histogram, fn() -> Histogram>,
}

impl Default for JournalMetrics {
    fn default() -> Self {
        JournalMetrics {
            batches: Family::default(),
            records: Family::default(),
            bytes: Family::default(),
            write_seconds: Family::new_with_constructor(latency_histogram),
        }
    }
}

/// One journal's handles.
#[derive(Debug, Clone)]
pub struct WriterMetrics {
    batches: Counter,
    records: Counter,
    bytes: Counter,
    write_seconds: Histogram,
}

impl WriterMetrics {
    /// Counts one batch of `records` commits and `bytes` bytes, durable after `seconds`.
    pub fn durable(&self, records: usize, bytes: usize, seconds: f64) {
        self.batches.inc();
        self.records.inc_by(records as u64);
        self.bytes.inc_by(bytes as u64);
        self.write_seconds.observe(seconds);
    }
}

impl JournalMetrics {
    /// The handles of journal `journal`.
    pub fn writer(&self, journal: u32) -> WriterMetrics {
        let l = JournalLabel { journal };
        WriterMetrics {
            batches: self.batches.get_or_create(&l).clone(),
            records: self.records.get_or_create(&l).clone(),
            bytes: self.bytes.get_or_create(&l).clone(),
            write_seconds: self.write_seconds.get_or_create(&l).clone(),
        }
    }

    pub fn register(&self, r: &mut Registry) {
        r.register(
            "weft_journal_batches",
            "Batches (group commits) made durable",
            self.batches.clone(),
        );
        r.register(
            "weft_journal_records",
            "Commit records made durable",
            self.records.clone(),
        );
        r.register(
            "weft_journal_bytes",
            "Bytes of journal objects made durable",
            self.bytes.clone(),
        );
        r.register(
            "weft_journal_write_seconds",
            "Time to make one batch durable: an object PUT, or a log-file append and its fdatasync",
            self.write_seconds.clone(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_phases_count_by_phase() {
        let m = CommitPhases::default();
        let mut r = Registry::default();
        m.register(&mut r);
        m.observe(Phase::durable, 0.000_3);
        m.observe(Phase::durable, 0.2);
        m.observe(Phase::check, 0.000_01);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &r).unwrap();
        assert!(
            text.contains("weft_commit_phase_seconds_count{phase=\"durable\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("weft_commit_phase_seconds_count{phase=\"check\"} 1\n"),
            "{text}"
        );
        assert!(!text.contains("phase=\"queue\""), "{text}");
    }

    #[test]
    fn a_batch_counts_in_its_journal_only() {
        let m = JournalMetrics::default();
        let mut r = Registry::default();
        m.register(&mut r);
        m.writer(1).durable(3, 100, 0.000_2);
        m.writer(1).durable(2, 50, 0.01);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &r).unwrap();
        assert!(
            text.contains("weft_journal_batches_total{journal=\"1\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("weft_journal_records_total{journal=\"1\"} 5\n"),
            "{text}"
        );
        assert!(
            text.contains("weft_journal_bytes_total{journal=\"1\"} 150\n"),
            "{text}"
        );
        assert!(
            text.contains("weft_journal_write_seconds_count{journal=\"1\"} 2\n"),
            "{text}"
        );
        // 200 µs falls in the 400 µs bucket, not in the 100 µs one.
        assert!(
            text.contains("weft_journal_write_seconds_bucket{le=\"0.0001\",journal=\"1\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("weft_journal_write_seconds_bucket{le=\"0.0004\",journal=\"1\"} 1\n"),
            "{text}"
        );
        assert!(!text.contains("journal=\"0\""), "{text}");
    }
}
