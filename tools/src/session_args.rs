//! The options of a process that serves PostgreSQL clients, shared by `weft serve` (every
//! component in one process) and `weft frontend` (pgwire and SQL only): where it listens,
//! TLS and authentication, and the bounds on what a client may use.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use weft_frontend_pgwire::auth::AuthMode;
use weft_frontend_pgwire::TxnLimits;

#[derive(Args, Debug)]
pub struct SessionArgs {
    /// Address to listen on for PostgreSQL clients.
    #[arg(long, default_value = "127.0.0.1:5432")]
    pub listen: String,
    /// Clock error bound in microseconds.
    #[arg(long, default_value_t = 0)]
    pub clock_error_us: u64,
    /// Most rows one transaction may modify.
    #[arg(long, default_value_t = TxnLimits::default().rows_max)]
    pub txn_rows_max: usize,
    /// Most bytes one transaction may modify.
    #[arg(long, default_value_t = TxnLimits::default().bytes_max)]
    pub txn_bytes_max: usize,
    /// Longest a transaction may stay open, in seconds.
    #[arg(long, default_value_t = 300)]
    pub txn_duration_max_s: u64,
    /// How far back reads can go (SET weft.as_of), in seconds: compaction keeps every
    /// version a read at or after now minus this can see. At least --txn-duration-max-s.
    #[arg(long, default_value_t = 3600)]
    pub version_retention_s: u64,
    /// PEM certificate chain for TLS (with --tls-key). Without one, a self-signed
    /// certificate is made at start.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Refuse TLS (clients with sslmode=require then cannot connect).
    #[arg(long, conflicts_with = "tls_cert")]
    pub no_tls: bool,
    /// Refuse every connection that has not started TLS (FATAL 28000), loopback ones
    /// included: plaintext never carries a password or a row.
    #[arg(long, conflicts_with = "no_tls")]
    pub require_tls: bool,
    /// End a connection that has lived this long (seconds, less up to a tenth at random)
    /// once it is outside a transaction block, with FATAL 57P01, as DSQL ends connections
    /// after an hour; pools open a new one. 0: connections live as long as their clients.
    #[arg(long, default_value_t = 0)]
    pub connection_age_max_s: u64,
    /// Who must give a password (SCRAM-SHA-256): `default` trusts loopback connections
    /// and asks everyone else; `scram` asks everyone; `trust` asks no one.
    #[arg(long, default_value = "default", value_parser = AuthMode::parse)]
    pub auth: AuthMode,
    /// A role configured at start, `NAME:PASSWORD` (repeatable; or WEFT_USERS, comma
    /// separated). Roles made with CREATE USER ... PASSWORD work as well.
    #[arg(long = "user", env = "WEFT_USERS", value_delimiter = ',')]
    pub users: Vec<String>,
    /// Longest a session may sit idle inside a transaction block before it is ended
    /// (25P03), in milliseconds; `SET idle_in_transaction_session_timeout` may lower it.
    /// An abandoned transaction would otherwise hold compaction back.
    #[arg(long, default_value_t = 300_000)]
    pub idle_in_transaction_session_timeout_ms: u64,
    /// The most client connections served at once; one more is refused with FATAL 53300
    /// ("sorry, too many clients already"). Cancel requests are not refused.
    #[arg(long, default_value_t = weft_frontend_pgwire::catalog::db::MAX_CONNECTIONS_DEFAULT)]
    pub max_connections: usize,
    /// The largest message a client may send once authenticated (bytes); a longer one ends
    /// its connection with FATAL 08P01 before it is read. Before authentication, a message
    /// may have at most 65539 bytes.
    #[arg(long, default_value_t = weft_frontend_pgwire::catalog::db::MESSAGE_BYTES_MAX_DEFAULT)]
    pub message_bytes_max: usize,
    /// The most memory all queries together may hold (bytes): sorts, aggregates and joins
    /// reserve from it (sorts and aggregates spill to disk at their share), and so do
    /// results held before they are sent. A query that needs more gets 53200.
    #[arg(long, default_value_t = weft_frontend_pgwire::catalog::memory::MEMORY_MAX_DEFAULT)]
    pub memory_max: usize,
    /// The most memory one query may hold (bytes; at most --memory-max).
    #[arg(long, default_value_t = weft_frontend_pgwire::catalog::memory::QUERY_MEMORY_MAX_DEFAULT)]
    pub query_memory_max: usize,
    /// Serve metrics in Prometheus's text format at http://ADDR/metrics (commits, errors
    /// by SQLSTATE, latency histograms, journal writes, lags, cache hits, sessions). Off
    /// unless given; bind it to a private address, as it answers without authentication.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
}

impl SessionArgs {
    pub fn limits(&self) -> TxnLimits {
        TxnLimits {
            rows_max: self.txn_rows_max,
            bytes_max: self.txn_bytes_max,
            duration_max: Duration::from_secs(self.txn_duration_max_s),
        }
    }

    pub fn memory(&self) -> weft_frontend_pgwire::catalog::memory::MemoryLimits {
        weft_frontend_pgwire::catalog::memory::MemoryLimits {
            max: self.memory_max,
            query_max: self.query_memory_max.min(self.memory_max),
        }
    }

    pub fn auth_description(&self) -> &'static str {
        match self.auth {
            AuthMode::Default => "loopback trusted, others scram-sha-256",
            AuthMode::Scram => "scram-sha-256",
            AuthMode::Trust => "trust",
        }
    }

    /// TLS as the arguments ask: their files, none, or a self-signed certificate.
    pub fn tls(&self) -> anyhow::Result<Option<weft_frontend_pgwire::tls::TlsAcceptor>> {
        if self.no_tls {
            return Ok(None);
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            return Ok(Some(
                weft_frontend_pgwire::tls::from_files(cert, key).map_err(anyhow::Error::msg)?,
            ));
        }
        let mut names = vec!["localhost".to_string()];
        if let Some(host) = self
            .listen
            .rsplit_once(':')
            .map(|(h, _)| h.trim_matches(['[', ']']))
        {
            names.push(host.to_string());
        }
        Ok(Some(
            weft_frontend_pgwire::tls::self_signed(names).map_err(anyhow::Error::msg)?,
        ))
    }
}
