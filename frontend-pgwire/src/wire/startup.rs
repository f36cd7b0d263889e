//! Startup: the startup packet's parameters and options, the process id and cancel key,
//! authentication, and the parameters sent back.

use std::fmt::Debug;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use futures::sink::{Sink, SinkExt};
use pgwire::api::auth::{
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata,
    DefaultServerParameterProvider, StartupHandler,
};
use pgwire::api::ClientInfo;
use pgwire::api::PgWireConnectionState;
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::startup::{Authentication, PasswordMessageFamily, SecretKey};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use crate::catalog::auth::ScramSecret;
use crate::catalog::db::Db;
use crate::error::{codes, SqlError, SqlResult};
use crate::session::machine::Core;
use crate::wire::auth::Method;
use crate::wire::decode_panics::decode;
use crate::wire::scram::ScramError;

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

/// Where a login stands.
enum Phase {
    /// Before the startup packet, or a trusted connection.
    Start,
    /// AuthenticationSASL sent: waiting for the client's first SCRAM message.
    ScramStarted(ScramSecret),
    /// The server's first message sent: waiting for the client's proof.
    ScramProving(Box<crate::wire::scram::Pending>),
    /// AuthenticationCleartextPassword sent: waiting for a token.
    Token,
    /// Logged in, or refused (the error sent and the connection closed): whatever the
    /// client still sends is ignored.
    Over,
}

