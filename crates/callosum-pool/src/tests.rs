use super::*;
use std::collections::BTreeMap;

fn kept(offer: Offer) -> (Handle, Option<Displacement>) {
    match offer {
        Offer::Kept { handle, displaced } => (handle, displaced),
        other => panic!("expected Kept, got {other:?}"),
    }
}

#[test]
fn lends_lowest_idle_slot() {
    let mut p = Pool::new(10);
    let a = kept(p.offer(7, false).unwrap()).0;
    let b = kept(p.offer(2, false).unwrap()).0;
    let c = kept(p.offer(5, false).unwrap()).0;
    assert_eq!(p.lease(), Some(b));
    assert_eq!(p.lease(), Some(c));
    assert_eq!(p.release(b), Ok(Release::Idle));
    assert_eq!(p.lease(), Some(b));
    assert_eq!(p.lease(), Some(a));
    assert_eq!(p.lease(), None);
    assert_eq!(p.slot_count(), 3);
    p.check_invariants();
}

#[test]
fn full_pool_refuses_equal_or_higher_slots() {
    let mut p = Pool::new(2);
    kept(p.offer(1, false).unwrap());
    kept(p.offer(4, false).unwrap());
    assert_eq!(p.offer(4, false), Ok(Offer::Full { highest: 4 }));
    assert_eq!(p.offer(9, false), Ok(Offer::Full { highest: 4 }));
    assert_eq!(p.slot_count(), 2);
    p.check_invariants();
}

#[test]
fn lower_slot_displaces_idle_highest_at_once() {
    let mut p = Pool::new(2);
    kept(p.offer(1, false).unwrap());
    let high = kept(p.offer(8, false).unwrap()).0;
    let (new, d) = kept(p.offer(3, false).unwrap());
    assert_ne!(new, high, "the new entry never reuses the victim's handle");
    assert_eq!(
        d,
        Some(Displacement {
            handle: high,
            slot: 8,
            was_leased: false
        })
    );
    assert_eq!(p.state(high), State::Free);
    assert_eq!(p.slot_count(), 2);
    p.check_invariants();
}

#[test]
fn displaced_leased_entry_is_destroyed_on_return_and_never_lent_again() {
    let mut p = Pool::new(1);
    let high = kept(p.offer(8, false).unwrap()).0;
    assert_eq!(p.lease(), Some(high));
    let (low, d) = kept(p.offer(3, false).unwrap());
    assert_eq!(
        d,
        Some(Displacement {
            handle: high,
            slot: 8,
            was_leased: true
        })
    );
    assert_eq!(p.state(high), State::Displaced);
    assert_eq!(p.stats().displaced, 1);
    assert_eq!(p.lease(), Some(low));
    assert_eq!(p.release(high), Ok(Release::Destroy));
    assert_eq!(p.release(high), Err(Misuse::NotLeased(high, State::Free)));
    assert_eq!(p.slot_count(), 1);
    p.check_invariants();
}

#[test]
fn death_of_displaced_entry_does_not_free_a_slot_twice() {
    // D2: the original decremented slotCount again here.
    let mut p = Pool::new(1);
    let high = kept(p.offer(8, false).unwrap()).0;
    p.lease();
    kept(p.offer(3, false).unwrap());
    assert_eq!(p.remove(high), Ok(State::Displaced));
    assert_eq!(p.slot_count(), 1);
    assert_eq!(
        p.offer(2, false).map(|o| matches!(o, Offer::Kept { .. })),
        Ok(true)
    );
    assert_eq!(p.slot_count(), 1);
    p.check_invariants();
}

#[test]
fn double_release_and_release_of_unknown_are_refused() {
    let mut p = Pool::new(3);
    let a = kept(p.offer(1, false).unwrap()).0;
    assert_eq!(p.release(a), Err(Misuse::NotLeased(a, State::Idle)));
    p.lease();
    assert_eq!(p.release(a), Ok(Release::Idle));
    assert_eq!(p.release(a), Err(Misuse::NotLeased(a, State::Idle)));
    assert_eq!(p.release(99), Err(Misuse::NotLeased(99, State::Free)));
    assert_eq!(p.remove(99), Err(Misuse::NotInUse(99)));
    p.check_invariants();
}

