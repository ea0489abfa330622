//! A Callosum client: a pool from `callosum-pool`, a rover that offers it
//! connections, and requests sent on the lowest idle slot.
//!
//! Each kept connection has a task that owns its socket: it notices at once
//! when the server ends it (the pool then `remove`s it, as the JavaScript
//! pool does on `end`/`error`/`close`) and carries the requests lent to it.

use crate::rng::Rng;
use crate::rover::{parse_slot_line, HandshakeError, Rover, MAX_SLOT_LINE};
use callosum_pool::{Handle, Offer, Pool, Release};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub max_slots: usize,
    pub roving_interval: Duration,
    /// `backOffUnreachable` of the JavaScript rover: off by default, an
    /// unreachable server is retried whenever it is picked.
    pub back_off_unreachable: bool,
    /// `maxBackoff`: the back-off's ceiling, when it is on.
    pub max_backoff: Duration,
    pub connect_timeout: Duration,
    pub handshake_timeout: Duration,
    /// Mean time between two requests of one client (Poisson arrivals);
    /// `None`: no requests.
    pub request_every: Option<Duration>,
}

/// Latency buckets: 100 µs each, the last one for everything beyond.
pub const LATENCY_BUCKETS: usize = 20_000;
pub const LATENCY_BUCKET: Duration = Duration::from_micros(100);

/// Counters shared by every client of a fleet.
#[derive(Debug)]
pub struct Metrics {
    pub requests_ok: AtomicU64,
    /// Lent a connection, but it failed before the answer came.
    pub requests_failed: AtomicU64,
    /// No idle connection to lend (the request was not sent).
    pub requests_no_connection: AtomicU64,
    pub latency: Vec<AtomicU64>,
    pub connects: AtomicU64,
    pub connect_failures: AtomicU64,
    pub handshake_failures: AtomicU64,
    pub kept: AtomicU64,
    pub refused: AtomicU64,
    pub displaced: AtomicU64,
    /// Kept connections that the server ended.
    pub dropped: AtomicU64,
    /// Rover ticks that found every known server backing off.
    pub no_server: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests_ok: AtomicU64::new(0),
            requests_failed: AtomicU64::new(0),
            requests_no_connection: AtomicU64::new(0),
            latency: (0..LATENCY_BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            connects: AtomicU64::new(0),
            connect_failures: AtomicU64::new(0),
            handshake_failures: AtomicU64::new(0),
            kept: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            displaced: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            no_server: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    fn record_latency(&self, d: Duration) {
        let b = (d.as_micros() / LATENCY_BUCKET.as_micros()) as usize;
        self.latency[b.min(LATENCY_BUCKETS - 1)].fetch_add(1, Relaxed);
    }

    /// The latency histogram now (to subtract two of them for a window).
    pub fn latency_snapshot(&self) -> Vec<u64> {
        self.latency.iter().map(|a| a.load(Relaxed)).collect()
    }
}

/// The latency under which `q` (0..1) of the histogram falls, bucket's upper edge.
pub fn quantile(hist: &[u64], q: f64) -> Option<Duration> {
    let total: u64 = hist.iter().sum();
    if total == 0 {
        return None;
    }
    let want = (total as f64 * q).ceil() as u64;
    let mut seen = 0;
    for (i, &c) in hist.iter().enumerate() {
        seen += c;
        if seen >= want {
            return Some(LATENCY_BUCKET * (i as u32 + 1));
        }
    }
    None
}

/// What every client of a fleet sees: the known servers (in the order they
/// became known; a killed one stays known, as with a rover nobody told), the
/// pooled connections per server, and the counters.
#[derive(Debug)]
pub struct Directory {
    pub servers: RwLock<Vec<SocketAddr>>,
    /// Open pooled connections per server index (kept, or displaced but
    /// still lent).
    pub pooled: Vec<AtomicI64>,
    pub metrics: Metrics,
}

impl Directory {
    /// Room for `capacity` servers.
    pub fn new(capacity: usize) -> Self {
        Directory {
            servers: RwLock::new(Vec::with_capacity(capacity)),
            pooled: (0..capacity).map(|_| AtomicI64::new(0)).collect(),
            metrics: Metrics::default(),
        }
    }

