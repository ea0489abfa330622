//! The client and rover over real loopback sockets. Every wait is for an
//! event, bounded by a generous deadline: nothing depends on timing luck.

use callosum_fleet_sim::client::{Client, ClientConfig, Directory, RequestOutcome, Roved};
use callosum_fleet_sim::fleet::{Driver, Fleet, FleetConfig};
use callosum_fleet_sim::rover::HandshakeError;
use callosum_fleet_sim::server::Server;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

const DEADLINE: Duration = Duration::from_secs(10);

fn cfg(max_slots: usize) -> ClientConfig {
    ClientConfig {
        max_slots,
        roving_interval: Duration::from_millis(5),
        back_off_unreachable: true,
        max_backoff: Duration::from_millis(1000),
        connect_timeout: Duration::from_secs(2),
        handshake_timeout: Duration::from_millis(200),
        request_every: None,
    }
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let end = tokio::time::Instant::now() + DEADLINE;
    while !f() {
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn hold(server: &Server, n: usize) -> Vec<TcpStream> {
    let mut v = Vec::new();
    for _ in 0..n {
        let mut s = TcpStream::connect(server.addr()).await.unwrap();
        let mut b = [0u8; 8];
        // Wait for the slot line so the slots are taken in order.
        tokio::io::AsyncReadExt::read(&mut s, &mut b).await.unwrap();
        v.push(s);
    }
    v
}

#[tokio::test]
async fn pool_keeps_the_lowest_slots_and_closes_the_rest() {
    let a = Server::start(Duration::from_millis(1)).await.unwrap();
    let b = Server::start(Duration::from_millis(1)).await.unwrap();
    let dir = Arc::new(Directory::new(2));
    dir.add_server(a.addr());
    dir.add_server(b.addr());
    let c = Client::manual(cfg(2), dir.clone(), 1);
    // A is busy: slots 0..3 are taken by others.
    let _others = hold(&a, 3).await;
    assert_eq!(
        c.rove_to(0).await,
        Roved::Kept {
            slot: 3,
            displaced: None
        }
    );
    assert_eq!(
        c.rove_to(1).await,
        Roved::Kept {
            slot: 0,
            displaced: None
        }
    );
    // Full, and A's next slot (4) is above the highest kept (3): refused and closed.
    assert_eq!(c.rove_to(0).await, Roved::Refused { slot: 4 });
    until("A to free refused slot 4", || a.slots_in_use() == 4).await;
    // B's slot 1 beats A's slot 3, which was idle: closed at once.
    assert_eq!(
        c.rove_to(1).await,
        Roved::Kept {
            slot: 1,
            displaced: Some(3)
        }
    );
    until("A to free displaced slot 3", || a.slots_in_use() == 3).await;
    assert_eq!(c.slots(), [(0, false), (1, false)]);
    assert_eq!(c.stats().slot_count, 2);
    c.check();
    // Requests go on the lowest idle slot.
    for _ in 0..3 {
        assert_eq!(c.request().await, RequestOutcome::Ok { slot: 0 });
    }
    c.check();
    until("pooled counts", || {
        dir.pooled[0].load(std::sync::atomic::Ordering::Relaxed) == 0
    })
    .await;
    assert_eq!(dir.pooled[1].load(std::sync::atomic::Ordering::Relaxed), 2);
}

#[tokio::test]
async fn a_displaced_leased_connection_closes_when_its_request_ends() {
    let slow = Server::start(Duration::from_millis(300)).await.unwrap();
    let b = Server::start(Duration::from_millis(1)).await.unwrap();
    let dir = Arc::new(Directory::new(2));
    dir.add_server(slow.addr());
    dir.add_server(b.addr());
    let c = Client::manual(cfg(1), dir.clone(), 2);
    let _others = hold(&slow, 2).await;
    assert_eq!(
        c.rove_to(0).await,
        Roved::Kept {
            slot: 2,
            displaced: None
        }
    );
    // Lend it: poll the request once, so it is leased and sent, then go on.
    let mut req = std::pin::pin!(c.request());
    tokio::select! {
        biased;
        _ = &mut req => panic!("a 300 ms request finished at once"),
        _ = async {} => {}
    }
    assert_eq!(c.stats().leased, 1);
    // B's slot 0 displaces it while it is lent: still open, not kept.
    assert_eq!(
        c.rove_to(1).await,
        Roved::Kept {
            slot: 0,
            displaced: Some(2)
        }
    );
    let st = c.stats();
    assert_eq!((st.slot_count, st.displaced, st.idle), (1, 1, 1));
    assert_eq!(slow.slots_in_use(), 3);
    c.check();
    // Its request still completes; then it is closed, never lent again.
    assert_eq!(req.await, RequestOutcome::Ok { slot: 2 });
    assert_eq!(c.stats().displaced, 0);
    until("the slow server to free slot 2", || {
        slow.slots_in_use() == 2
    })
    .await;
    assert_eq!(c.request().await, RequestOutcome::Ok { slot: 0 });
    c.check();
}

#[tokio::test]
async fn a_dead_server_is_removed_and_backed_off() {
    let a = Server::start(Duration::from_millis(1)).await.unwrap();
    let dir = Arc::new(Directory::new(1));
    dir.add_server(a.addr());
    let c = Client::manual(cfg(4), dir.clone(), 3);
    assert_eq!(
        c.rove_to(0).await,
        Roved::Kept {
            slot: 0,
            displaced: None
        }
    );
    assert_eq!(
        c.rove_to(0).await,
        Roved::Kept {
            slot: 1,
            displaced: None
        }
    );
    a.kill();
    // The pool drops both as soon as the server ends them.
    until("the pool to drop the dead connections", || {
        c.stats().slot_count == 0
    })
    .await;
    c.check();
    assert_eq!(c.request().await, RequestOutcome::NoConnection);
    until("the listener to close", || {
        // Connect refused from now on; the rover's attempts fail.
        std::net::TcpStream::connect(a.addr()).is_err()
    })
    .await;
    assert_eq!(c.rove_to(0).await, Roved::ConnectFailed);
    assert_eq!(c.failures(0), 1);
    assert!(c.backing_off(0));
    assert_eq!(c.rove_to(0).await, Roved::ConnectFailed);
    assert_eq!(c.failures(0), 2);
}

#[tokio::test]
async fn bad_handshakes_are_closed_without_backoff() {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let dir = Arc::new(Directory::new(1));
    dir.add_server(addr);
    let c = Client::manual(cfg(4), dir.clone(), 4);
    let serve = tokio::spawn(async move {
        for reply in [&b"x1\r\n"[..], b"123456789012345678901234", b"", b"1"] {
            let (mut s, _) = listener.accept().await.unwrap();
            s.write_all(reply).await.unwrap();
            if reply == b"1" {
                // Say nothing more: the client times out.
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    });
    assert_eq!(
        c.rove_to(0).await,
        Roved::Handshake(HandshakeError::NotDigits)
    );
    assert_eq!(
        c.rove_to(0).await,
        Roved::Handshake(HandshakeError::TooLong)
    );
    assert_eq!(c.rove_to(0).await, Roved::Handshake(HandshakeError::Closed));
    assert_eq!(
        c.rove_to(0).await,
        Roved::Handshake(HandshakeError::TimedOut)
    );
    assert_eq!(c.failures(0), 0);
    assert_eq!(c.stats().slot_count, 0);
    serve.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_fleet_fills_and_replaces_a_dead_server() {
    let mut cfg = FleetConfig {
        client: cfg(3),
        server_delay: Duration::from_millis(1),
        seed: 42,
    };
    cfg.client.request_every = Some(Duration::from_millis(20));
    let mut fleet = Fleet::new(cfg, 5);
    fleet.add_servers(4).await.unwrap();
    fleet.add_clients(40);
    until("the pools to fill", || {
        fleet.snapshot().total_pooled() == 120
    })
    .await;
    fleet.kill(0);
    until("server 0's connections to go", || {
        fleet.snapshot().pooled[0] == 0
    })
    .await;
    until("the pools to refill on the others", || {
        fleet.snapshot().total_pooled() == 120
    })
    .await;
    // A new server is found and used.
    let new = fleet.add_servers(1).await.unwrap();
    until("the new server to get connections", || {
        fleet.snapshot().pooled[new.start] > 0
    })
    .await;
    for c in &fleet.clients {
        c.check();
    }
    let s = fleet.snapshot();
    assert!(s.ok > 0);
    // Only requests in flight on the dead server can fail.
    assert!(s.failed <= 40 * 3, "{} failed", s.failed);
}
