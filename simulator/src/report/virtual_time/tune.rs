//! What was tried to make Callosum do better: its variants against P2C.

use super::load::{load_config, load_run};
use super::{ms, Opts};
use crate::report::sockets::f2;
use callosum_fleet_sim::vt::{Balancer, SlotPolicy, VtConfig};
use std::time::{Duration, Instant};

/// Callosum variants against P2C at the loads given, on both fleets.
pub fn tune(o: &Opts) {
    let mut o = o.clone();
    if !o.loads_given {
        o.loads = vec![80.0, 95.0];
    }
    let o = &o;
    type Variant = (&'static str, fn(&mut VtConfig));
    let variants: Vec<Variant> = vec![
        ("P2C least-outstanding (reference)", |c| {
            c.balancer = Balancer::P2c
        }),
        ("Callosum as specified", |_| {}),
        ("Callosum, fair tie-break among equal lowest slots", |c| {
            c.fair_ties = true
        }),
        (
            "Callosum, rover probes two servers, offers the lower slot",
            |c| c.probes = 2,
        ),
        ("Callosum, servers announce slot / speed (weighted)", |c| {
            c.slot_policy = SlotPolicy::Weighted
        }),
        ("Callosum, weighted slots and two probes", |c| {
            c.slot_policy = SlotPolicy::Weighted;
            c.probes = 2
        }),
        (
            "Callosum, servers announce slot x (1 + outstanding / workers)",
            |c| c.slot_policy = SlotPolicy::LoadAware,
        ),
        ("Callosum, load-aware slots and two probes", |c| {
            c.slot_policy = SlotPolicy::LoadAware;
            c.probes = 2
        }),
        ("Callosum, MAX_SLOTS 2", |c| c.max_slots = 2),
        ("Callosum, MAX_SLOTS 8", |c| c.max_slots = 8),
        ("Callosum, RI 250 ms", |c| {
            c.roving_interval = Duration::from_millis(250)
        }),
    ];
    let t = Instant::now();
    for slow in [false, true] {
        println!(
            "\n### Callosum variants, {}: p99 ms (p50), utilisation max/mean, requests max/mean\n",
            if slow {
                "10% of the servers 2x slower"
            } else {
                "homogeneous fleet"
            }
        );
        print!("| variant |");
        for l in &o.loads {
            print!(" {l:.0}% |");
        }
        println!("\n|---|{}", "---|".repeat(o.loads.len()));
        for (name, set) in &variants {
            print!("| {name} |");
            for &l in &o.loads {
                let mut c = load_config(o, Balancer::Callosum, slow, l);
                set(&mut c);
                let p = load_run(c, o.servers, o.clients, o.warmup, o.window);
                print!(
                    " {} ({}), {}, {} |",
                    ms(p.p99_ms),
                    ms(p.p50_ms),
                    f2(p.util_max_mean),
                    f2(p.req_max_mean)
                );
            }
            println!();
        }
    }
    println!("\n({:.1} s)", t.elapsed().as_secs_f64());
}
