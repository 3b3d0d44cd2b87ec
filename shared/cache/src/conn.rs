//! The one multiplexed connection (standalone or cluster) and how it is built.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{
    Cmd, ConnectionAddr, ErrorKind, IntoConnectionInfo, Pipeline, RedisConnectionInfo, RedisError,
    RedisFuture, ServerErrorKind, TlsCertificates, Value,
};

use crate::{CacheError, RedisEndpoint};

/// A cheap-to-clone handle on the process's single Redis connection.
#[derive(Clone)]
pub(crate) enum Conn {
    /// Standalone / replication group primary: one multiplexed connection that reconnects itself.
    Single(ConnectionManager),
    /// Cluster protocol: one multiplexed connection per node, routed by slot.
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// What is needed to (re)build a connection.
#[derive(Clone)]
pub(crate) struct ConnSettings {
    pub(crate) endpoint: RedisEndpoint,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    /// PEM bytes of trusted CAs, read once at start-up.
    pub(crate) ca_pem: Option<Vec<u8>>,
    pub(crate) connect_timeout: Duration,
    pub(crate) op_timeout: Duration,
}

/// Builds a connection without waiting for it: it connects in the background / on first use.
///
/// Must run inside a Tokio runtime (the connection tasks are spawned on it).
pub(crate) fn build(s: &ConnSettings) -> Result<Conn, CacheError> {
    if s.endpoint.tls {
        // The SDK and this crate use aws-lc-rs; installing it as the process default keeps rustls
        // from panicking if some other dependency also enabled ring. Already installed is fine.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
    let addr = if s.endpoint.tls {
        ConnectionAddr::TcpTls {
            host: s.endpoint.host.clone(),
            port: s.endpoint.port,
            insecure: false,
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(s.endpoint.host.clone(), s.endpoint.port)
    };
    let mut settings = RedisConnectionInfo::default().set_db(s.endpoint.db);
    if let Some(u) = &s.username {
        settings = settings.set_username(u);
    }
    if let Some(p) = &s.password {
        settings = settings.set_password(p);
    }
    let info = addr.into_connection_info()?.set_redis_settings(settings);
    let certs = || TlsCertificates {
        client_tls: None,
        root_cert: s.ca_pem.clone(),
    };

    if s.endpoint.cluster {
        let mut builder = ClusterClientBuilder::new(vec![info])
            .connection_timeout(s.connect_timeout)
            .response_timeout(s.op_timeout)
            .retries(2);
        if let Some(u) = &s.username {
            builder = builder.username(u);
        }
        if let Some(p) = &s.password {
            builder = builder.password(p);
        }
        if s.endpoint.tls {
            builder = builder.tls(redis::TlsMode::Secure);
            if s.ca_pem.is_some() {
                builder = builder.certs(certs());
            }
        }
        let client = builder.build()?;
        let config = ClusterConfig::new()
            .set_connection_timeout(s.connect_timeout)
            .set_response_timeout(s.op_timeout);
        Ok(Conn::Cluster(
            client.get_pending_async_connection_with_config(config),
        ))
    } else {
        let client = if s.endpoint.tls && s.ca_pem.is_some() {
            redis::Client::build_with_tls(info, certs())?
        } else {
            redis::Client::open(info)?
        };
        // Few, short retries: the circuit breaker paces reconnection during a long outage, and
        // every operation is bounded by its own timeout anyway.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(s.connect_timeout))
            .set_response_timeout(None)
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(Duration::from_millis(200));
        Ok(Conn::Single(ConnectionManager::new_lazy_with_config(
            client, config,
        )?))
    }
}

/// Sends a PING, which also drives a lazy connection to completion.
pub(crate) async fn ping(conn: &mut Conn) -> Result<(), RedisError> {
    let reply: String = redis::cmd("PING").query_async(conn).await?;
    if reply == "PONG" {
        Ok(())
    } else {
        Err(RedisError::from((
            ErrorKind::UnexpectedReturnType,
            "unexpected PING reply",
            reply,
        )))
    }
}

/// True when the error says Redis is unreachable or unhealthy (what the breaker counts), as
/// opposed to a problem with one particular request.
pub(crate) fn is_availability_error(e: &RedisError) -> bool {
    !matches!(
        e.kind(),
        ErrorKind::UnexpectedReturnType
            | ErrorKind::Extension
            | ErrorKind::Server(
                ServerErrorKind::ResponseError
                    | ServerErrorKind::ExecAbort
                    | ServerErrorKind::NoScript
                    | ServerErrorKind::CrossSlot
                    | ServerErrorKind::NotBusy
                    | ServerErrorKind::NoSub
            )
    )
}