#[test]
fn remove_frees_the_slot_whatever_the_state() {
    let mut p = Pool::new(2);
    let a = kept(p.offer(1, false).unwrap()).0;
    let b = kept(p.offer(2, false).unwrap()).0;
    assert_eq!(p.lease(), Some(a));
    assert_eq!(p.remove(a), Ok(State::Leased));
    assert_eq!(p.remove(b), Ok(State::Idle));
    assert_eq!(p.remove(b), Err(Misuse::NotInUse(b)));
    assert_eq!(p.slot_count(), 0);
    assert_eq!(p.lease(), None);
    p.check_invariants();
}

#[test]
fn offer_with_lease_lends_at_once() {
    let mut p = Pool::new(2);
    let a = kept(p.offer(4, true).unwrap()).0;
    assert_eq!(p.state(a), State::Leased);
    assert_eq!(p.lease(), None);
    assert_eq!(p.release(a), Ok(Release::Idle));
    p.check_invariants();
}

#[test]
fn close_frees_idle_now_and_leased_on_return() {
    let mut p = Pool::new(3);
    let a = kept(p.offer(1, false).unwrap()).0;
    let b = kept(p.offer(2, false).unwrap()).0;
    assert_eq!(p.lease(), Some(a));
    assert_eq!(p.close(), vec![b]);
    p.check_invariants();
    assert_eq!(p.lease(), None);
    assert_eq!(p.offer(0, false), Ok(Offer::Closed));
    assert_eq!(p.slot_count(), 1);
    assert_eq!(p.release(a), Ok(Release::Destroy));
    assert_eq!(p.slot_count(), 0);
    assert_eq!(p.close(), vec![]);
    p.check_invariants();
}

#[test]
fn slots_beyond_safe_integers_are_refused() {
    let mut p = Pool::new(1);
    assert_eq!(
        p.offer(MAX_SLOT + 1, false),
        Err(Misuse::SlotTooLarge(MAX_SLOT + 1))
    );
    assert!(matches!(p.offer(MAX_SLOT, false), Ok(Offer::Kept { .. })));
}

#[test]
fn returned_entry_lent_straight_back_skips_the_heap() {
    let mut p = Pool::new(4);
    let low = kept(p.offer(1, false).unwrap()).0;
    let high = kept(p.offer(5, false).unwrap()).0;
    assert_eq!(p.lease(), Some(low));
    assert_eq!(p.release_all_then_lease(&[low]), Some(low));
    assert_eq!(p.state(high), State::Idle);
    assert_eq!(p.lease(), Some(high));
    // Returned twice in one batch: lent once, the duplicate refused.
    assert_eq!(p.release_all_then_lease(&[high, high, low]), Some(low));
    assert_eq!(p.state(high), State::Idle);
    assert_eq!(p.release_all_then_lease(&[]), Some(high));
    assert_eq!(p.release_all_then_lease(&[]), None);
    p.check_invariants();
}

#[test]
fn memory_is_bounded_by_pool_size_not_operations() {
    // D1: the original grew its max heap on every get/return cycle.
    let mut p = Pool::new(100);
    for s in 0..100 {
        p.offer(s, false).unwrap();
    }
    for _ in 0..1_000_000 {
        let h = p.lease().unwrap();
        p.release(h).unwrap();
    }
    assert_eq!(p.handles_in_use(), 100);
    assert_eq!(p.state.len(), 100);
    assert!(p.idle.len() == 100 && p.kept.len() == 100);
    p.check_invariants();
}

#[test]
fn stats_report_counts_and_extremes() {
    let mut p = Pool::new(3);
    assert_eq!(p.stats().lowest, None);
    p.offer(5, false).unwrap();
    p.offer(2, false).unwrap();
    p.offer(9, false).unwrap();
    p.lease();
    let s = p.stats();
    assert_eq!((s.slot_count, s.idle, s.leased, s.displaced), (3, 2, 1, 0));
    assert_eq!((s.lowest, s.highest), (Some(2), Some(9)));
}

#[test]
fn counters_start_at_zero() {
    assert_eq!(Pool::new(4).counters(), Counters::default());
}

