//! The opt-in adaptive mode: rank entries by an *effective slot*.
//!
//! Every kept entry belongs to a *server*, a small integer the caller names
//! it by at `offer_on` (a rover server id, or a remote address and port). Per
//! server the pool keeps an estimate of how long its connections stay lent,
//! fed by the caller's lease-duration samples (`record_sample`). A server's
//! *weight* is its estimate over a reference (the median, by default, of the
//! estimates of the servers holding entries), clamped, with a dead band
//! around 1 so that equal servers with noisy estimates keep the plain slot
//! order. An entry's effective slot is its slot times its server's weight;
//! both heaps rank by it: a slow server's slots count higher (lent later,
//! displaced sooner), a fast one's lower.
//!
//! The estimator is an EWMA of lease time: the estimate moves toward each
//! sample by `1 - exp(-dt / decay)`, where `dt` is the time since that
//! server's previous sample; with `peak` (Finagle, linkerd2-proxy, tower), a
//! sample above the estimate replaces it at once. Plain is the default: the
//! fleet simulator measured it 2 to 10% better on fleets with slow servers,
//! the same elsewhere, with 1 lease in 16 sampled (docs/fleet.md).
//!
//! Time comes from the caller
//! (`now_us` on every sample, or `set_clock`), so a simulator runs this code
//! on virtual time. Samples that arrive together (`dt == 0`, as in a batch)
//! still count, with `min_sample_weight`.
//!
//! Weights are recomputed every `reweigh_every` samples, or at once when a
//! sample moves an estimate by more than `reweigh_on_change`, and an entry
//! is re-keyed in both heaps only when its server's weight actually changed.
//! A recomputation costs O(servers + kept) plus O(log n) per re-keyed entry.
//!
//! Bound: the server table holds at most `max(2 * max_slots, 64)` servers
//! (or `AdaptiveConfig::max_servers`), whatever names the caller passes. A
//! server is referenced while any entry in use (idle, leased or displaced)
//! belongs to it; when a new server must be entered and the table is full,
//! the unreferenced server seen longest ago is forgotten (its history with
//! it). If every server is referenced, the new entry is kept *untracked*:
//! ranked at the no-history weight, its samples ignored.

use crate::{Handle, Pool, State};
use std::collections::HashMap;

/// Weights are fixed point: `WEIGHT_ONE` is 1. Keys are `(slot + 1) * weight`, so
/// with the default clamp (8) a key never exceeds `MAX_SLOT * 8 * 128 <
/// 2^63`; a larger clamp saturates keys of absurd slots, never wraps.
pub(crate) const WEIGHT_ONE: u64 = 128;

/// "No server": an entry offered without one, or when the table was full.
const UNTRACKED: u32 = u32::MAX;

/// What the reference estimate (weight 1) is, among the servers that hold
/// entries and have history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reference {
    Mean,
    /// The median (the mean of the two middle ones for an even count): a few
    /// slow servers do not move it, so the others stay at weight 1.
    Median,
}

/// The adaptive mode's tunables. `Default` gives the documented defaults; the
/// fleet simulator measures them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdaptiveConfig {
    /// Peak EWMA (a sample above the estimate replaces it) when true; a
    /// plain EWMA when false. Default false: with a sample every 16 leases,
    /// a peak latches onto one slow request of an exponential tail; the
    /// fleet simulator measured plain 2 to 10% better where servers are
    /// slow and within a histogram step elsewhere (docs/fleet.md, issue 20).
    pub peak: bool,
    /// The EWMA's time constant, in microseconds. Default 2 s: shorter than
    /// Finagle's 10 s so that a server that recovers is trusted again within
    /// a few seconds (issue 20 asks for 10 s).
    pub decay_us: f64,
    /// The least weight a sample gets, even with no time since the previous
    /// one (samples applied in one batch share one `now`). Default 1/128.
    pub min_sample_weight: f64,
    /// Weights are clamped to `1/max_weight ..= max_weight`. Default 8.
    pub max_weight: f64,
    /// Weights within `1 +- dead_band` count as exactly 1, so equal servers
    /// with noisy estimates keep the plain slot order. Default 0.10.
    pub dead_band: f64,
    /// The weight of a server with no sample yet (and of untracked entries),
    /// relative to the reference. Default 1: neutral, as the mean of the
    /// others, not pessimistic (tower #134: new endpoints left idle).
    pub no_history_weight: f64,
    /// Default `Median`.
    pub reference: Reference,
    /// Recompute weights after this many samples. Default 16.
    pub reweigh_every: u32,
    /// ... or at once when one sample moves an estimate by more than this
    /// fraction of it (and on a server's first sample). Default 0.25.
    pub reweigh_on_change: f64,
    /// Treat a lease still out as evidence: at each recomputation, an entry
    /// lent for longer than its server's estimate raises the estimate to
    /// that age (lent time from `lease`, on the clock of `set_clock` /
    /// `record_sample`). Default false.
    pub count_outstanding: bool,
    /// The server table's size; 0 (the default) means `max(2 * max_slots,
    /// 64)`.
    pub max_servers: usize,
}

