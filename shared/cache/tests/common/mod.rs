//! Shared test helpers: private redis-server / cluster / moto processes with Drop guards.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cache::{CacheConfig, CacheService};

/// The shared Redis (REDIS_URL overrides).
pub fn shared_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A key prefix no other test (or person) uses.
pub fn unique_prefix(name: &str) -> String {
    format!("test-cache:{name}:{}:", uuid::Uuid::new_v4().simple())
}

/// Config for the shared Redis with a generous timeout (the machine is shared and busy).
pub fn shared_config(name: &str) -> CacheConfig {
    let mut c = CacheConfig::from_url(&shared_url()).expect("valid REDIS_URL");
    c.key_prefix = unique_prefix(name);
    c.op_timeout = Duration::from_secs(2);
    c.connect_timeout = Duration::from_secs(2);
    c
}

/// Service on the shared Redis with a unique prefix.
pub async fn shared_service(name: &str) -> CacheService {
    CacheService::connect(shared_config(name))
        .await
        .expect("connect")
}

/// Raw connection to the shared Redis, for checks behind the service's back.
pub async fn raw_shared() -> redis::aio::MultiplexedConnection {
    redis::Client::open(shared_url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("raw connection")
}

/// Deletes every key under `prefix` on the shared Redis (SCAN, never KEYS / FLUSHDB).
pub async fn cleanup_prefix(prefix: &str) {
    let mut c = raw_shared().await;
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut c)
            .await
            .expect("scan");
        if !keys.is_empty() {
            let _: u64 = redis::cmd("UNLINK")
                .arg(&keys)
                .query_async(&mut c)
                .await
                .expect("unlink");
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
}

/// A port that is free now (and whose cluster bus port, +10000, is free too).
pub fn free_port() -> u16 {
    for _ in 0..200 {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        drop(l);
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
    panic!("no free port pair found");
}

/// Sends PING over a plain socket; true on +PONG (or a NOAUTH error: the server is up).
pub fn tcp_ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}").parse().expect("addr"),
        Duration::from_millis(200),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(n) if n > 0 => buf[..n].starts_with(b"+PONG") || buf[..n].starts_with(b"-NOAUTH"),
        _ => false,
    }
}

/// Waits until `check` is true, polling; panics after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// A private throwaway redis-server, killed on drop.
pub struct RedisServer {
    /// The port clients use (plain TCP, or TLS for a TLS-only server).
    pub port: u16,
    tls_only: bool,
    args: Vec<String>,
    dir: PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts `redis-server --port <port> --save "" --appendonly no <extra>` and waits for it.
    pub fn start(port: u16, extra: &[&str]) -> Self {
        Self::launch(port, false, extra)
    }

    /// Starts a TLS-only server (`--port 0 --tls-port <port>`); `extra` holds the cert options.
    pub fn start_tls(port: u16, extra: &[&str]) -> Self {
        Self::launch(port, true, extra)
    }

