//! One connection's session, as the protocol handlers hold it.

use std::sync::Arc;

use crate::session::machine::Core;

/// The session behind one connection's simple, extended and COPY handlers.
pub struct SessionHandler {
    pub(crate) core: Arc<Core>,
}