/// Startup: trusted connections (loopback ones by default) go straight in; the others
/// authenticate with SCRAM-SHA-256 against the role's verifier, or, for a role without a
/// password, with a token given as the password (see [`crate::wire::auth`]).
pub struct Startup {
    db: Arc<Db>,
    pids: Arc<SessionPids>,
    phase: std::sync::Mutex<Phase>,
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
        Startup {
            db,
            pids,
            phase: std::sync::Mutex::new(Phase::Start),
        }
    }

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_phase(&self, phase: Phase) {
        *self.phase() = phase;
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

    /// Refuses the login: FATAL `code`, then the connection closes.
    async fn refuse<C>(&self, client: &mut C, code: &str, message: String) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.set_phase(Phase::Over);
        let info = ErrorInfo::new("FATAL".into(), code.to_string(), message);
        client
            .send(PgWireBackendMessage::ErrorResponse(info.into()))
            .await?;
        client.flush().await?;
        let _ = client.close().await;
        Ok(())
    }

    /// A failed login: logged with its reason, answered as PostgreSQL answers a wrong
    /// password (the client learns nothing more).
    async fn wrong_password<C>(&self, client: &mut C, why: &str) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let user = user_of(client);
        tracing::info!(user, peer = %client.socket_addr(), why, "authentication failed");
        self.refuse(
            client,
            "28P01",
            format!("password authentication failed for user \"{user}\""),
        )
        .await
    }

    /// Logged in: the process id and cancel key, the parameters, ReadyForQuery.
    async fn finish<C>(&self, client: &mut C) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let Err(e) = self.may_connect(client).await {
            return self.refuse(client, e.code, e.message).await;
        }
        self.set_phase(Phase::Over);
        let (pid, key) = pgwire::api::PidSecretKeyGenerator::generate(&*self.pids, client);
        client.set_pid_and_secret_key(pid, key);
        finish_authentication(client, &server_parameters()).await
    }

    /// 42501 unless the role may CONNECT to the database it names (PUBLIC may, unless
    /// REVOKE took it away). A role that was never created (a trusted loopback login) and a
    /// superuser always may.
    async fn may_connect<C: ClientInfo>(&self, client: &C) -> SqlResult<()> {
        let user = user_of(client);
        let database = client
            .metadata()
            .get(pgwire::api::METADATA_DATABASE)
            .cloned()
            .unwrap_or_else(|| user.clone());
        let read_ts = self.db.adjudicator.read_ts();
        if crate::catalog::roles::always_superuser(&self.db, &user)
            || !crate::catalog::roles::exists(&self.db, None, read_ts, &user).await?
        {
            return Ok(());
        }
        let Some(def) =
            crate::catalog::databases::lookup(&self.db, None, read_ts, &database).await?
        else {
            return Ok(());
        };
        let acting = crate::catalog::grants::acting(&self.db, None, read_ts, &user).await?;
        let stored = crate::catalog::grants::parse_acl(def.acl.as_ref())?;
        acting
            .require_any(
                crate::catalog::acl::ObjectKind::Database,
                "database",
                &database,
                crate::catalog::roles::BOOTSTRAP_ROLE_NAME,
                stored.as_deref(),
                crate::catalog::acl::CONNECT,
            )
            .map_err(|e| e.with_detail("User does not have CONNECT privilege."))
    }

    /// The startup packet of a connection that must authenticate: the method is the role's.
    async fn begin_authentication<C>(&self, client: &mut C) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        client.set_state(PgWireConnectionState::AuthenticationInProgress);
        let user = user_of(client);
        match crate::wire::auth::method(&self.db, &user).await {
            Method::Scram(secret) => {
                self.set_phase(Phase::ScramStarted(secret));
                client
                    .send(PgWireBackendMessage::Authentication(Authentication::SASL(
                        vec![SCRAM_SHA_256.to_string()],
                    )))
                    .await?;
            }
            Method::Token => {
                // A token is a bearer secret: it travels only inside TLS, or on loopback.
                if !client.is_secure() && !client.socket_addr().ip().is_loopback() {
                    return self
                        .refuse(
                            client,
                            codes::INVALID_AUTHORIZATION,
                            format!(
                                "role \"{user}\" logs in with a token (it has no password), \
                                 and tokens are accepted only over TLS: connect with \
                                 sslmode=require"
                            ),
                        )
                        .await;
                }
                self.set_phase(Phase::Token);
                client
                    .send(PgWireBackendMessage::Authentication(
                        Authentication::CleartextPassword,
                    ))
                    .await?;
            }
        }
        client.flush().await?;
        Ok(())
    }

    /// A password message: the next step of the login under way.
    async fn on_password<C>(
        &self,
        client: &mut C,
        message: PasswordMessageFamily,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let phase = std::mem::replace(&mut *self.phase(), Phase::Over);
        match phase {
            Phase::ScramStarted(secret) => {
                let first =
                    match decode(|| message.into_sasl_initial_response()).and_then(Result::ok) {
                        Some(m) if m.auth_method == SCRAM_SHA_256 => m.data.unwrap_or_default(),
                        Some(m) => {
                            return self
                                .refuse(
                                    client,
                                    codes::PROTOCOL_VIOLATION,
                                    format!(
                                        "SASL authentication mechanism {} is not supported: use \
                                     {SCRAM_SHA_256}",
                                        m.auth_method
                                    ),
                                )
                                .await
                        }
                        None => return self.malformed(client).await,
                    };
                let nonce =
                    base64::engine::general_purpose::STANDARD.encode(self.db.entropy.bytes::<18>());
                match crate::wire::scram::client_first(&first, &secret, &nonce) {
                    Ok((reply, pending)) => {
                        self.set_phase(Phase::ScramProving(Box::new(pending)));
                        client
                            .send(PgWireBackendMessage::Authentication(
                                Authentication::SASLContinue(reply.into()),
                            ))
                            .await?;
                        client.flush().await?;
                        Ok(())
                    }
                    Err(e) => self.scram_failed(client, e).await,
                }
            }
            Phase::ScramProving(pending) => {
                let Some(Ok(last)) = decode(|| message.into_sasl_response()) else {
                    return self.malformed(client).await;
                };
                match pending.client_final(&last.data) {
                    Ok(reply) => {
                        client
                            .send(PgWireBackendMessage::Authentication(
                                Authentication::SASLFinal(reply.into()),
                            ))
                            .await?;
                        self.finish(client).await
                    }
                    Err(e) => self.scram_failed(client, e).await,
                }
            }
            Phase::Token => {
                let Some(Ok(password)) = decode(|| message.into_password()) else {
                    return self.malformed(client).await;
                };
                let user = user_of(client);
                let checked = match self.db.auth().tokens.as_ref() {
                    Some(t) => t
                        .verify(&password.password, &user)
                        .map_err(|e| e.to_string()),
                    None => Err("this node has no token key".to_string()),
                };
                match checked {
                    Ok(()) if crate::wire::auth::may_log_in(&self.db, &user).await => {
                        self.finish(client).await
                    }
                    Ok(()) => {
                        self.wrong_password(client, "the token's role may not log in")
                            .await
                    }
                    Err(why) => self.wrong_password(client, &why).await,
                }
            }
            Phase::Start | Phase::Over => Ok(()),
        }
    }

    async fn malformed<C>(&self, client: &mut C) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.refuse(
            client,
            codes::PROTOCOL_VIOLATION,
            "malformed authentication message".into(),
        )
        .await
    }

    async fn scram_failed<C>(&self, client: &mut C, e: ScramError) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match e {
            ScramError::Malformed(what) => {
                self.refuse(
                    client,
                    codes::PROTOCOL_VIOLATION,
                    format!("malformed SCRAM message: {what}"),
                )
                .await
            }
            ScramError::WrongProof => self.wrong_password(client, "wrong SCRAM proof").await,
        }
    }
}

const SCRAM_SHA_256: &str = "SCRAM-SHA-256";

fn user_of<C: ClientInfo>(client: &C) -> String {
    client
        .metadata()
        .get(pgwire::api::METADATA_USER)
        .cloned()
        .unwrap_or_default()
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
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                if !matches!(*self.phase(), Phase::Start) {
                    return Ok(());
                }
                if let Err(e) = self.choose_database(startup).await {
                    return self.refuse(client, e.code, e.message).await;
                }
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                let peer = client.socket_addr().ip();
                if self.db.auth().mode.requires_password(peer) {
                    return self.begin_authentication(client).await;
                }
                self.finish(client).await?;
            }
            PgWireFrontendMessage::PasswordMessageFamily(m) => {
                self.on_password(client, m).await?;
            }
            _ => {}
        }
        Ok(())
    }
}