    pub fn add_server(&self, addr: SocketAddr) -> usize {
        let mut s = self.servers.write().unwrap();
        assert!(s.len() < self.pooled.len(), "directory full");
        s.push(addr);
        s.len() - 1
    }
}

enum Cmd {
    Request(oneshot::Sender<std::io::Result<()>>),
}

struct Conn {
    id: u64,
    tx: mpsc::Sender<Cmd>,
}

struct Inner {
    pool: Pool,
    /// The connection behind each pool handle. Dropping a `Conn` closes its
    /// socket (its task sees the channel close).
    conns: Vec<Option<Conn>>,
    next_id: u64,
    rover: Rover,
    rng: Rng,
}

struct Shared {
    cfg: ClientConfig,
    dir: Arc<Directory>,
    inner: Mutex<Inner>,
}

/// A running client. Dropping it stops its rover and requests; its pooled
/// connections close when their tasks see the runtime end or the server go.
pub struct Client {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Client {
    /// Starts a client: its rover at once, then its requests if configured.
    pub fn start(cfg: ClientConfig, dir: Arc<Directory>, seed: u64) -> Client {
        let shared = Arc::new(Self::shared(cfg, dir, seed));
        let mut tasks = vec![tokio::spawn(rove(shared.clone()))];
        if shared.cfg.request_every.is_some() {
            tasks.push(tokio::spawn(requests(
                shared.clone(),
                Rng::new(seed ^ 0xA5A5),
            )));
        }
        Client { shared, tasks }
    }

    /// A client with no task running: drive it with `rove_to` and `request`
    /// (tests).
    pub fn manual(cfg: ClientConfig, dir: Arc<Directory>, seed: u64) -> Client {
        Client {
            shared: Arc::new(Self::shared(cfg, dir, seed)),
            tasks: Vec::new(),
        }
    }

    fn shared(cfg: ClientConfig, dir: Arc<Directory>, seed: u64) -> Shared {
        let inner = Inner {
            pool: Pool::new(cfg.max_slots),
            conns: Vec::new(),
            next_id: 0,
            rover: Rover::new(
                cfg.roving_interval,
                cfg.back_off_unreachable.then_some(cfg.max_backoff),
            ),
            rng: Rng::new(seed),
        };
        Shared {
            cfg,
            dir,
            inner: Mutex::new(inner),
        }
    }

    /// One roving step to the given server, awaited: what became of it.
    pub async fn rove_to(&self, server: usize) -> Roved {
        attempt(self.shared.clone(), server).await
    }

    /// One request, awaited.
    pub async fn request(&self) -> RequestOutcome {
        request(self.shared.clone()).await
    }

    pub fn stats(&self) -> callosum_pool::Stats {
        self.shared.inner.lock().unwrap().pool.stats()
    }

    /// Slots held per server index (for tests).
    pub fn slots(&self) -> Vec<(u64, bool)> {
        let inner = self.shared.inner.lock().unwrap();
        let mut v: Vec<(u64, bool)> = (0..inner.conns.len() as Handle)
            .filter_map(|h| {
                use callosum_pool::State::*;
                match inner.pool.state(h) {
                    Idle => Some((inner.pool.slot(h)?, false)),
                    Leased => Some((inner.pool.slot(h)?, true)),
                    _ => None,
                }
            })
            .collect();
        v.sort();
        v
    }

    pub fn backing_off(&self, server: usize) -> bool {
        self.shared
            .inner
            .lock()
            .unwrap()
            .rover
            .backing_off(server, Instant::now())
    }

    pub fn failures(&self, server: usize) -> u32 {
        self.shared.inner.lock().unwrap().rover.failures(server)
    }