impl Default for AdaptiveConfig {
    fn default() -> Self {
        Self {
            peak: false,
            decay_us: 2_000_000.0,
            min_sample_weight: 1.0 / 128.0,
            max_weight: 8.0,
            dead_band: 0.10,
            no_history_weight: 1.0,
            reference: Reference::Median,
            reweigh_every: 16,
            reweigh_on_change: 0.25,
            count_outstanding: false,
            max_servers: 0,
        }
    }
}

/// One server, as `Pool::servers` reports it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ServerInfo {
    /// The caller's name for it.
    pub server: u32,
    /// Kept entries, idle or leased.
    pub held: u32,
    /// Leases of its entries while the table remembered it.
    pub leases: u64,
    /// Its estimate of lease time, in microseconds; `None` before a sample.
    pub estimate_us: Option<f64>,
    /// The weight its slots are scaled by now.
    pub weight: f64,
}

#[derive(Clone, Debug)]
struct Server {
    id: u32,
    estimate_us: f64,
    has_history: bool,
    last_sample_us: u64,
    /// Kept entries (idle or leased).
    held: u32,
    /// Entries in use (kept or displaced): a referenced server is never
    /// forgotten, so no entry names a reused table row.
    refs: u32,
    leases: u64,
    /// Fixed point (`WEIGHT_ONE` = 1).
    weight: u64,
    /// When last offered or sampled, on `Adaptive::tick` (for forgetting).
    last_seen: u64,
}

#[derive(Debug)]
pub(crate) struct Adaptive {
    cfg: AdaptiveConfig,
    cap: usize,
    servers: Vec<Server>,
    by_id: HashMap<u32, u32>,
    /// Per handle: its server's row, or `UNTRACKED`.
    server_of: Vec<u32>,
    /// Per handle: its plain slot.
    raw_slot: Vec<u64>,
    /// Per handle: the clock when last lent.
    lent_since: Vec<u64>,
    now_us: u64,
    tick: u64,
    samples_since: u32,
    /// The no-history weight, fixed point.
    default_weight: u64,
    /// The lowest weight any offer can get now: bounds `refuse_from`.
    min_weight: u64,
    /// Reused by `reweigh`.
    scratch: Vec<Handle>,
    estimates: Vec<f64>,
}

impl Adaptive {
    fn new(cfg: AdaptiveConfig, max_slots: usize) -> Self {
        let cap = if cfg.max_servers > 0 {
            cfg.max_servers
        } else {
            (2 * max_slots).max(64)
        };
        let default_weight = fixed(band(cfg.no_history_weight, &cfg));
        Self {
            cfg,
            cap,
            servers: Vec::new(),
            by_id: HashMap::new(),
            server_of: Vec::new(),
            raw_slot: Vec::new(),
            lent_since: Vec::new(),
            now_us: 0,
            tick: 0,
            samples_since: 0,
            default_weight,
            min_weight: default_weight,
            scratch: Vec::new(),
            estimates: Vec::new(),
        }
    }

    fn weight_of(&self, server: Option<u32>) -> u64 {
        server
            .and_then(|id| self.by_id.get(&id))
            .map_or(self.default_weight, |&row| {
                self.servers[row as usize].weight
            })
    }

