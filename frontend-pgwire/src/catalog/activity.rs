//! The server's sessions ("backends"): who each is, what it runs now, and the signals
//! that reach it. Cancel requests (by pid and secret key), `pg_stat_activity`,
//! `pg_cancel_backend` and `pg_terminate_backend` all go through [`Backends`].
//!
//! A session registers its [`Backend`] once startup gives it a pid; the registry holds it
//! weakly, so a session that ends leaves the list with nothing to clean up.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use arrow::array::{
    ArrayRef, Int32Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use tokio::sync::Notify;
use weft_engine::{Clock, Timestamp};

/// What a session is doing, as `pg_stat_activity.state` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Idle,
    Active,
    IdleInTransaction,
    IdleInTransactionAborted,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::Active => "active",
            State::IdleInTransaction => "idle in transaction",
            State::IdleInTransactionAborted => "idle in transaction (aborted)",
        }
    }
}

/// What changes as the session runs statements.
#[derive(Debug, Clone)]
pub struct Now {
    pub state: State,
    /// The statement running now, or the last one.
    pub query: String,
    pub query_start: Option<Timestamp>,
    pub xact_start: Option<Timestamp>,
    pub state_change: Timestamp,
    pub application_name: String,
}

/// One session.
pub struct Backend {
    pub pid: i32,
    secret: i32,
    pub user: String,
    pub database: String,
    pub client_addr: Option<SocketAddr>,
    pub backend_start: Timestamp,
    /// Wakes the statement the session runs, which then fails with 57014.
    cancel: Arc<Notify>,
    terminate: Notify,
    terminated: AtomicBool,
    now: Mutex<Now>,
    clock: Arc<dyn Clock>,
}

impl Backend {
    fn lock(&self) -> std::sync::MutexGuard<'_, Now> {
        self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The session starts running `query`.
    pub fn begin(&self, query: &str, in_transaction: bool, application_name: &str) {
        let t = self.clock.now().latest;
        let mut now = self.lock();
        now.state = State::Active;
        now.query = query.to_string();
        now.query_start = Some(t);
        now.state_change = t;
        if !in_transaction || now.xact_start.is_none() {
            now.xact_start = Some(t);
        }
        if now.application_name != application_name {
            now.application_name = application_name.to_string();
        }
    }

    /// The statement ended; the session is idle, in a transaction block or not.
    pub fn end(&self, in_transaction: bool, failed: bool) {
        let t = self.clock.now().latest;
        let mut now = self.lock();
        now.state = match (in_transaction, failed) {
            (false, _) => State::Idle,
            (true, false) => State::IdleInTransaction,
            (true, true) => State::IdleInTransactionAborted,
        };
        if !in_transaction {
            now.xact_start = None;
        }
        now.state_change = t;
    }

    pub fn now(&self) -> Now {
        self.lock().clone()
    }

    /// Cancels the statement the session runs now.
    /// The signal a cancel request sends (a statement that waits watches it).
    pub fn cancel_signal(&self) -> Arc<Notify> {
        self.cancel.clone()
    }

    pub fn cancel(&self) {
        self.cancel.notify_waiters();
    }

    /// Ends the session: its running statement is cancelled, and the connection closes
    /// with FATAL 57P01 once it is between statements.
    pub fn terminate(&self) {
        self.terminated.store(true, Ordering::SeqCst);
        self.terminate.notify_waiters();
        self.cancel.notify_waiters();
    }

    /// Resolves once [`Self::terminate`] was called.
    pub async fn terminated(&self) {
        loop {
            let woken = self.terminate.notified();
            if self.terminated.load(Ordering::SeqCst) {
                return;
            }
            woken.await;
        }
    }
}

/// Who a new session is.
pub struct Start {
    pub pid: i32,
    pub secret: i32,
    pub user: String,
    pub database: String,
    pub client_addr: Option<SocketAddr>,
    pub application_name: String,
    pub cancel: Arc<Notify>,
}

/// Every session of the server, by pid.
pub struct Backends {
    sessions: Mutex<HashMap<i32, Weak<Backend>>>,
    clock: Arc<dyn Clock>,
}

impl Default for Backends {
    fn default() -> Self {
        Backends::with_clock(Arc::new(weft_engine::SystemClock::new(0)))
    }
}

