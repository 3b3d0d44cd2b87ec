//! Test support: one moto server per test process (unless AWS_ENDPOINT_URL is set), SDK config
//! for it, and per-test resources with unique names.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sqs::config::Credentials;
use jobs::local_source::{LocalEventSource, QueueSetup, create_queues};
use jobs::{Clients, DynamoJobStore, JobTracking, QueueDirectory};
use tokio_util::sync::CancellationToken;

static ENDPOINT: OnceLock<String> = OnceLock::new();

/// The AWS endpoint: `AWS_ENDPOINT_URL` if set, else a moto server started for this process.
pub fn endpoint() -> String {
    ENDPOINT
        .get_or_init(|| match std::env::var("AWS_ENDPOINT_URL") {
            Ok(url) if !url.is_empty() => url,
            _ => spawn_moto(),
        })
        .clone()
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// Starts `moto_server` (or `$MOTO_SERVER`) on a free port from a thread that lives as long as
/// the process: PR_SET_PDEATHSIG fires when the *spawning thread* exits, so that thread must
/// never exit before the process does. moto is killed when the test process ends.
fn spawn_moto() -> String {
    let program = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".to_owned());
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("moto-keeper".into())
        .spawn(move || {
            let port = free_port();
            let mut cmd = Command::new(&program);
            cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let child = cmd.spawn();
            let ok = child.is_ok();
            let _ = tx.send(child.map(|_| port).map_err(|e| format!("{program}: {e}")));
            if ok {
                loop {
                    std::thread::park();
                }
            }
        })
        .expect("spawn moto keeper thread");
    let port = rx.recv().expect("moto keeper reply").unwrap_or_else(|e| {
        panic!("cannot start moto ({e}); install moto[server] or set AWS_ENDPOINT_URL")
    });
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < deadline,
            "moto did not start listening on {addr}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    format!("http://127.0.0.1:{port}")
}

/// SDK config pointed at the test endpoint with dummy credentials. With `JOBS_TEST_LOG` set
/// (an env-filter directive such as `jobs=debug`), logs go to stderr.
pub async fn sdk() -> SdkConfig {
    if let Ok(filter) = std::env::var("JOBS_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .try_init();
    }
    let endpoint = endpoint();
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// A short unique name fragment.
pub fn unique(tag: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{tag}{}", &id[..10])
}

/// Per-test AWS resources: five queue pairs, both tables and a bucket, all uniquely named.
pub struct TestEnv {
    pub clients: Clients,
    pub dir: QueueDirectory,
    pub tracking: JobTracking,
    pub store: Arc<DynamoJobStore>,
    pub bucket: String,
    pub prefix: String,
}

impl TestEnv {
    /// Creates the resources; source queues get `visibility` seconds of visibility timeout.
    pub async fn new(visibility: u32) -> TestEnv {
        let clients = Clients::new(&sdk().await);
        let prefix = format!("{}-", unique("t"));
        let dir = create_queues(
            &clients.sqs,
            &prefix,
            &QueueSetup {
                visibility_timeout_secs: Some(visibility),
            },
        )
        .await
        .expect("create queues");
        let tracking_table = format!("{prefix}jobs");
        let idem_table = format!("{prefix}idem");
        jobs::tracking::create_tracking_table(&clients.dynamodb, &tracking_table)
            .await
            .expect("tracking table");
        jobs::idempotency::create_idempotency_table(&clients.dynamodb, &idem_table)
            .await
            .expect("idempotency table");
        let bucket = format!("{prefix}payloads");
        clients
            .s3
            .create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .expect("bucket");
        let day = Duration::from_secs(86_400);
        let tracking = JobTracking::new(clients.dynamodb.clone(), tracking_table.clone(), 30 * day);
        let store = Arc::new(DynamoJobStore {
            idempotency: jobs::idempotency::IdempotencyStore::new(
                clients.dynamodb.clone(),
                idem_table,
                14 * day,
            ),
            tracking: tracking.clone(),
        });
        TestEnv {
            clients,
            dir,
            tracking,
            store,
            bucket,
            prefix,
        }
    }

    /// A producer for this environment (with the payload bucket).
    pub fn producer(&self) -> jobs::Producer {
        jobs::Producer::new(&self.clients, self.dir.clone(), self.tracking.clone())
            .with_payload_bucket(self.bucket.clone())
    }
}

/// Runs an event source in the background; cancel the token and await the handle to stop it.
pub fn start(
    source: LocalEventSource,
) -> (CancellationToken, tokio::task::JoinHandle<jobs::Result<()>>) {
    let token = CancellationToken::new();
    let t = token.clone();
    let handle = tokio::spawn(async move { source.run(t).await });
    (token, handle)
}

/// Polls `check` every 100 ms until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Totals of [`process_in_rounds`].
#[derive(Debug, Default)]
pub struct Rounds {
    /// Time spent sending (producer).
    pub send: Duration,
    /// Time spent consuming until the queue was drained.
    pub process: Duration,
    /// Summed event source counters (batches, received, deleted, failed).
    pub stats: (u64, u64, u64, u64),
    /// Jobs the producer reported as sent.
    pub sent: usize,
}

/// Sends `jobs` in rounds of `round`: send a round with no consumer running, then run the
/// worker through the local event source (`pollers` poll loops) until the queue is drained,
/// stop it, repeat. Two moto limits make this necessary: its SendMessage costs O(queue depth)
/// (it recomputes every queue attribute), and its delete rebuilds the message list without a
/// lock, so a message sent during a delete can vanish. Neither exists on AWS.
pub async fn process_in_rounds(
    env: &TestEnv,
    worker: Arc<jobs::Worker>,
    jobs: Vec<jobs::Job>,
    round: usize,
    pollers: usize,
) -> Rounds {
    let url = worker.config().urls.url.clone();
    let producer = env.producer();
    let mut totals = Rounds::default();
    let mut rest = jobs;
    while !rest.is_empty() {
        let tail = rest.split_off(round.min(rest.len()));
        let t = Instant::now();
        let report = producer.send_all(rest).await.expect("send round");
        assert!(
            report.failed.is_empty(),
            "send failed: {:?}",
            report.failed.first()
        );
        totals.sent += report.sent.len();
        totals.send += t.elapsed();
        let t = Instant::now();
        let source = LocalEventSource::new(env.clients.sqs.clone()).with_mapping(
            // Short polling: a long poll still open in moto when the source stops would take
            // the next round's messages and hide them for the visibility timeout.
            jobs::local_source::EventSourceMapping::for_worker(Arc::clone(&worker))
                .with_wait_time(Duration::ZERO)
                .with_pollers(pollers),
        );
        let stats = source.stats();
        let (stop, handle) = start(source);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
        loop {
            let c = jobs::admin::queue_counts(&env.clients.sqs, &url)
                .await
                .expect("queue counts");
            if c.visible == 0 && c.in_flight == 0 && c.delayed == 0 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "round did not drain: {c:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.cancel();
        handle.await.expect("source task").expect("source run");
        totals.process += t.elapsed();
        let (b, r, d, f) = stats.snapshot();
        totals.stats = (
            totals.stats.0 + b,
            totals.stats.1 + r,
            totals.stats.2 + d,
            totals.stats.3 + f,
        );
        rest = tail;
    }
    totals
}
