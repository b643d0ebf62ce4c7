//! The latency model (docs/latency.md) measures something real: every
//! transaction commits, none is answered before its commit wait, and
//! two-phase commit's commit wait runs beside its prepare round.

use meridian_sim::latency::{self, ClockKind, LatencyModel, LatencyRun};

const TXNS: usize = 5;

fn measured(model: &LatencyModel, participants: usize) -> LatencyRun {
    let run =
        latency::run(model, participants, TXNS).expect("no faults: every transaction commits");
    assert_eq!(run.participants, participants);
    assert_eq!(run.txns.len(), TXNS, "every transaction was measured");
    run
}

#[test]
fn two_phase_commit_waits_out_two_epsilon_beside_its_prepare_round_not_after_it() {
    let model = LatencyModel::default();
    let eps = model.epsilon_nanos;
    let one = measured(&model, 1);
    let two = measured(&model, 2);
    for t in one.txns.iter().chain(&two.txns) {
        assert!(t.latency_nanos() > 0 && t.commit_nanos() > 0, "{t:?}");
        // Spanner §4.1.2: s is at least TT.now().latest when the commit
        // arrives, and the answer waits for TT.after(s).
        assert!(
            t.commit_nanos() >= 2 * eps,
            "answered inside commit wait: {t:?}"
        );
        assert!(t.answered > t.commit_ts, "answered before s passed: {t:?}");
        assert!(t.latency_nanos() >= t.commit_nanos(), "{t:?}");
    }
    assert!(one.mean_ms() > 0.0 && one.p99_ms() >= one.mean_ms());
    // Spanner §4.2.1: the commit timestamp's clock bound is taken as the
    // commit arrives, so with 2ε longer than the prepare and commit rounds
    // two-phase commit costs no more than one-phase, and well under the
    // prepare round followed by the commit wait.
    assert!(
        two.mean_ms() * 1e6 < model.sequential_bound_nanos(2) as f64,
        "2PC {} ms: commit wait followed the prepare round (bound {} ms)",
        two.mean_ms(),
        model.sequential_bound_nanos(2) as f64 / 1e6
    );
    // Nothing but the model's costs: no run is faster than its bound.
    assert!(one.mean_ms() * 1e6 >= model.lower_bound_nanos(1) as f64);
    assert!(two.mean_ms() * 1e6 >= model.lower_bound_nanos(2) as f64);
}

#[test]
fn sawtooth_clocks_still_wait_out_commit_wait() {
    let model = LatencyModel {
        clock: ClockKind::Sawtooth,
        ..LatencyModel::default()
    };
    let base = latency::SAWTOOTH.base_epsilon_nanos;
    for t in &measured(&model, 2).txns {
        assert!(t.commit_nanos() >= 2 * base, "{t:?}");
        assert!(t.answered > t.commit_ts, "{t:?}");
    }
}

#[test]
fn a_participant_count_out_of_range_is_refused() {
    let model = LatencyModel::default();
    assert!(latency::run(&model, 0, 1).is_err());
    assert!(latency::run(&model, latency::MAX_PARTICIPANTS + 1, 1).is_err());
}