impl Backends {
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Backends {
            sessions: Mutex::new(HashMap::new()),
            clock,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Weak<Backend>>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a session; it stays listed while the returned handle lives.
    pub fn register(&self, s: Start) -> Arc<Backend> {
        let t = self.clock.now().latest;
        let b = Arc::new(Backend {
            pid: s.pid,
            secret: s.secret,
            user: s.user,
            database: s.database,
            client_addr: s.client_addr,
            backend_start: t,
            cancel: s.cancel,
            terminate: Notify::new(),
            terminated: AtomicBool::new(false),
            now: Mutex::new(Now {
                state: State::Idle,
                query: String::new(),
                query_start: None,
                xact_start: None,
                state_change: t,
                application_name: s.application_name,
            }),
            clock: self.clock.clone(),
        });
        let mut m = self.lock();
        if m.len() >= 1024 && m.len().is_power_of_two() {
            m.retain(|_, w| w.strong_count() > 0);
        }
        m.insert(s.pid, Arc::downgrade(&b));
        b
    }

    pub fn get(&self, pid: i32) -> Option<Arc<Backend>> {
        self.lock().get(&pid).and_then(Weak::upgrade)
    }

    /// The live sessions, by pid.
    pub fn list(&self) -> Vec<Arc<Backend>> {
        let mut out: Vec<Arc<Backend>> = self.lock().values().filter_map(Weak::upgrade).collect();
        out.sort_by_key(|b| b.pid);
        out
    }

    /// A cancel request: cancels what the session runs now; a wrong secret or a finished
    /// session is ignored, as in PostgreSQL.
    pub fn cancel_request(&self, pid: i32, secret: i32) {
        match self.get(pid) {
            Some(b) if b.secret == secret => {
                tracing::info!(pid, "cancel request");
                b.cancel();
            }
            _ => tracing::info!(pid, "cancel request for no such session ignored"),
        }
    }
}

/// Whether `who` may see another session's statement and signal it: a superuser, or the
/// session's own role.
pub fn may_signal(who: &str, superuser: bool, target: &Backend) -> bool {
    superuser || target.user == who
}

fn micros(t: Timestamp) -> i64 {
    (t / 1000) as i64
}

/// `pg_stat_activity`'s columns and rows: every session, with the statements of those
/// `who` may not signal hidden as PostgreSQL hides them.
pub fn pg_stat_activity(backends: &[Arc<Backend>], who: &str, superuser: bool) -> RecordBatch {
    let ts = || DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()));
    let oid = |name: &str| {
        Field::new(name, DataType::Int32, true).with_metadata(HashMap::from([(
            arrow_pg::datatypes::PG_OID_ALIAS_KEY.to_string(),
            "oid".to_string(),
        )]))
    };
    let schema: SchemaRef = Arc::new(Schema::new(vec![
        oid("datid"),
        Field::new("datname", DataType::Utf8, true),
        Field::new("pid", DataType::Int32, true),
        Field::new("leader_pid", DataType::Int32, true),
        oid("usesysid"),
        Field::new("usename", DataType::Utf8, true),
        Field::new("application_name", DataType::Utf8, true),
        Field::new("client_addr", DataType::Utf8, true),
        Field::new("client_hostname", DataType::Utf8, true),
        Field::new("client_port", DataType::Int32, true),
        Field::new("backend_start", ts(), true),
        Field::new("xact_start", ts(), true),
        Field::new("query_start", ts(), true),
        Field::new("state_change", ts(), true),
        Field::new("wait_event_type", DataType::Utf8, true),
        Field::new("wait_event", DataType::Utf8, true),
        Field::new("state", DataType::Utf8, true),
        Field::new("backend_xid", DataType::Utf8, true),
        Field::new("backend_xmin", DataType::Utf8, true),
        Field::new("query_id", DataType::Int64, true),
        Field::new("query", DataType::Utf8, true),
        Field::new("backend_type", DataType::Utf8, true),
    ]));
    let n = backends.len();
    let text = || StringBuilder::with_capacity(n, n * 16);
    let (mut datname, mut usename, mut app, mut addr, mut state, mut query, mut btype) =
        (text(), text(), text(), text(), text(), text(), text());
    let int = || Int32Builder::with_capacity(n);
    let (mut pid, mut port) = (int(), int());
    let stamp = || TimestampMicrosecondBuilder::with_capacity(n).with_timezone("+00:00");
    let (mut bstart, mut xstart, mut qstart, mut schange) = (stamp(), stamp(), stamp(), stamp());
    for b in backends {
        let now = b.now();
        let visible = may_signal(who, superuser, b);
        datname.append_value(&b.database);
        pid.append_value(b.pid);
        usename.append_value(&b.user);
        app.append_value(&now.application_name);
        addr.append_option(b.client_addr.map(|a| a.ip().to_string()));
        port.append_option(b.client_addr.map(|a| a.port() as i32));
        bstart.append_value(micros(b.backend_start));
        if visible {
            xstart.append_option(now.xact_start.map(micros));
            qstart.append_option(now.query_start.map(micros));
            schange.append_value(micros(now.state_change));
            state.append_value(now.state.name());
            query.append_value(&now.query);
        } else {
            xstart.append_null();
            qstart.append_null();
            schange.append_null();
            state.append_null();
            query.append_value("<insufficient privilege>");
        }
        btype.append_value("client backend");
    }
    let nulls_i32 = || -> ArrayRef { Arc::new(arrow::array::Int32Array::new_null(n)) };
    let nulls_text = || -> ArrayRef { Arc::new(arrow::array::StringArray::new_null(n)) };
    let columns: Vec<ArrayRef> = vec![
        nulls_i32(),
        Arc::new(datname.finish()),
        Arc::new(pid.finish()),
        nulls_i32(),
        nulls_i32(),
        Arc::new(usename.finish()),
        Arc::new(app.finish()),
        Arc::new(addr.finish()),
        nulls_text(),
        Arc::new(port.finish()),
        Arc::new(bstart.finish()),
        Arc::new(xstart.finish()),
        Arc::new(qstart.finish()),
        Arc::new(schange.finish()),
        nulls_text(),
        nulls_text(),
        Arc::new(state.finish()),
        nulls_text(),
        nulls_text(),
        Arc::new(arrow::array::Int64Array::new_null(n)),
        Arc::new(query.finish()),
        Arc::new(btype.finish()),
    ];
    RecordBatch::try_new(schema, columns).expect("pg_stat_activity's columns match its schema")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(pid: i32, user: &str) -> Start {
        Start {
            pid,
            secret: 7,
            user: user.into(),
            database: "weft".into(),
            client_addr: None,
            application_name: "t".into(),
            cancel: Arc::new(Notify::new()),
        }
    }

    #[test]
    fn sessions_leave_the_list_when_they_end() {
        #[derive(Debug)]
        struct Fixed;
        impl Clock for Fixed {
            fn now(&self) -> weft_engine::ClockInterval {
                weft_engine::ClockInterval {
                    earliest: 5_000,
                    latest: 7_000,
                }
            }
        }
        let r = Backends::with_clock(Arc::new(Fixed));
        let a = r.register(start(1, "a"));
        let b = r.register(start(2, "b"));
        assert_eq!(r.list().len(), 2);
        drop(a);
        assert_eq!(r.list().iter().map(|b| b.pid).collect::<Vec<_>>(), vec![2]);
        b.begin("select 1", false, "t");
        assert_eq!(b.now().state, State::Active);
        assert_eq!(b.now().query_start, Some(7_000));
        b.end(true, true);
        assert_eq!(b.now().state.name(), "idle in transaction (aborted)");
        let batch = pg_stat_activity(&r.list(), "a", false);
        let q = batch.column_by_name("query").unwrap();
        let q = q
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .unwrap();
        assert_eq!(q.value(0), "<insufficient privilege>");
        let batch = pg_stat_activity(&r.list(), "b", false);
        let q = batch.column_by_name("query").unwrap();
        let q = q
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .unwrap();
        assert_eq!(q.value(0), "select 1");
    }

    #[tokio::test]
    async fn terminate_wakes_the_connection() {
        let r = Backends::default();
        let b = r.register(start(3, "a"));
        let waiter = {
            let b = b.clone();
            tokio::spawn(async move { b.terminated().await })
        };
        b.terminate();
        waiter.await.unwrap();
        // And it stays terminated for whoever asks later.
        b.terminated().await;
    }
}