#[test]
fn counts_leases_and_returns() {
    let mut p = Pool::new(4);
    let a = kept(p.offer(1, false).unwrap()).0;
    let b = kept(p.offer(2, false).unwrap()).0;
    assert_eq!(p.lease(), Some(a));
    assert_eq!(p.lease(), Some(b));
    assert_eq!(p.lease(), None, "nothing idle: not a lease");
    assert_eq!((p.counters().leases, p.counters().returns), (2, 0));
    assert_eq!(p.release(a), Ok(Release::Idle));
    assert!(p.release(a).is_err(), "a refused return is not counted");
    assert_eq!((p.counters().leases, p.counters().returns), (2, 1));
    // A batch whose entry goes idle because a lower one is idle already; the
    // duplicate in the batch is refused and not counted.
    assert_eq!(p.release_all_then_lease(&[b, b]), Some(a));
    assert_eq!((p.counters().leases, p.counters().returns), (3, 2));
    // Returned and lent straight back (never through the heap): one return,
    // one lease.
    assert_eq!(p.release_all_then_lease(&[a]), Some(a));
    assert_eq!((p.counters().leases, p.counters().returns), (4, 3));
    assert_eq!(p.release_all_then_lease(&[]), Some(b));
    assert_eq!(p.release_all_then_lease(&[]), None);
    assert_eq!((p.counters().leases, p.counters().returns), (5, 3));
    assert_eq!(p.counters().returns_destroyed, 0);
}

#[test]
fn counts_returns_destroyed_when_displaced_or_closed() {
    let mut p = Pool::new(2);
    let high = kept(p.offer(9, false).unwrap()).0;
    let mid = kept(p.offer(5, false).unwrap()).0;
    assert_eq!(p.lease(), Some(mid));
    assert_eq!(p.lease(), Some(high));
    kept(p.offer(1, false).unwrap()); // displaces the lent 9
    assert_eq!(p.release(high), Ok(Release::Destroy));
    p.close();
    assert_eq!(p.release_all_then_lease(&[mid]), None);
    let c = p.counters();
    assert_eq!((c.returns, c.returns_destroyed), (0, 2));
}

#[test]
fn counts_offers_kept_refused_and_displacing() {
    let mut p = Pool::new(2);
    kept(p.offer(4, false).unwrap());
    kept(p.offer(6, true).unwrap()); // kept and lent at once: kept, no lease
    let c = p.counters();
    assert_eq!(
        (c.offers_kept, c.offers_displacing, c.offers_refused),
        (2, 0, 0)
    );
    assert_eq!(c.leases, 0);
    assert_eq!(p.offer(6, false), Ok(Offer::Full { highest: 6 }));
    assert_eq!(p.offer(7, false), Ok(Offer::Full { highest: 6 }));
    kept(p.offer(2, false).unwrap()); // displaces the lent 6
    kept(p.offer(3, true).unwrap()); // displaces the idle 4
    assert!(
        p.offer(MAX_SLOT + 1, false).is_err(),
        "a misuse is no offer"
    );
    let c = p.counters();
    assert_eq!(
        (c.offers_kept, c.offers_displacing, c.offers_refused),
        (4, 2, 2)
    );
    p.close();
    assert_eq!(p.offer(0, false), Ok(Offer::Closed));
    let c = p.counters();
    assert_eq!(
        (c.offers_kept, c.offers_displacing, c.offers_refused),
        (4, 2, 3)
    );
}

#[test]
fn counts_drops_by_the_state_the_entry_was_in() {
    let mut p = Pool::new(2);
    let idle = kept(p.offer(1, false).unwrap()).0;
    let lent = kept(p.offer(2, true).unwrap()).0;
    assert_eq!(p.remove(idle), Ok(State::Idle));
    assert_eq!(p.remove(idle), Err(Misuse::NotInUse(idle)), "not counted");
    assert_eq!(p.remove(lent), Ok(State::Leased));
    let c = p.counters();
    assert_eq!((c.dropped_idle, c.dropped_leased), (1, 1));
    // Displaced while lent, then died before its return: dropped while lent.
    let high = kept(p.offer(9, true).unwrap()).0;
    kept(p.offer(5, false).unwrap());
    kept(p.offer(3, false).unwrap());
    assert_eq!(p.state(high), State::Displaced);
    assert_eq!(p.remove(high), Ok(State::Displaced));
    let c = p.counters();
    assert_eq!((c.dropped_idle, c.dropped_leased), (1, 2));
    // Closing frees the idle entries: not a drop.
    p.close();
    assert_eq!(p.counters().dropped_idle, 1);
}