    /// Checks the pool's invariants and that every entry has its connection.
    pub fn check(&self) {
        let inner = self.shared.inner.lock().unwrap();
        inner.pool.check_invariants();
        for (h, c) in inner.conns.iter().enumerate() {
            let in_use = inner.pool.state(h as Handle) != callosum_pool::State::Free;
            assert_eq!(
                c.is_some(),
                in_use,
                "handle {h}: connection table and pool disagree"
            );
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn rove(shared: Arc<Shared>) {
    let interval = shared.cfg.roving_interval;
    // Clients start spread over one interval, as independent processes would.
    let first = {
        let mut inner = shared.inner.lock().unwrap();
        interval.mul_f64(inner.rng.unit())
    };
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + first, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let known = shared.dir.servers.read().unwrap().len();
        let pick = {
            let mut inner = shared.inner.lock().unwrap();
            let Inner { rover, rng, .. } = &mut *inner;
            rover.pick(known, Instant::now(), rng)
        };
        match pick {
            // One attempt at a time: on loopback it takes well under a
            // millisecond; one that outlasts the interval delays the next
            // tick instead of piling up sockets when the machine is busy.
            Some(server) => {
                attempt(shared.clone(), server).await;
            }
            None => {
                shared.dir.metrics.no_server.fetch_add(1, Relaxed);
            }
        }
    }
}

/// What one roving attempt came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Roved {
    ConnectFailed,
    Handshake(HandshakeError),
    Kept { slot: u64, displaced: Option<u64> },
    Refused { slot: u64 },
}

/// Closes with a reset: no TIME_WAIT left behind by the many refused probes.
fn close_now(s: TcpStream) {
    let _ = socket_linger_zero(&s);
    drop(s);
}

fn socket_linger_zero(s: &TcpStream) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket descriptor and a properly sized option value.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

async fn handshake(s: &mut TcpStream) -> Result<(u64, Vec<u8>), HandshakeError> {
    let mut buf = [0u8; MAX_SLOT_LINE];
    let mut len = 0;
    loop {
        match s.read(&mut buf[len..]).await {
            Ok(0) | Err(_) => return Err(HandshakeError::Closed),
            Ok(n) => len += n,
        }
        if let Some((slot, used)) = parse_slot_line(&buf[..len])? {
            return Ok((slot, buf[used..len].to_vec()));
        }
    }
}

async fn attempt(shared: Arc<Shared>, server: usize) -> Roved {
    let m = &shared.dir.metrics;
    let addr = shared.dir.servers.read().unwrap()[server];
    m.connects.fetch_add(1, Relaxed);
    let connected =
        tokio::time::timeout(shared.cfg.connect_timeout, TcpStream::connect(addr)).await;
    let mut stream = match connected {
        Ok(Ok(s)) => s,
        _ => {
            m.connect_failures.fetch_add(1, Relaxed);
            shared
                .inner
                .lock()
                .unwrap()
                .rover
                .connect_failed(server, Instant::now());
            return Roved::ConnectFailed;
        }
    };
    let shook =
        match tokio::time::timeout(shared.cfg.handshake_timeout, handshake(&mut stream)).await {
            Ok(r) => r,
            Err(_) => Err(HandshakeError::TimedOut),
        };
    let (slot, leftover) = match shook {
        Ok(x) => x,
        Err(e) => {
            m.handshake_failures.fetch_add(1, Relaxed);
            close_now(stream);
            return Roved::Handshake(e);
        }
    };
    let _ = stream.set_nodelay(true);
    let mut inner = shared.inner.lock().unwrap();
    inner.rover.handshake_ok(server);
    match inner.pool.offer(slot, false) {
        Ok(Offer::Kept { handle, displaced }) => {
            m.kept.fetch_add(1, Relaxed);
            let id = inner.next_id;
            inner.next_id += 1;
            let (tx, rx) = mpsc::channel(1);
            let h = handle as usize;
            if inner.conns.len() <= h {
                inner.conns.resize_with(h + 1, || None);
            }
            inner.conns[h] = Some(Conn { id, tx });
            // Counted before the task runs, so a snapshot never misses it.
            shared.dir.pooled[server].fetch_add(1, Relaxed);
            tokio::spawn(connection(
                shared.clone(),
                stream,
                leftover,
                rx,
                handle,
                id,
                server,
            ));
            if let Some(d) = displaced {
                m.displaced.fetch_add(1, Relaxed);
                if !d.was_leased {
                    // Idle: closed at once. Leased: closed when released.
                    inner.conns[d.handle as usize] = None;
                }
            }
            Roved::Kept {
                slot,
                displaced: displaced.map(|d| d.slot),
            }
        }
        Ok(Offer::Full { .. }) | Ok(Offer::Closed) | Err(_) => {
            drop(inner);
            m.refused.fetch_add(1, Relaxed);
            close_now(stream);
            Roved::Refused { slot }
        }
    }
}

/// Owns a kept connection's socket until the client drops it or it dies.
async fn connection(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    mut pending: Vec<u8>,
    mut rx: mpsc::Receiver<Cmd>,
    handle: Handle,
    id: u64,
    server: usize,
) {
    let mut buf = [0u8; 256];
    // Bytes after the slot line, before any request: not part of the protocol.
    let mut died = !pending.is_empty();
    while !died {
        enum Event {
            Cmd(Option<Cmd>),
            Readable,
        }
        let event = tokio::select! {
            cmd = rx.recv() => Event::Cmd(cmd),
            // Idle: the server has nothing to say; any byte or the end is death.
            _ = stream.read(&mut buf) => Event::Readable,
        };
        match event {
            Event::Cmd(Some(Cmd::Request(reply))) => {
                let r = exchange(&mut stream, &mut pending, &mut buf).await;
                died = r.is_err();
                let _ = reply.send(r);
            }
            // The client let go of it (displaced, or released when displaced).
            Event::Cmd(None) => break,
            Event::Readable => died = true,
        }
    }
    if died {
        shared.dir.metrics.dropped.fetch_add(1, Relaxed);
        let mut inner = shared.inner.lock().unwrap();
        let mine = inner
            .conns
            .get(handle as usize)
            .and_then(|c| c.as_ref())
            .is_some_and(|c| c.id == id);
        if mine {
            inner.conns[handle as usize] = None;
            let _ = inner.pool.remove(handle);
        }
    }
    shared.dir.pooled[server].fetch_sub(1, Relaxed);
    close_now(stream);
}

async fn exchange(
    stream: &mut TcpStream,
    pending: &mut Vec<u8>,
    buf: &mut [u8],
) -> std::io::Result<()> {
    stream.write_all(b"r\n").await?;
    loop {
        if let Some(p) = pending.iter().position(|&b| b == b'\n') {
            pending.drain(..=p);
            return Ok(());
        }
        match stream.read(buf).await? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => pending.extend_from_slice(&buf[..n]),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestOutcome {
    Ok { slot: u64 },
    NoConnection,
    Failed,
}

async fn request(shared: Arc<Shared>) -> RequestOutcome {
    let m = &shared.dir.metrics;
    let (handle, id, slot, answer) = {
        let mut inner = shared.inner.lock().unwrap();
        let Some(handle) = inner.pool.lease() else {
            m.requests_no_connection.fetch_add(1, Relaxed);
            return RequestOutcome::NoConnection;
        };
        let slot = inner.pool.slot(handle).unwrap_or(0);
        let conn = inner.conns[handle as usize]
            .as_ref()
            .expect("a lent handle has a connection");
        let (tx, answer) = oneshot::channel();
        // An idle connection's channel is empty: this only fails if its task
        // has ended, and then the task removes it from the pool.
        if conn.tx.try_send(Cmd::Request(tx)).is_err() {
            m.requests_failed.fetch_add(1, Relaxed);
            return RequestOutcome::Failed;
        }
        (handle, conn.id, slot, answer)
    };
    let start = Instant::now();
    match answer.await {
        Ok(Ok(())) => {
            m.requests_ok.fetch_add(1, Relaxed);
            m.record_latency(start.elapsed());
            let mut inner = shared.inner.lock().unwrap();
            let mine = inner.conns[handle as usize]
                .as_ref()
                .is_some_and(|c| c.id == id);
            if mine {
                if let Ok(Release::Destroy) = inner.pool.release(handle) {
                    inner.conns[handle as usize] = None;
                }
            }
            RequestOutcome::Ok { slot }
        }
        // The connection died with the request on it; its task removed it.
        _ => {
            m.requests_failed.fetch_add(1, Relaxed);
            RequestOutcome::Failed
        }
    }
}

async fn requests(shared: Arc<Shared>, mut rng: Rng) {
    let mean = shared
        .cfg
        .request_every
        .expect("requests configured")
        .as_secs_f64();
    let mut next = tokio::time::Instant::now();
    loop {
        next += Duration::from_secs_f64(rng.exp(mean));
        tokio::time::sleep_until(next).await;
        tokio::spawn(request(shared.clone()));
    }
}
