//! Startup: the startup packet's parameters and options, the process id and cancel key,
//! authentication, and the parameters sent back.

use std::fmt::Debug;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_trait::async_trait;
use futures::sink::{Sink, SinkExt};
use pgwire::api::auth::{
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata,
    DefaultServerParameterProvider, StartupHandler,
};
use pgwire::api::ClientInfo;
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::startup::SecretKey;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use crate::catalog::db::Db;
use crate::error::{codes, SqlError, SqlResult};
use crate::session::machine::Core;

/// The parameters sent at the end of startup, as PostgreSQL 15 sends them.
pub(crate) fn server_parameters() -> DefaultServerParameterProvider {
    let mut params = DefaultServerParameterProvider::default();
    params.server_version = "15.0".into();
    params.time_zone = "UTC".into();
    params.date_style = "ISO, MDY".into();
    params
}

/// Gives a connection its process id (and cancel key), and the session its identity.
pub(crate) struct SessionPids {
    db: Arc<Db>,
    meta: Arc<crate::catalog::session_meta::SessionMeta>,
    cancel: Arc<tokio::sync::Notify>,
    core: Arc<Core>,
}

impl pgwire::api::PidSecretKeyGenerator for SessionPids {
    fn generate(&self, client: &dyn ClientInfo) -> (i32, SecretKey) {
        let pid = (self.db.next_pid.fetch_add(1, Ordering::Relaxed) % (i32::MAX as u64)) as i32;
        let meta = client.metadata();
        let user = meta
            .get(pgwire::api::METADATA_USER)
            .cloned()
            .unwrap_or_else(|| crate::catalog::roles::BOOTSTRAP_ROLE_NAME.to_string());
        let database = meta
            .get(pgwire::api::METADATA_DATABASE)
            .cloned()
            .unwrap_or_else(|| user.clone());
        self.meta
            .set_identity(crate::catalog::session_meta::Identity {
                user,
                database,
                pid,
            });
        let secret = i32::from_le_bytes(self.db.entropy.bytes());
        let backend = self.db.backends.register(crate::catalog::activity::Start {
            pid,
            secret,
            user: self.meta.identity().user,
            database: self.meta.identity().database,
            client_addr: Some(client.socket_addr()),
            application_name: meta.get("application_name").cloned().unwrap_or_default(),
            cancel: self.cancel.clone(),
        });
        let _ = self.core.backend.set(backend);
        self.core.apply_startup_settings(meta);
        (pid, SecretKey::I32(secret))
    }
}

/// Startup: trusted connections (loopback ones by default) go straight in; the others
/// authenticate with SCRAM-SHA-256 (see [`crate::catalog::roles`]).
pub struct Startup {
    db: Arc<Db>,
    pids: Arc<SessionPids>,
    sasl: pgwire::api::auth::sasl::SASLAuthStartupHandler<DefaultServerParameterProvider>,
    authenticating: std::sync::atomic::AtomicBool,
    /// Authentication failed: the error was sent and the connection closed; whatever the
    /// client still sends is ignored.
    failed: std::sync::atomic::AtomicBool,
}

impl Startup {
    pub(crate) fn new(
        db: Arc<Db>,
        meta: Arc<crate::catalog::session_meta::SessionMeta>,
        cancel: Arc<tokio::sync::Notify>,
        core: Arc<Core>,
    ) -> Startup {
        let pids = Arc::new(SessionPids {
            db: db.clone(),
            meta,
            cancel,
            core,
        });
        let mut scram = pgwire::api::auth::sasl::scram::ScramAuth::new(Arc::new(
            crate::wire::auth::WeftAuthSource { db: db.clone() },
        ));
        scram.set_iterations(crate::catalog::auth::SCRAM_ITERATIONS);
        let sasl =
            pgwire::api::auth::sasl::SASLAuthStartupHandler::new(Arc::new(server_parameters()))
                .with_scram(scram)
                .with_pid_secret_key_generator(pids.clone());
        Startup {
            db,
            pids,
            sasl,
            authenticating: Default::default(),
            failed: Default::default(),
        }
    }
}

impl Startup {
    /// The database the connection names (its user's name when it names none), which the
    /// session works in from now on. Checked before authentication, so a client learns
    /// that a database does not exist before it proves who it is (PostgreSQL says so
    /// after).
    async fn choose_database(&self, startup: &pgwire::messages::startup::Startup) -> SqlResult<()> {
        let name = startup
            .parameters
            .get("database")
            .or_else(|| startup.parameters.get("user"))
            .cloned()
            .unwrap_or_else(|| crate::catalog::databases::DEFAULT_DATABASE.to_string());
        let read_ts = self.db.adjudicator.read_ts();
        match crate::catalog::databases::lookup(&self.db, None, read_ts, &name).await? {
            Some(d) => {
                self.pids.meta.set_database(d.tables);
                Ok(())
            }
            None => Err(SqlError::new(
                codes::INVALID_CATALOG_NAME,
                format!("database \"{name}\" does not exist"),
            )),
        }
    }
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if self.failed.load(Ordering::Relaxed) {
            return Ok(());
        }
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                if let Err(e) = self.choose_database(startup).await {
                    self.failed.store(true, Ordering::Relaxed);
                    let info = ErrorInfo::new("FATAL".into(), e.code.to_string(), e.message);
                    client
                        .send(PgWireBackendMessage::ErrorResponse(info.into()))
                        .await?;
                    client.flush().await?;
                    let _ = client.close().await;
                    return Ok(());
                }
                let peer = client.socket_addr().ip();
                if self.db.auth().mode.requires_password(peer) {
                    self.authenticating.store(true, Ordering::Relaxed);
                    return self.sasl.on_startup(client, message).await;
                }
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                let (pid, key) = pgwire::api::PidSecretKeyGenerator::generate(&*self.pids, client);
                client.set_pid_and_secret_key(pid, key);
                finish_authentication(client, &server_parameters()).await?;
            }
            PgWireFrontendMessage::PasswordMessageFamily(_)
                if self.authenticating.load(Ordering::Relaxed) =>
            {
                if let Err(e) = self.sasl.on_startup(client, message).await {
                    // pgwire's own error path would mark the connection ready for queries
                    // before closing it; a failed login must never get that far.
                    self.failed.store(true, Ordering::Relaxed);
                    let user = client
                        .metadata()
                        .get(pgwire::api::METADATA_USER)
                        .cloned()
                        .unwrap_or_default();
                    tracing::info!(user, peer = %client.socket_addr(), error = %e, "authentication failed");
                    let info = ErrorInfo::new(
                        "FATAL".into(),
                        "28P01".into(),
                        format!("password authentication failed for user \"{user}\""),
                    );
                    client
                        .send(PgWireBackendMessage::ErrorResponse(info.into()))
                        .await?;
                    client.flush().await?;
                    let _ = client.close().await;
                }
            }
            _ => {}
        }
        Ok(())
    }
}