    /// The heap key of `slot` offered on `server`: (slot + 1) x weight, so
    /// that the weight counts for slot 0 too (every server's first
    /// connection has slot 0: with slot x weight, a client holding slot 0 on
    /// each of its servers would rank them all 0, whatever their speed).
    pub(crate) fn key_for(&self, server: Option<u32>, slot: u64) -> u64 {
        key_of(slot, self.weight_of(server))
    }

    /// The lowest plain slot that every server's offer is refused at, when
    /// the highest kept key is `highest`: JavaScript's crossing-free refusal
    /// stays exact for what it refuses (Rust may refuse more).
    pub(crate) fn refuse_from(&self, highest: u64) -> u64 {
        // key(s) >= (s + 1) x min_weight >= highest for every server.
        highest.div_ceil(self.min_weight).saturating_sub(1)
    }

    pub(crate) fn raw_slot(&self, handle: Handle) -> u64 {
        self.raw_slot[handle as usize]
    }

    /// The row of server `id`, entering it (and perhaps forgetting another)
    /// if new; `UNTRACKED` if the table is full of referenced servers.
    fn row_for(&mut self, id: u32) -> u32 {
        if let Some(&row) = self.by_id.get(&id) {
            return row;
        }
        let fresh = Server {
            id,
            estimate_us: 0.0,
            has_history: false,
            last_sample_us: 0,
            held: 0,
            refs: 0,
            leases: 0,
            weight: self.default_weight,
            last_seen: self.tick,
        };
        let row = if self.servers.len() < self.cap {
            self.servers.push(fresh);
            (self.servers.len() - 1) as u32
        } else {
            let Some(row) = (0..self.servers.len())
                .filter(|&r| self.servers[r].refs == 0)
                .min_by_key(|&r| self.servers[r].last_seen)
            else {
                return UNTRACKED;
            };
            self.by_id.remove(&self.servers[row].id);
            self.servers[row] = fresh;
            row as u32
        };
        self.by_id.insert(id, row);
        row
    }

    pub(crate) fn attach(&mut self, handle: Handle, server: Option<u32>, slot: u64) {
        let h = handle as usize;
        if self.server_of.len() <= h {
            self.server_of.resize(h + 1, UNTRACKED);
            self.raw_slot.resize(h + 1, 0);
            self.lent_since.resize(h + 1, 0);
        }
        self.tick += 1;
        let row = server.map_or(UNTRACKED, |id| self.row_for(id));
        self.server_of[h] = row;
        self.raw_slot[h] = slot;
        if let Some(s) = self.servers.get_mut(row as usize) {
            s.held += 1;
            s.refs += 1;
            s.last_seen = self.tick;
        }
    }

    #[inline]
    pub(crate) fn leased(&mut self, handle: Handle) {
        let h = handle as usize;
        self.lent_since[h] = self.now_us;
        if let Some(s) = self.servers.get_mut(self.server_of[h] as usize) {
            s.leases += 1;
        }
    }

    pub(crate) fn unkept(&mut self, handle: Handle) {
        if let Some(s) = self
            .servers
            .get_mut(self.server_of[handle as usize] as usize)
        {
            s.held -= 1;
        }
    }

    pub(crate) fn freed(&mut self, handle: Handle) {
        let h = handle as usize;
        if let Some(s) = self.servers.get_mut(self.server_of[h] as usize) {
            s.refs -= 1;
        }
        self.server_of[h] = UNTRACKED;
    }

    /// Folds one sample into its server's estimate; true if weights are due
    /// for a recomputation.
    fn sample(&mut self, row: usize, duration_us: u64) -> bool {
        let cfg = self.cfg;
        let now = self.now_us;
        self.tick += 1;
        let s = &mut self.servers[row];
        s.last_seen = self.tick;
        let sample = duration_us as f64;
        let old = s.estimate_us;
        let first = !s.has_history;
        if first || (cfg.peak && sample > old) {
            s.estimate_us = sample;
        } else {
            let dt = now.saturating_sub(s.last_sample_us) as f64;
            // (No `exp` for samples of one batch, which share their time.)
            let alpha = if dt > 0.0 {
                (1.0 - (-dt / cfg.decay_us).exp()).max(cfg.min_sample_weight)
            } else {
                cfg.min_sample_weight
            };
            s.estimate_us = old + alpha * (sample - old);
        }
        s.has_history = true;
        s.last_sample_us = now;
        self.samples_since += 1;
        first
            || (s.estimate_us - old).abs() > cfg.reweigh_on_change * old
            || self.samples_since >= cfg.reweigh_every
    }

