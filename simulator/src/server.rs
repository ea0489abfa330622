//! A Callosum server: every accepted connection gets the lowest free slot,
//! sent first as `{slot}\r\n`; the slot is freed when the connection ends.
//! After that it answers each request line (`...\n`) with `ok\n` after a
//! short delay.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Hands out the lowest free slot. Memory is bounded by the highest slot in
/// use, not by the number of connections ever made.
#[derive(Debug, Default)]
pub struct SlotAllocator {
    /// Slots below `next` that are free.
    free: BTreeSet<u64>,
    /// Every slot from here up is free.
    next: u64,
}

impl SlotAllocator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the lowest free slot.
    pub fn allocate(&mut self) -> u64 {
        if let Some(s) = self.free.pop_first() {
            return s;
        }
        self.next += 1;
        self.next - 1
    }

    /// Gives a slot back. Panics on a slot that is not taken (a server bug).
    pub fn free(&mut self, slot: u64) {
        assert!(
            slot < self.next && !self.free.contains(&slot),
            "slot {slot} is not taken"
        );
        if slot + 1 == self.next {
            self.next = slot;
            // Shrink past the free slots that are now on top.
            while let Some(&top) = self.free.last() {
                if top + 1 != self.next {
                    break;
                }
                self.free.pop_last();
                self.next = top;
            }
        } else {
            self.free.insert(slot);
        }
    }

    /// Slots taken now.
    pub fn in_use(&self) -> u64 {
        self.next - self.free.len() as u64
    }

    /// One past the highest slot taken.
    pub fn high_water(&self) -> u64 {
        self.next
    }
}

/// What a server counts, readable while it runs.
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Connections open now (pooled ones and rovers' probes alike).
    pub open: AtomicUsize,
    /// Connections accepted since the start.
    pub accepted: AtomicU64,
    /// Requests answered since the start.
    pub answered: AtomicU64,
}

struct Shared {
    slots: Mutex<SlotAllocator>,
    stats: ServerStats,
    delay: Duration,
}

/// A running server. `kill` closes its listener and every connection at once,
/// as a crashed host would.
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    kill: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

impl Server {
    /// Listens on `127.0.0.1` (a free port) and serves until killed.
    pub async fn start(delay: Duration) -> std::io::Result<Server> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(([127, 0, 0, 1], 0).into())?;
        // A deep accept queue: bursts of rovers wait instead of being dropped
        // (a dropped SYN is retried only after a second).
        let listener = socket.listen(4096)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            slots: Mutex::new(SlotAllocator::new()),
            stats: ServerStats::default(),
            delay,
        });
        let (kill, killed) = watch::channel(false);
        let accept = tokio::spawn(accept_loop(listener, shared.clone(), killed));
        Ok(Server {
            addr,
            shared,
            kill,
            accept,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stats(&self) -> &ServerStats {
        &self.shared.stats
    }

    /// Slots taken now.
    pub fn slots_in_use(&self) -> u64 {
        self.shared.slots.lock().unwrap().in_use()
    }

    pub fn is_killed(&self) -> bool {
        *self.kill.borrow()
    }

    /// Stops accepting (new connects are refused) and drops every connection.
    pub fn kill(&self) {
        self.accept.abort();
        self.kill.send_replace(true);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, killed: watch::Receiver<bool>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve(stream, shared.clone(), killed.clone()));
            }
            // Out of descriptors, most likely: wait and go on.
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

/// Frees the slot and the count however the connection ends.
struct Held<'a>(&'a Shared, u64);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.slots.lock().unwrap().free(self.1);
        self.0.stats.open.fetch_sub(1, Relaxed);
    }
}

