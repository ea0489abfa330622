use super::*;
use crate::fleet;

fn small(balancer: Balancer) -> VtConfig {
    let mut c = VtConfig::like_sockets(
        3,
        Duration::from_millis(100),
        Duration::from_millis(10),
        0.0,
        7,
    );
    c.workers = 2;
    c.dist = Dist::Exponential;
    c.balancer = balancer;
    c.request_rate = 0.8 * c.capacity(10);
    c
}

#[test]
fn log_hist_quantiles_are_within_two_percent() {
    let mut h = LogHist::default();
    for v in 1..=100_000u64 {
        h.record(v * 1_000);
    }
    for q in [0.5, 0.9, 0.99] {
        let got = h.quantile(q).unwrap().as_nanos() as f64;
        let want = q * 1e8;
        assert!((got / want - 1.0).abs() < 0.02, "q {q}: {got} vs {want}");
    }
    for i in [0usize, 63, 64, 65, 200, 1000, 3000] {
        let (lo, hi) = LogHist::bounds(i);
        assert_eq!(LogHist::index(lo), i);
        assert_eq!(LogHist::index(hi - 1), i);
    }
}

#[test]
fn callosum_fills_every_pool_and_serves_every_request() {
    let mut sim = Sim::new(small(Balancer::Callosum), 10, 40);
    sim.run_until(Duration::from_secs(5));
    sim.check();
    let pooled: i64 = sim.pooled().iter().sum();
    assert_eq!(pooled, 120);
    // Balanced to within a connection or two of the mean (12).
    assert!(
        sim.pooled().iter().all(|&p| (10..=14).contains(&p)),
        "{:?}",
        sim.pooled()
    );
    let c = &sim.counters;
    let answered: u64 = sim.answered().iter().sum();
    assert_eq!(answered, c.ok);
    // 0.8 x 10 servers x 2 workers / 10 ms = 1,600 requests a second.
    assert!((7_000..9_000).contains(&c.ok), "{}", c.ok);
    assert_eq!(c.failed, 0);
}

#[test]
fn every_balancer_sees_the_same_requests() {
    let mut counts = Vec::new();
    for b in Balancer::ALL {
        let mut sim = Sim::new(small(b), 10, 40);
        sim.run_until(Duration::from_secs(3));
        sim.check();
        // Requests made: answered + in flight + waiting; the arrivals
        // themselves come from one generator.
        counts.push(sim.counters.events - sim.counters.ok - sim.counters.connects);
    }
    assert!(counts.windows(2).all(|w| w[0] == w[1]), "{counts:?}");
}

#[test]
fn killed_servers_lose_their_connections_and_pools_refill() {
    let mut sim = Sim::new(small(Balancer::Callosum), 10, 40);
    sim.run_until(Duration::from_secs(3));
    sim.kill_many(&[0, 5]);
    sim.check();
    assert_eq!(sim.pooled()[0], 0);
    assert_eq!(sim.pooled()[5], 0);
    sim.run_until(Duration::from_secs(6));
    sim.check();
    assert_eq!(sim.pooled().iter().sum::<i64>(), 120);
    // Without back-off, the rovers keep trying the dead servers.
    assert!(sim.counters.connect_failures > 100);
}

#[test]
fn scenarios_run_in_virtual_time() {
    let mut cfg = VtConfig::like_sockets(
        3,
        Duration::from_millis(100),
        Duration::from_millis(2),
        400.0,
        3,
    );
    cfg.back_off_unreachable = true;
    let mut sim = Sim::new(cfg, 20, 200);
    let ri = sim.cfg.roving_interval;
    let sc = block_on(fleet::scenarios(&mut sim, ri * 20, ri * 10, ri * 20)).unwrap();
    sim.check();
    assert!(sc.steady.conn_max_mean < 1.15, "{:?}", sc.steady);
    assert!(sc.scale.all_80_secs.is_some());
    assert!(sc.fail.refill_full_secs.is_some());
    assert_eq!(sc.steady.failed, 0);
}