    fn launch(port: u16, tls_only: bool, extra: &[&str]) -> Self {
        let mut s = RedisServer {
            port,
            tls_only,
            args: extra.iter().map(|s| (*s).to_owned()).collect(),
            dir: temp_dir("redis"),
            child: None,
        };
        s.spawn();
        s
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn spawn(&mut self) {
        let plain_port = if self.tls_only { 0 } else { self.port };
        let mut cmd = Command::new("/usr/bin/redis-server");
        cmd.arg("--port")
            .arg(plain_port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--save")
            .arg("")
            .arg("--appendonly")
            .arg("no")
            .arg("--dir")
            .arg(&self.dir);
        if self.tls_only {
            cmd.arg("--tls-port").arg(self.port.to_string());
        }
        cmd.args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().expect("spawn redis-server");
        self.child = Some(child);
        let port = self.port;
        if self.tls_only {
            wait_until("TLS redis-server to start", Duration::from_secs(15), || {
                TcpStream::connect(("127.0.0.1", port)).is_ok()
            });
        } else {
            wait_until("redis-server to start", Duration::from_secs(15), || {
                tcp_ping(port)
            });
        }
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A private 3-primary Redis Cluster, killed on drop.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
    cli_args: Vec<String>,
}

fn cli_args(tls_dir: Option<&Path>, password: Option<&str>) -> Vec<String> {
    let mut a = Vec::new();
    if let Some(dir) = tls_dir {
        a.push("--tls".to_owned());
        a.push("--cacert".to_owned());
        a.push(dir.join("ca.pem").display().to_string());
    }
    if let Some(pw) = password {
        a.push("--no-auth-warning".to_owned());
        a.push("-a".to_owned());
        a.push(pw.to_owned());
    }
    a
}

impl RedisCluster {
    /// Plain-TCP cluster without AUTH.
    pub fn start() -> Self {
        Self::start_with(None, None)
    }

    /// Cluster whose nodes speak only TLS (client and bus) with certificates from `tls_dir`
    /// (`server.pem`, `server.key`, `ca.pem`), optionally requiring `password`.
    pub fn start_with(tls_dir: Option<&Path>, password: Option<&str>) -> Self {
        let mut nodes = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let conf = format!("nodes-{port}.conf");
            let mut args: Vec<String> = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                &conf,
                "--cluster-node-timeout",
                "5000",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
            if let Some(pw) = password {
                args.extend(["--requirepass", pw, "--masterauth", pw].map(str::to_owned));
            }
            let node = match tls_dir {
                Some(dir) => {
                    args.extend([
                        "--tls-cluster".to_owned(),
                        "yes".to_owned(),
                        "--tls-replication".to_owned(),
                        "yes".to_owned(),
                    ]);
                    args.extend(tls_args(dir));
                    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                    RedisServer::start_tls(port, &refs)
                }
                None => {
                    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                    RedisServer::start(port, &refs)
                }
            };
            nodes.push(node);
        }
        let cluster = RedisCluster {
            nodes,
            cli_args: cli_args(tls_dir, password),
        };
        let addrs: Vec<String> = cluster
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .args(&cluster.cli_args)
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .arg("--cluster-yes")
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            out.status.success(),
            "cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for n in 0..cluster.nodes.len() {
            wait_until("cluster_state:ok", Duration::from_secs(30), || {
                cluster
                    .cli(n, &["cluster", "info"])
                    .contains("cluster_state:ok")
            });
        }
        cluster
    }

    pub fn url(&self) -> String {
        self.nodes[0].url()
    }

    /// `redis-cli -p <port> <args>` output.
    pub fn cli(&self, node: usize, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(&self.cli_args)
            .arg("-p")
            .arg(self.nodes[node].port.to_string())
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

/// A private moto server, killed on drop (or the one in AWS_ENDPOINT_URL).
pub struct Moto {
    pub url: String,
    child: Option<Child>,
}

impl Moto {
    pub fn start() -> Self {
        if let Ok(url) = std::env::var("AWS_ENDPOINT_URL") {
            return Moto { url, child: None };
        }
        let port = free_port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn moto_server (pip install 'moto[server]')");
        let moto = Moto {
            url: format!("http://127.0.0.1:{port}"),
            child: Some(child),
        };
        wait_until("moto_server to start", Duration::from_secs(60), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        moto
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A fresh directory under the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "cache-test-{tag}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Writes a self-signed CA and a server certificate for 127.0.0.1 into `dir` with openssl:
/// `ca.pem`, `server.pem`, `server.key`.
pub fn make_certs(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=cache-test-ca",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("ext.cnf");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

/// redis-server options for the certificates made by [`make_certs`] (clients need no cert).
pub fn tls_args(dir: &Path) -> Vec<String> {
    vec![
        "--tls-cert-file".to_owned(),
        dir.join("server.pem").display().to_string(),
        "--tls-key-file".to_owned(),
        dir.join("server.key").display().to_string(),
        "--tls-ca-cert-file".to_owned(),
        dir.join("ca.pem").display().to_string(),
        "--tls-auth-clients".to_owned(),
        "no".to_owned(),
    ]
}