/// A tiny deterministic generator, so failures replay (also adaptive_tests.rs's).
pub(crate) struct Rng(pub(crate) u64);
impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The obvious, slow pool: a map of handles to (slot, state).
#[derive(Default)]
struct Model {
    entries: BTreeMap<Handle, (u64, State)>,
    closed: bool,
    counters: Counters,
}

impl Model {
    fn kept(&self) -> impl Iterator<Item = (&Handle, &(u64, State))> {
        self.entries
            .iter()
            .filter(|(_, (_, s))| matches!(s, State::Idle | State::Leased))
    }
    fn lowest_idle(&self) -> Option<Handle> {
        self.entries
            .iter()
            .filter(|(_, (_, s))| *s == State::Idle)
            .min_by_key(|(&h, &(slot, _))| (slot, h))
            .map(|(&h, _)| h)
    }
    fn highest_kept(&self) -> Option<(u64, Handle)> {
        self.kept().map(|(&h, &(slot, _))| (slot, h)).max()
    }
}

#[test]
fn randomized_against_model() {
    // Seeds 41..=80 run the same against an adaptive pool with no samples:
    // every weight is 1, so it must behave exactly as the plain pool.
    for seed in 1..=80u64 {
        let adaptive = seed > 40;
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let max = 1 + rng.below(12) as usize;
        let mut p = if adaptive {
            Pool::new_adaptive(max, AdaptiveConfig::default())
        } else {
            Pool::new(max)
        };
        let mut m = Model::default();
        for step in 0..3_000 {
            let ctx = format!("seed {seed} step {step}");
            match rng.below(100) {
                0..=34 => {
                    let slot = rng.below(30);
                    let lease = rng.below(5) == 0;
                    let got = if adaptive {
                        p.offer_on(rng.below(5) as u32, slot, lease).unwrap()
                    } else {
                        p.offer(slot, lease).unwrap()
                    };
                    let kept_n = m.kept().count();
                    let expect_victim = (kept_n >= max).then(|| m.highest_kept().unwrap());
                    match got {
                        Offer::Closed => {
                            assert!(m.closed, "{ctx}");
                            m.counters.offers_refused += 1;
                        }
                        Offer::Full { highest } => {
                            m.counters.offers_refused += 1;
                            let (hs, _) = expect_victim.expect(&ctx);
                            assert_eq!(highest, hs, "{ctx}");
                            assert!(hs <= slot, "{ctx}");
                        }
                        Offer::Kept { handle, displaced } => {
                            assert!(!m.closed, "{ctx}");
                            assert!(
                                !m.entries.contains_key(&handle),
                                "{ctx}: handle reused while in use"
                            );
                            m.counters.offers_kept += 1;
                            match (expect_victim, displaced) {
                                (None, None) => {}
                                (Some((hs, hh)), Some(d)) => {
                                    m.counters.offers_displacing += 1;
                                    assert!(hs > slot, "{ctx}");
                                    assert_eq!((d.slot, d.handle), (hs, hh), "{ctx}");
                                    let was_leased = m.entries[&hh].1 == State::Leased;
                                    assert_eq!(d.was_leased, was_leased, "{ctx}");
                                    if was_leased {
                                        m.entries.get_mut(&hh).unwrap().1 = State::Displaced;
                                    } else {
                                        m.entries.remove(&hh);
                                    }
                                }
                                other => panic!("{ctx}: {other:?}"),
                            }
                            let st = if lease { State::Leased } else { State::Idle };
                            m.entries.insert(handle, (slot, st));
                        }
                    }
                }
                35..=59 => {
                    let expect = m.lowest_idle();
                    assert_eq!(p.lease(), expect, "{ctx}");
                    if let Some(h) = expect {
                        m.entries.get_mut(&h).unwrap().1 = State::Leased;
                        m.counters.leases += 1;
                    }
                }
                60..=84 => {
                    // Return a random handle, often a valid one, sometimes not.
                    let h = rng.below(max as u64 + 4) as Handle;
                    let expect = match m.entries.get(&h).map(|e| e.1) {
                        Some(State::Leased) if !m.closed => Ok(Release::Idle),
                        Some(State::Leased) | Some(State::Displaced) => Ok(Release::Destroy),
                        other => Err(Misuse::NotLeased(h, other.unwrap_or(State::Free))),
                    };
                    assert_eq!(p.release(h), expect, "{ctx}");
                    match expect {
                        Ok(Release::Idle) => {
                            m.entries.get_mut(&h).unwrap().1 = State::Idle;
                            m.counters.returns += 1;
                        }
                        Ok(Release::Destroy) => {
                            m.entries.remove(&h);
                            m.counters.returns_destroyed += 1;
                        }
                        Err(_) => {}
                    }
                }
                85..=91 => {
                    // A batch of returns then a lease, as the binding applies them.
                    let batch: Vec<Handle> = (0..rng.below(4))
                        .map(|_| rng.below(max as u64 + 4) as Handle)
                        .collect();
                    for &h in &batch {
                        match m.entries.get(&h).map(|e| e.1) {
                            Some(State::Leased) if !m.closed => {
                                m.entries.get_mut(&h).unwrap().1 = State::Idle;
                                m.counters.returns += 1;
                            }
                            Some(State::Leased) | Some(State::Displaced) => {
                                m.entries.remove(&h);
                                m.counters.returns_destroyed += 1;
                            }
                            _ => {}
                        }
                    }
                    let expect = m.lowest_idle();
                    assert_eq!(
                        p.release_all_then_lease(&batch),
                        expect,
                        "{ctx}: batch {batch:?}"
                    );
                    if let Some(h) = expect {
                        m.entries.get_mut(&h).unwrap().1 = State::Leased;
                        m.counters.leases += 1;
                    }
                }
                92..=98 => {
                    let h = rng.below(max as u64 + 4) as Handle;
                    match m.entries.remove(&h) {
                        Some((_, s)) => {
                            assert_eq!(p.remove(h), Ok(s), "{ctx}");
                            match s {
                                State::Idle => m.counters.dropped_idle += 1,
                                _ => m.counters.dropped_leased += 1,
                            }
                        }
                        None => assert_eq!(p.remove(h), Err(Misuse::NotInUse(h)), "{ctx}"),
                    }
                }
                _ => {
                    if rng.below(4) == 0 {
                        let mut freed = p.close();
                        freed.sort();
                        let mut expect: Vec<_> = m
                            .entries
                            .iter()
                            .filter(|(_, e)| e.1 == State::Idle)
                            .map(|(&h, _)| h)
                            .collect();
                        expect.sort();
                        assert_eq!(freed, expect, "{ctx}");
                        m.entries.retain(|_, e| e.1 != State::Idle);
                        m.closed = true;
                    }
                }
            }
            p.check_invariants();
            let s = p.stats();
            assert_eq!(s.slot_count, m.kept().count(), "{ctx}");
            assert_eq!(
                s.displaced,
                m.entries
                    .values()
                    .filter(|e| e.1 == State::Displaced)
                    .count(),
                "{ctx}"
            );
            assert_eq!(p.handles_in_use(), m.entries.len(), "{ctx}");
            assert_eq!(p.counters(), m.counters, "{ctx}");
            for (&h, &(slot, st)) in &m.entries {
                assert_eq!(
                    (p.state(h), p.slot(h)),
                    (st, Some(slot)),
                    "{ctx}: handle {h}"
                );
            }
        }
    }
}

#[test]
fn refuse_from_is_the_highest_kept_slot_of_a_full_pool() {
    let mut pool = Pool::new(2);
    assert_eq!(pool.refuse_from(), None);
    pool.offer(5, false).unwrap();
    assert_eq!(pool.refuse_from(), None, "room left");
    pool.offer(3, true).unwrap();
    assert_eq!(pool.refuse_from(), Some(5));
    assert!(matches!(
        pool.offer(5, false),
        Ok(Offer::Full { highest: 5 })
    ));
    // A displacing offer lowers it; a lent entry counts as kept.
    pool.offer(1, false).unwrap();
    assert_eq!(pool.refuse_from(), Some(3));
    let lent = pool.lease().unwrap();
    pool.offer(0, false).unwrap(); // displaces the lent 3, the highest
    assert_eq!(pool.refuse_from(), Some(1));
    pool.remove(lent).unwrap();
    assert_eq!(pool.refuse_from(), None, "a drop leaves room");
    pool.offer(7, false).unwrap();
    pool.close();
    assert_eq!(
        pool.refuse_from(),
        None,
        "closed: everything is refused anyway"
    );
}