#[test]
fn weighted_slots_give_slow_servers_fewer_connections() {
    let mut counts = Vec::new();
    for policy in [
        SlotPolicy::Lowest,
        SlotPolicy::Weighted,
        SlotPolicy::LoadAware,
    ] {
        let mut c = small(Balancer::Callosum);
        c.slow_every = 2;
        c.slow_speed = 0.5;
        c.slot_policy = policy;
        c.probes = 2;
        c.fair_ties = true;
        c.request_rate = 0.5 * c.capacity(10);
        let mut sim = Sim::new(c, 10, 100);
        sim.run_until(Duration::from_secs(10));
        sim.check();
        let p = sim.pooled();
        let slow: i64 = p.iter().step_by(2).sum();
        let fast: i64 = p.iter().skip(1).step_by(2).sum();
        assert_eq!(slow + fast, 300);
        counts.push((slow, fast));
    }
    // Lowest: even; weighted: the half-speed servers hold about half as many.
    let (s, f) = counts[0];
    assert!((s - f).abs() <= 10, "{counts:?}");
    let (s, f) = counts[1];
    assert!(s * 2 >= f - 20 && s * 2 <= f + 20, "{counts:?}");
}

#[test]
fn client_side_balancers_count_their_own_requests_in_flight() {
    for b in [Balancer::P2cLocal, Balancer::PeakEwma] {
        let mut sim = Sim::new(small(b), 10, 40);
        sim.run_until(Duration::from_secs(3));
        sim.check();
        // What the clients think is pending is what the servers hold.
        let pending: u64 = sim
            .clients
            .iter()
            .flat_map(|c| c.peers.iter())
            .map(|p| p.pending as u64)
            .sum();
        let held: u64 = sim
            .servers
            .iter()
            .map(|s| (s.busy as usize + s.queue.len()) as u64)
            .sum();
        assert_eq!(pending, held, "{b:?}");
        assert!(held > 0, "{b:?}: some requests in flight");
        let sent: u64 = sim.sent().iter().sum();
        assert_eq!(sent, sim.counters.ok + held, "{b:?}");
    }
}

#[test]
fn peak_ewma_sends_less_to_slow_servers_than_random_does() {
    let slow_share = |b: Balancer| {
        let mut c = small(b);
        c.slow_every = 2;
        c.slow_speed = 0.25;
        c.request_rate = 0.5 * c.capacity(10);
        let mut sim = Sim::new(c, 10, 40);
        sim.run_until(Duration::from_secs(20));
        let sent = sim.sent();
        let slow: u64 = sent.iter().step_by(2).sum();
        slow as f64 / sent.iter().sum::<u64>() as f64
    };
    let random = slow_share(Balancer::Random);
    let ewma = slow_share(Balancer::PeakEwma);
    let local = slow_share(Balancer::P2cLocal);
    // Random sends half; both client-side P2Cs see their slow answers.
    assert!((random - 0.5).abs() < 0.02, "{random}");
    assert!(ewma < 0.4, "peak ewma {ewma}");
    assert!(local < 0.45, "least-outstanding {local}");
}

#[test]
fn heavy_tail_capacity_counts_its_mean_work() {
    let mut c = small(Balancer::Random);
    c.dist = Dist::HeavyTail;
    // 10 servers x 2 workers / (10 ms x 1.45).
    assert!((c.capacity(10) - 2000.0 / 1.45).abs() < 1e-6);
    c.request_rate = 0.5 * c.capacity(10);
    let mut sim = Sim::new(c, 10, 40);
    sim.run_until(Duration::from_secs(20));
    // Utilisation near the load asked for: works average 1.45.
    let busy: u64 = sim.busy_ns().iter().sum();
    let util = busy as f64 / 1e9 / 20.0 / 20.0;
    assert!((util - 0.5).abs() < 0.05, "{util}");
}