async fn serve(mut stream: TcpStream, shared: Arc<Shared>, mut killed: watch::Receiver<bool>) {
    let slot = shared.slots.lock().unwrap().allocate();
    shared.stats.open.fetch_add(1, Relaxed);
    shared.stats.accepted.fetch_add(1, Relaxed);
    let _held = Held(&shared, slot);
    if *killed.borrow_and_update() {
        return;
    }
    let _ = stream.set_nodelay(true);
    if stream
        .write_all(format!("{slot}\r\n").as_bytes())
        .await
        .is_err()
    {
        return;
    }
    let mut buf = [0u8; 512];
    loop {
        let n = tokio::select! {
            _ = killed.changed() => return,
            r = stream.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
        };
        for _ in buf[..n].iter().filter(|&&b| b == b'\n') {
            tokio::select! {
                _ = killed.changed() => return,
                _ = tokio::time::sleep(shared.delay) => {}
            }
            if stream.write_all(b"ok\n").await.is_err() {
                return;
            }
            shared.stats.answered.fetch_add(1, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_free_slot_first() {
        let mut a = SlotAllocator::new();
        assert_eq!(
            (0..5).map(|_| a.allocate()).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
        a.free(3);
        a.free(1);
        assert_eq!(a.in_use(), 3);
        assert_eq!(a.allocate(), 1);
        assert_eq!(a.allocate(), 3);
        assert_eq!(a.allocate(), 5);
    }

    #[test]
    fn freeing_the_top_shrinks_past_free_slots() {
        let mut a = SlotAllocator::new();
        for _ in 0..6 {
            a.allocate();
        }
        a.free(2);
        a.free(4);
        a.free(3);
        assert_eq!(a.high_water(), 6);
        a.free(5);
        // 2, 3, 4, 5 free on top: the high water falls to 2 and nothing is kept.
        assert_eq!(a.high_water(), 2);
        assert!(a.free.is_empty());
        assert_eq!(a.in_use(), 2);
        assert_eq!(a.allocate(), 2);
    }

    #[test]
    fn allocator_matches_a_naive_model() {
        let mut a = SlotAllocator::new();
        let mut taken = [false; 64];
        let mut rng = crate::rng::Rng::new(5);
        for _ in 0..20_000 {
            let live: Vec<usize> = (0..64).filter(|&s| taken[s]).collect();
            if live.len() < 60 && (live.is_empty() || rng.below(2) == 0) {
                let expect = taken.iter().position(|&t| !t).unwrap();
                assert_eq!(a.allocate(), expect as u64);
                taken[expect] = true;
            } else {
                let s = live[rng.below(live.len())];
                a.free(s as u64);
                taken[s] = false;
            }
            assert_eq!(a.in_use(), taken.iter().filter(|&&t| t).count() as u64);
            assert!(a.high_water() as usize <= taken.iter().rposition(|&t| t).map_or(0, |p| p + 1));
        }
    }

    #[test]
    #[should_panic(expected = "not taken")]
    fn freeing_a_free_slot_is_a_bug() {
        let mut a = SlotAllocator::new();
        a.allocate();
        a.allocate();
        a.free(0);
        a.free(0);
    }

    async fn read_line(s: &mut TcpStream) -> String {
        let mut out = Vec::new();
        let mut b = [0u8; 1];
        while !out.ends_with(b"\n") {
            if s.read(&mut b).await.unwrap() == 0 {
                break;
            }
            out.push(b[0]);
        }
        String::from_utf8(out).unwrap()
    }

    #[tokio::test]
    async fn server_numbers_connections_and_frees_on_close() {
        let server = Server::start(Duration::from_millis(1)).await.unwrap();
        let mut conns = Vec::new();
        for want in 0..4 {
            let mut s = TcpStream::connect(server.addr()).await.unwrap();
            assert_eq!(read_line(&mut s).await, format!("{want}\r\n"));
            conns.push(s);
        }
        // Close slot 1; wait (bounded) until the server has seen it.
        drop(conns.remove(1));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while server.slots_in_use() != 3 {
            assert!(tokio::time::Instant::now() < deadline, "slot 1 never freed");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let mut s = TcpStream::connect(server.addr()).await.unwrap();
        assert_eq!(read_line(&mut s).await, "1\r\n");
        // Requests are answered, one line each.
        s.write_all(b"r\nr\n").await.unwrap();
        assert_eq!(read_line(&mut s).await, "ok\n");
        assert_eq!(read_line(&mut s).await, "ok\n");
        assert_eq!(server.stats().answered.load(Relaxed), 2);
        assert_eq!(server.stats().open.load(Relaxed), 4);
        // Killed: connections end, new connects are refused.
        server.kill();
        assert_eq!(read_line(&mut s).await, "");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(server.addr()).await.is_ok() {
            assert!(tokio::time::Instant::now() < deadline, "still accepting");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}
