//! What the frontend counts, for a node's metrics endpoint: statements by kind with their
//! latency, statement errors and failed commits by SQLSTATE, commits with their latency.
//! Open sessions and the fast paths' counters are read from [`crate::Db`] at scrape time.
//!
//! A statement's latency runs from its start to its answer (for a streamed result, to its
//! first batch: the rest is the client's pace); a commit's from COMMIT to its journal
//! batch being durable.

use datafusion::sql::sqlparser::ast::Statement;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use weft_journal::metrics::latency_histogram;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SqlstateLabel {
    pub sqlstate: &'static str,
}

/// A statement's kind, as the metrics label it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SELECT, VALUES, TABLE, SHOW, EXPLAIN, COPY TO: answers rows and writes nothing.
    Read,
    /// INSERT, UPDATE, DELETE, MERGE, COPY FROM.
    Write,
    /// BEGIN, COMMIT, ROLLBACK and the other transaction statements.
    Transaction,
    /// DDL, SET and everything else.
    Other,
}

impl Kind {
    pub fn of(stmt: &Statement) -> Kind {
        match stmt {
            Statement::Query(_)
            | Statement::Copy { to: true, .. }
            | Statement::ShowVariable { .. }
            | Statement::ShowVariables { .. }
            | Statement::Explain { .. } => Kind::Read,
            Statement::Insert(_)
            | Statement::Update { .. }
            | Statement::Delete(_)
            | Statement::Merge { .. }
            | Statement::Copy { .. } => Kind::Write,
            Statement::StartTransaction { .. }
            | Statement::Commit { .. }
            | Statement::Rollback { .. }
            | Statement::Savepoint { .. }
            | Statement::ReleaseSavepoint { .. } => Kind::Transaction,
            _ => Kind::Other,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Read => "read",
            Kind::Write => "write",
            Kind::Transaction => "transaction",
            Kind::Other => "other",
        }
    }

    const ALL: [Kind; 4] = [Kind::Read, Kind::Write, Kind::Transaction, Kind::Other];
}

/// The frontend's counters, shared by every session of a node.
#[derive(Debug, Clone)]
pub struct FrontendMetrics {
    statements: Family<KindLabel, Counter>,
    statement_seconds: Family<KindLabel, Histogram, fn() -> Histogram>,
    /// The handles of each kind, in [`Kind::ALL`]'s order, taken once: a statement
    /// updates them without a label lookup.
    by_kind: [(Counter, Histogram); 4],
    statement_errors: Family<SqlstateLabel, Counter>,
    commits: Counter,
    commit_seconds: Histogram,
    commit_failures: Family<SqlstateLabel, Counter>,
}

impl Default for FrontendMetrics {
    fn default() -> Self {
        let statements = Family::<KindLabel, Counter>::default();
        let statement_seconds =
            Family::<KindLabel, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        let by_kind = Kind::ALL.map(|k| {
            let l = KindLabel { kind: k.label() };
            (
                statements.get_or_create(&l).clone(),
                statement_seconds.get_or_create(&l).clone(),
            )
        });
        FrontendMetrics {
            statements,
            statement_seconds,
            by_kind,
            statement_errors: Family::default(),
            commits: Counter::default(),
            commit_seconds: latency_histogram(),
            commit_failures: Family::default(),
        }
    }
}

impl FrontendMetrics {
    /// Counts one statement of `kind` that took `seconds`, and its error if it failed.
    pub fn statement(&self, kind: Kind, seconds: f64, error: Option<&'static str>) {
        let (count, latency) = &self.by_kind[kind as usize];
        count.inc();
        latency.observe(seconds);
        if let Some(sqlstate) = error {
            self.error(sqlstate);
        }
    }

    /// Counts an error answered before its statement ran (a syntax error, a failed Parse).
    pub fn error(&self, sqlstate: &'static str) {
        self.statement_errors
            .get_or_create(&SqlstateLabel { sqlstate })
            .inc();
    }

    /// Counts one commit that took `seconds`: done, or refused with `error`.
    pub fn commit(&self, seconds: f64, error: Option<&'static str>) {
        match error {
            None => {
                self.commits.inc();
                self.commit_seconds.observe(seconds);
            }
            Some(sqlstate) => {
                self.commit_failures
                    .get_or_create(&SqlstateLabel { sqlstate })
                    .inc();
            }
        }
    }

    pub fn register(&self, r: &mut Registry) {
        r.register(
            "weft_statements",
            "Statements run, by kind (read, write, transaction, other)",
            self.statements.clone(),
        );
        r.register(
            "weft_statement_seconds",
            "Time from a statement's start to its answer (a streamed result: its first batch)",
            self.statement_seconds.clone(),
        );
        r.register(
            "weft_statement_errors",
            "Statements that failed, by SQLSTATE (syntax errors and failed Parse messages included)",
            self.statement_errors.clone(),
        );
        r.register(
            "weft_commits",
            "Transactions that wrote and committed (their commit durable in a journal)",
            self.commits.clone(),
        );
        r.register(
            "weft_commit_seconds",
            "Time from a writing transaction's COMMIT to its journal batch being durable, for commits that succeeded",
            self.commit_seconds.clone(),
        );
        r.register(
            "weft_commit_failures",
            "Writing transactions whose commit was refused or left undecided, by SQLSTATE (40001: a conflict; 08007: outcome unknown)",
            self.commit_failures.clone(),
        );
    }
}