fn adaptive(probes: u32, sample_every: u32) -> VtConfig {
    let mut c = small(Balancer::Callosum);
    c.slow_every = 2;
    c.slow_speed = 0.25;
    c.request_rate = 0.6 * c.capacity(10);
    c.adaptive = Some(callosum_pool::AdaptiveConfig::default());
    c.probes = probes;
    c.sample_every = sample_every;
    c
}

#[test]
fn adaptive_callosum_learns_which_servers_are_slow_from_sampled_leases() {
    let mut sim = Sim::new(adaptive(1, 4), 10, 100);
    sim.run_until(Duration::from_secs(20));
    sim.check();
    // Every client's pool: the slow (even) servers weigh more than the fast.
    let (mut slow, mut fast) = (Vec::new(), Vec::new());
    let mut leases = 0;
    for cl in &sim.clients {
        for s in cl.pool.servers() {
            leases += s.leases;
            if s.estimate_us.is_some() {
                if s.server % 2 == 0 {
                    &mut slow
                } else {
                    &mut fast
                }
                .push(s.weight);
            }
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!(
        mean(&slow) > 1.5 * mean(&fast),
        "{} vs {}",
        mean(&slow),
        mean(&fast)
    );
    // Leases are all counted; one in four timed gives the estimates.
    assert!(leases > 0);
    // So the slow servers hold fewer connections than as specified gives them.
    let pooled_slow = |sim: &Sim| sim.pooled().iter().step_by(2).sum::<i64>();
    let mut plain = adaptive(1, 4);
    plain.adaptive = None;
    let mut spec = Sim::new(plain, 10, 100);
    spec.run_until(Duration::from_secs(20));
    assert!(
        pooled_slow(&sim) < pooled_slow(&spec),
        "{} vs {}",
        pooled_slow(&sim),
        pooled_slow(&spec)
    );
}

#[test]
fn timed_leases_are_one_in_sample_every() {
    let samples = |every: u32| {
        let mut sim = Sim::new(adaptive(1, every), 10, 100);
        sim.run_until(Duration::from_secs(5));
        sim.check();
        (sim.counters.ok, sim.counters.samples)
    };
    // Every lease timed: every answer a sample (but the few in flight).
    let (ok, n) = samples(1);
    assert!(ok > 1000 && n <= ok && n + 100 >= ok, "{n} of {ok}");
    // One in eight: an eighth of them, give or take a lease per client.
    let (ok, n) = samples(8);
    assert!((n as f64 - ok as f64 / 8.0).abs() < 100.0, "{n} of {ok}");
}

#[test]
fn a_tick_with_two_probes_connects_twice() {
    let mut one = Sim::new(adaptive(1, 4), 10, 100);
    let mut two = Sim::new(adaptive(2, 4), 10, 100);
    one.run_until(Duration::from_secs(5));
    two.run_until(Duration::from_secs(5));
    two.check();
    // 100 rovers x 50 ticks (RI 100 ms; one at most unfired per rover).
    assert!(
        (4900..=5000).contains(&one.counters.connects),
        "{}",
        one.counters.connects
    );
    assert_eq!(two.counters.connects, 2 * one.counters.connects);
}

#[test]
fn every_probe_offered_fills_pools_twice_as_fast_as_the_best_one_only() {
    // After one tick (RI 100 ms, first ticks spread over the first 100 ms),
    // empty pools keep one connection a tick, or two when both probes are
    // offered (the JavaScript rover with probes: 2).
    let pooled = |every: bool| {
        let mut c = adaptive(2, 4);
        c.offer_every_probe = every;
        let mut sim = Sim::new(c, 10, 100);
        sim.run_until(Duration::from_millis(100));
        sim.check();
        sim.pooled().iter().sum::<i64>()
    };
    assert_eq!(pooled(false), 100);
    assert_eq!(pooled(true), 200);
}