    /// The reference estimate: over servers holding entries, with history.
    fn reference(&mut self) -> Option<f64> {
        self.estimates.clear();
        self.estimates.extend(
            self.servers
                .iter()
                .filter(|s| s.held > 0 && s.has_history)
                .map(|s| s.estimate_us),
        );
        let n = self.estimates.len();
        if n == 0 {
            return None;
        }
        let r = match self.cfg.reference {
            Reference::Mean => self.estimates.iter().sum::<f64>() / n as f64,
            Reference::Median => {
                let e = &mut self.estimates;
                e.sort_unstable_by(f64::total_cmp);
                if n % 2 == 1 {
                    e[n / 2]
                } else {
                    (e[n / 2 - 1] + e[n / 2]) / 2.0
                }
            }
        };
        (r > 0.0).then_some(r)
    }
}

/// Applies the dead band and the clamp to a weight.
fn band(w: f64, cfg: &AdaptiveConfig) -> f64 {
    if !w.is_finite() || (w - 1.0).abs() <= cfg.dead_band {
        return 1.0;
    }
    w.clamp(1.0 / cfg.max_weight, cfg.max_weight)
}

fn fixed(w: f64) -> u64 {
    ((w * WEIGHT_ONE as f64).round() as u64).max(1)
}

impl Pool {
    /// A pool in adaptive mode (see the module's doc, `adaptive.rs`).
    pub fn new_adaptive(max_slots: usize, cfg: AdaptiveConfig) -> Self {
        let mut pool = Pool::new(max_slots);
        pool.adaptive = Some(Box::new(Adaptive::new(cfg, pool.max_slots)));
        pool
    }

    pub fn is_adaptive(&self) -> bool {
        self.adaptive.is_some()
    }

    /// The adaptive configuration in use, if adaptive.
    pub fn adaptive_config(&self) -> Option<AdaptiveConfig> {
        self.adaptive.as_ref().map(|a| a.cfg)
    }

    /// Advances the clock (microseconds, any origin; it never goes back)
    /// without a sample: what `lease` stamps as lent time.
    pub fn set_clock(&mut self, now_us: u64) {
        if let Some(a) = self.adaptive.as_deref_mut() {
            a.now_us = a.now_us.max(now_us);
        }
    }

    /// Records that `handle` (leased or displaced, before it is returned)
    /// stayed lent `duration_us`, at time `now_us`. Returns false, changing
    /// nothing, if the pool is not adaptive, the handle is not lent out, or
    /// its entry has no server. May re-weigh and re-key.
    pub fn record_sample(&mut self, handle: Handle, duration_us: u64, now_us: u64) -> bool {
        if !matches!(self.state(handle), State::Leased | State::Displaced) {
            return false;
        }
        let Some(a) = self.adaptive.as_deref_mut() else {
            return false;
        };
        a.now_us = a.now_us.max(now_us);
        let row = a.server_of[handle as usize];
        if row == UNTRACKED {
            return false;
        }
        // Its lease has been measured: it no longer counts as outstanding
        // (it is about to be returned).
        a.lent_since[handle as usize] = a.now_us;
        if a.sample(row as usize, duration_us) {
            self.reweigh();
        }
        true
    }

