//! The three scenarios' tables.

use super::{f2, secs};
use callosum_fleet_sim::fleet::Scenarios;

/// The three scenarios' tables. `note` goes after each title.
pub fn print_scenarios(
    servers: usize,
    clients: usize,
    max_slots: usize,
    roving_ms: u64,
    settle: u32,
    sc: &Scenarios,
    note: &str,
) {
    let ris = roving_ms as f64 / 1e3;
    let (steady, scale, fail) = (&sc.steady, &sc.scale, &sc.fail);

    println!(
        "## Steady state: {servers} servers, {clients} clients, MAX_SLOTS {max_slots}, ROVING_INTERVAL {roving_ms} ms{note}\n"
    );
    println!("| measure | value |\n|---|---|");
    println!(
        "| pools filled (99% of {} slots) after | {} |",
        clients * max_slots,
        secs(steady.fill_secs, ris)
    );
    println!(
        "| then settled for | {} RI, measured over {:.1} s |",
        settle, steady.window_secs
    );
    println!("| connections per server, mean | {:.1} |", steady.conn_mean);
    println!(
        "| connections max/mean (min/mean), window average | {} ({}) |",
        f2(steady.conn_max_mean),
        f2(steady.conn_min_mean)
    );
    println!(
        "| connections max/mean, last instant | {} |",
        f2(steady.conn_max_mean_now)
    );
    println!(
        "| connections max/mean if assigned at random (computed) | {} |",
        f2(steady.random_max_mean)
    );
    println!(
        "| requests per second, whole fleet | {:.0} |",
        steady.req_per_sec
    );
    println!(
        "| requests max/mean (min/mean) per server | {} ({}) |",
        f2(steady.req_max_mean),
        f2(steady.req_min_mean)
    );
    println!(
        "| latency p50 / p99 | {:.1} / {:.1} ms |",
        steady.p50_ms, steady.p99_ms
    );
    println!(
        "| requests failed / found no idle connection | {} / {} |",
        steady.failed, steady.no_connection
    );
    println!(
        "| displacements per second | {:.0} |",
        steady.displaced_per_sec
    );
    println!(
        "| rover attempts per second (the interval asks for {:.0}) | {:.0} |",
        steady.roves_expected, steady.roves_per_sec
    );

    println!(
        "\n## Scale-out: {} servers added to {servers}{note}\n",
        scale.added
    );
    println!("| measure | value |\n|---|---|");
    println!(
        "| mean connections per server before / after | {:.1} / {:.1} |",
        scale.mean_before, scale.mean_after
    );
    println!(
        "| new servers average 50% of the mean after | {} |",
        secs(scale.avg_half_secs, ris)
    );
    println!(
        "| new servers average 80% of the mean after | {} |",
        secs(scale.avg_80_secs, ris)
    );
    println!(
        "| every new server within 20% of the mean after | {} |",
        secs(scale.all_80_secs, ris)
    );
    println!(
        "| new servers' share at the end ({:.1} s) | {:.0}% of the mean |",
        scale.phase_secs,
        scale.new_share_end * 100.0
    );
    println!(
        "| connections max/mean at the end | {} |",
        f2(scale.conn_max_mean_end)
    );
    println!("| displacements during the phase | {} |", scale.displaced);
    println!(
        "| requests failed / found no idle connection | {} / {} |",
        scale.failed, scale.no_connection
    );

    println!(
        "\n## Failure: {} of the {} servers killed at once{note}\n",
        fail.killed,
        servers + scale.added
    );
    println!("| measure | value |\n|---|---|");
    println!(
        "| connections they held | {} of {} |",
        fail.lost, fail.pooled_before
    );
    println!("| requests failed (in flight on them) | {} |", fail.failed);
    println!(
        "| requests that found no idle connection | {} (of {} answered) |",
        fail.no_connection, fail.ok
    );
    println!(
        "| every dead connection dropped from its pool after | {} |",
        secs(fail.dropped_secs, ris)
    );
    println!(
        "| pools back to 99% after | {} |",
        secs(fail.refill_99_secs, ris)
    );
    println!(
        "| pools back to 100% after | {} |",
        secs(fail.refill_full_secs, ris)
    );
    println!(
        "| balance back within 10% of before ({}) after | {} |",
        f2(fail.conn_max_mean_before),
        secs(fail.balance_secs, ris)
    );
    println!(
        "| connections max/mean at the end | {} |",
        f2(fail.conn_max_mean_end)
    );
    println!(
        "| connect attempts refused by the dead servers | {} |",
        fail.connect_failures
    );
}
