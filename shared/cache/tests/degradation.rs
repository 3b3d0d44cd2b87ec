//! The cache degrades instead of failing: private servers that die, stall or never answer.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use cache::{
    BreakerConfig, BreakerState, CacheConfig, CacheError, CacheService, LockOutcome, Lookup,
};
use common::*;

const OP_TIMEOUT: Duration = Duration::from_millis(100);
/// Scheduling slack on a busy 2-core machine.
const SLACK: Duration = Duration::from_millis(250);

fn private_config(url: &str, threshold: u32, cool_down: Duration) -> CacheConfig {
    let mut c = CacheConfig::from_url(url).unwrap();
    c.key_prefix = unique_prefix("degrade");
    c.op_timeout = OP_TIMEOUT;
    c.connect_timeout = Duration::from_millis(500);
    c.breaker = BreakerConfig {
        failure_threshold: threshold,
        cool_down,
    };
    c
}

#[tokio::test]
async fn killed_server_degrades_then_recovers_after_cool_down() {
    let port = free_port();
    let mut server = RedisServer::start(port, &[]);
    let cool_down = Duration::from_millis(800);
    let svc = CacheService::connect(private_config(&server.url(), 3, cool_down))
        .await
        .unwrap();
    let c = svc.named("userData");
    c.set("u:1", &"Ada", Duration::from_secs(60)).await.unwrap();
    assert_eq!(c.get::<String>("u:1").await, Lookup::Hit("Ada".into()));

    server.kill();

    // Until the breaker opens: every call answers Unavailable / an error, within the timeout.
    let mut calls = 0;
    while svc.breaker_state() == BreakerState::Closed {
        let t = Instant::now();
        assert_eq!(c.get::<String>("u:1").await, Lookup::Unavailable);
        assert!(
            t.elapsed() <= OP_TIMEOUT + SLACK,
            "get took {:?}",
            t.elapsed()
        );
        let t = Instant::now();
        assert!(c.set("u:2", &1, Duration::from_secs(60)).await.is_err());
        assert!(
            t.elapsed() <= OP_TIMEOUT + SLACK,
            "set took {:?}",
            t.elapsed()
        );
        calls += 2;
        assert!(calls <= 20, "breaker never opened");
    }
    assert_eq!(svc.breaker_trips(), 1);
    let errors_when_open = c.stats().errors;
    assert!(errors_when_open >= 3);

    // Open: calls skip Redis and return at once.
    let bypass_before = c.stats().bypasses;
    let t = Instant::now();
    for _ in 0..100 {
        assert_eq!(c.get::<String>("u:1").await, Lookup::Unavailable);
        assert!(matches!(
            c.set("u:2", &1, Duration::from_secs(60)).await,
            Err(CacheError::BreakerOpen)
        ));
        assert!(matches!(
            c.try_lock("l", Duration::from_secs(1)).await,
            LockOutcome::Unavailable
        ));
    }
    assert!(
        t.elapsed() < Duration::from_millis(100),
        "300 bypassed calls took {:?}",
        t.elapsed()
    );
    assert_eq!(c.stats().bypasses, bypass_before + 300);
    assert_eq!(
        c.stats().errors,
        errors_when_open,
        "bypasses are not errors"
    );

    // While Redis is still down, probes fail and the breaker stays open.
    tokio::time::sleep(cool_down * 2).await;
    assert_eq!(c.get::<String>("u:1").await, Lookup::Unavailable);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_ne!(svc.breaker_state(), BreakerState::Closed);

    // Same port again (the data is gone: no persistence).
    server.restart();
    let restarted = Instant::now();
    loop {
        match c.get::<String>("u:1").await {
            Lookup::Miss => break,
            Lookup::Unavailable => {}
            Lookup::Hit(v) => panic!("unexpected hit {v}"),
        }
        assert!(
            restarted.elapsed() < cool_down * 3 + Duration::from_secs(3),
            "cache never recovered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "recovered {:?} after the restart (cool-down {cool_down:?})",
        restarted.elapsed()
    );
    assert_eq!(svc.breaker_state(), BreakerState::Closed);
    c.set("u:1", &"Grace", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(c.get::<String>("u:1").await, Lookup::Hit("Grace".into()));
}

#[tokio::test]
async fn listener_that_never_answers_times_out() {
    // Accepts connections (the kernel does, via the backlog) and never says a word.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let cfg = private_config(
        &format!("redis://127.0.0.1:{port}"),
        4,
        Duration::from_secs(30),
    );
    let connect_timeout = cfg.connect_timeout;
    let t = Instant::now();
    let svc = CacheService::connect(cfg)
        .await
        .expect("a silent server is not a configuration error");
    assert!(
        t.elapsed() <= connect_timeout + SLACK,
        "connect took {:?}",
        t.elapsed()
    );
    let c = svc.named("userData");
    for _ in 0..4 {
        let t = Instant::now();
        assert_eq!(c.get::<u8>("k").await, Lookup::Unavailable);
        assert!(
            t.elapsed() <= OP_TIMEOUT + SLACK,
            "get took {:?}",
            t.elapsed()
        );
    }
    // The first call may instead see the start-up connection attempt's own timeout error.
    assert_eq!(c.stats().errors, 4);
    assert!(c.stats().timeouts >= 3, "{:?}", c.stats());
    assert_eq!(svc.breaker_state(), BreakerState::Open);
    let t = Instant::now();
    assert!(matches!(
        c.set("k", &1u8, Duration::from_secs(1)).await,
        Err(CacheError::BreakerOpen)
    ));
    assert!(t.elapsed() < Duration::from_millis(20));
    drop(listener);
}

#[tokio::test]
async fn stalled_server_times_out_then_answers_again() {
    let port = free_port();
    let server = RedisServer::start(port, &["--enable-debug-command", "local"]);
    let svc = CacheService::connect(private_config(&server.url(), 100, Duration::from_secs(1)))
        .await
        .unwrap();
    let c = svc.named("userData");
    c.set("k", &7u8, Duration::from_secs(60)).await.unwrap();

    // Block the whole server for 1.5 s from another connection.
    let sleeper = tokio::spawn({
        let url = server.url();
        async move {
            let no_timeout = redis::AsyncConnectionConfig::new().set_response_timeout(None);
            let mut raw = redis::Client::open(url)
                .unwrap()
                .get_multiplexed_async_connection_with_config(&no_timeout)
                .await
                .unwrap();
            let _: () = redis::cmd("DEBUG")
                .arg("SLEEP")
                .arg("1.5")
                .query_async(&mut raw)
                .await
                .unwrap();
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..3 {
        let t = Instant::now();
        assert_eq!(c.get::<u8>("k").await, Lookup::Unavailable);
        assert!(
            t.elapsed() <= OP_TIMEOUT + SLACK,
            "get took {:?}",
            t.elapsed()
        );
        let t = Instant::now();
        assert!(matches!(
            c.set("k2", &1u8, Duration::from_secs(60)).await,
            Err(CacheError::Timeout(_))
        ));
        assert!(
            t.elapsed() <= OP_TIMEOUT + SLACK,
            "set took {:?}",
            t.elapsed()
        );
    }
    assert!(c.stats().timeouts >= 6);
    sleeper.await.unwrap();
    // Same connection, no reconnect needed: the late replies were discarded in order.
    assert_eq!(c.get::<u8>("k").await, Lookup::Hit(7));
    assert_eq!(svc.breaker_state(), BreakerState::Closed);
}

#[tokio::test]
async fn nothing_listening_at_start_up_is_not_fatal() {
    let port = free_port();
    let cfg = private_config(
        &format!("redis://127.0.0.1:{port}"),
        2,
        Duration::from_millis(300),
    );
    let t = Instant::now();
    let svc = CacheService::connect(cfg).await.unwrap();
    assert!(t.elapsed() <= Duration::from_millis(500) + SLACK);
    let c = svc.named("userData");
    assert_eq!(c.get::<u8>("k").await, Lookup::Unavailable);
    assert_eq!(
        c.mget::<u8, _>(&["a", "b"]).await,
        vec![Lookup::Unavailable, Lookup::Unavailable]
    );
    assert_eq!(svc.breaker_state(), BreakerState::Open);

    // The server appears later: the probe after the cool-down connects.
    let _server = RedisServer::start(port, &[]);
    let t = Instant::now();
    while c.get::<u8>("k").await != Lookup::Miss {
        assert!(t.elapsed() < Duration::from_secs(5), "never connected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