    /// Recomputes every server's weight and re-keys the kept entries of the
    /// servers whose weight changed.
    pub fn reweigh(&mut self) {
        let Some(mut a) = self.adaptive.take() else {
            return;
        };
        a.samples_since = 0;
        if a.cfg.count_outstanding {
            for (_, h) in self.kept.iter() {
                if self.state[h as usize] != State::Leased {
                    continue;
                }
                let age = a.now_us.saturating_sub(a.lent_since[h as usize]) as f64;
                if let Some(s) = a.servers.get_mut(a.server_of[h as usize] as usize) {
                    if s.has_history && age > s.estimate_us {
                        s.estimate_us = age;
                    }
                }
            }
        }
        let reference = a.reference();
        let mut changed = false;
        let mut min_weight = a.default_weight;
        for s in &mut a.servers {
            let w = match reference {
                Some(r) if s.has_history => fixed(band(s.estimate_us / r, &a.cfg)),
                _ => a.default_weight,
            };
            changed |= w != s.weight;
            s.weight = w;
            min_weight = min_weight.min(w);
        }
        a.min_weight = min_weight;
        if changed {
            let mut stale = std::mem::take(&mut a.scratch);
            stale.clear();
            for (key, h) in self.kept.iter() {
                let row = a.server_of[h as usize];
                let w = a
                    .servers
                    .get(row as usize)
                    .map_or(a.default_weight, |s| s.weight);
                if key != key_of(a.raw_slot[h as usize], w) {
                    stale.push(h);
                }
            }
            for &h in &stale {
                let row = a.server_of[h as usize];
                let w = a
                    .servers
                    .get(row as usize)
                    .map_or(a.default_weight, |s| s.weight);
                let key = key_of(a.raw_slot[h as usize], w);
                self.slot[h as usize] = key;
                self.kept.rekey(h, key);
                if self.state[h as usize] == State::Idle {
                    self.idle.rekey(h, key);
                }
            }
            a.scratch = stale;
        }
        self.adaptive = Some(a);
    }

    /// Per server the table remembers, by the caller's name: entries held,
    /// leases, estimate and weight. Empty when not adaptive. Rare path.
    pub fn servers(&self) -> Vec<ServerInfo> {
        let Some(a) = &self.adaptive else {
            return Vec::new();
        };
        let mut out: Vec<ServerInfo> = a
            .servers
            .iter()
            .map(|s| ServerInfo {
                server: s.id,
                held: s.held,
                leases: s.leases,
                estimate_us: s.has_history.then_some(s.estimate_us),
                weight: s.weight as f64 / WEIGHT_ONE as f64,
            })
            .collect();
        out.sort_by_key(|s| s.server);
        out
    }

    /// A kept or lent entry's effective slot (its slot times its server's
    /// weight); its plain slot when not adaptive.
    pub fn effective_slot(&self, handle: Handle) -> Option<f64> {
        let key = *self.slot.get(handle as usize)?;
        match (self.state(handle), &self.adaptive) {
            (State::Free, _) => None,
            (_, None) => Some(key as f64),
            (_, Some(_)) => Some(key as f64 / WEIGHT_ONE as f64 - 1.0),
        }
    }

    /// The servers the table remembers (tests: the bound).
    pub fn server_table_len(&self) -> usize {
        self.adaptive.as_ref().map_or(0, |a| a.servers.len())
    }
}

impl Adaptive {
    /// Checks the per-server counts and the kept entries' keys (tests only).
    pub(crate) fn check(&self, state: &[State], key: &[u64]) {
        assert!(
            self.servers.len() <= self.cap,
            "server table over its bound"
        );
        let mut held = vec![0u32; self.servers.len()];
        let mut refs = vec![0u32; self.servers.len()];
        for (h, &s) in state.iter().enumerate() {
            let row = self.server_of.get(h).copied().unwrap_or(UNTRACKED);
            if s == State::Free {
                assert_eq!(row, UNTRACKED, "free handle {h} names a server");
                continue;
            }
            let w = match self.servers.get(row as usize) {
                Some(_) => {
                    refs[row as usize] += 1;
                    if matches!(s, State::Idle | State::Leased) {
                        held[row as usize] += 1;
                    }
                    self.servers[row as usize].weight
                }
                None => self.default_weight,
            };
            if matches!(s, State::Idle | State::Leased) {
                assert_eq!(key[h], key_of(self.raw_slot[h], w), "key of {h}");
            }
        }
        for (r, s) in self.servers.iter().enumerate() {
            assert_eq!(s.held, held[r], "held of server {}", s.id);
            assert_eq!(s.refs, refs[r], "refs of server {}", s.id);
            assert_eq!(
                self.by_id.get(&s.id),
                Some(&(r as u32)),
                "index of {}",
                s.id
            );
        }
        assert_eq!(self.by_id.len(), self.servers.len(), "index size");
    }
}

/// A heap key: (slot + 1) x weight, in fixed point (see `key_for`).
#[inline]
pub(crate) fn key_of(slot: u64, weight: u64) -> u64 {
    slot.saturating_add(1).saturating_mul(weight)
}
