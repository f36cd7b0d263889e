//! One connection's protocol handlers, over one session.

use std::sync::Arc;

use pgwire::api::auth::StartupHandler;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::PgWireServerHandlers;

use crate::catalog::db::Db;
use crate::session::machine::Core;
use crate::wire::cancel::CancelRequests;
use crate::wire::connection::SessionHandler;
use crate::wire::startup::Startup;

/// One connection's handlers.
pub struct Handlers {
    session: Arc<SessionHandler>,
    startup: Arc<Startup>,
}

impl Handlers {
    pub fn new(db: Arc<Db>) -> Handlers {
        let core = Core::new(db.clone());
        let meta = core.exec.meta.clone();
        let cancel = core.cancel.clone();
        Handlers {
            startup: Arc::new(Startup::new(db, meta, cancel, core.clone())),
            session: Arc::new(SessionHandler { core }),
        }
    }
}

impl Handlers {
    /// The session as `pg_stat_activity` lists it (once startup has given it a pid).
    pub fn backend(&self) -> Option<Arc<crate::catalog::activity::Backend>> {
        self.session.core.backend()
    }

    /// How long the session may stay idle now: `Some` while it sits in a transaction
    /// block (open or failed), as `idle_in_transaction_session_timeout` (capped by the
    /// server's bound, which also applies when the setting is 0) says; `None` otherwise.
    pub fn idle_in_transaction_timeout(&self) -> Option<std::time::Duration> {
        self.session.core.idle_in_transaction_timeout()
    }

    /// Whether the session is inside a transaction block.
    pub fn in_transaction_block(&self) -> bool {
        self.session.core.in_transaction_block()
    }
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.session.clone()
    }
    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.session.clone()
    }
    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.startup.clone()
    }
    fn copy_handler(&self) -> Arc<impl pgwire::api::copy::CopyHandler> {
        self.session.clone()
    }
    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        Arc::new(CancelRequests(self.session.core.exec.db.clone()))
    }
}
