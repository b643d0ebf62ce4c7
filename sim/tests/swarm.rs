//! The simulation suite (docs/design.md §8): the bug-free swarm passes on every
//! layer, every planted bug is caught within a fixed seed budget, and
//! seeds that once failed stay fixed.
//!
//! CI also runs a 300-seed release swarm through the binary (`.ci/run`);
//! `MERIDIAN_SWARM_SEEDS=N cargo test -p meridian-sim --release` widens the
//! bug-free swarm here.

use meridian_sim::check::rules;
use meridian_sim::{Cc, Layer, PlantedBug, RunOptions, Violation, run_seed};

/// Seeds a planted bug must be caught within.
const BUG_BUDGET: u64 = 200;

fn bug_free_seeds() -> u64 {
    std::env::var("MERIDIAN_SWARM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64)
}

fn bug(name: &str) -> PlantedBug {
    PlantedBug::from_name(name).expect("a known bug")
}

/// The first run (seed, layer) within the budget that the bug fails.
fn first_failure(bug: PlantedBug, black_box: bool) -> Option<(u64, Violation)> {
    (0..BUG_BUDGET).find_map(|seed| {
        bug.layers().iter().find_map(|&layer| {
            let opts = RunOptions {
                seed,
                layer,
                planted_bug: Some(bug),
                black_box,
                ..RunOptions::default()
            };
            run_seed(&opts).violation.map(|v| (seed, v))
        })
    })
}

fn assert_caught_as(name: &str, black_box: bool, allowed: &[&str]) {
    let (seed, v) = first_failure(bug(name), black_box)
        .unwrap_or_else(|| panic!("the swarm must catch {name} within {BUG_BUDGET} seeds"));
    eprintln!("{name} caught by seed {seed}: {v}");
    assert!(
        allowed.contains(&v.rule),
        "{name}: seed {seed} failed an unexpected rule: {v}"
    );
}

/// Runs each seed of `layer` without planted bugs; panics on the first
/// violation.
fn assert_seeds_pass(layer: Layer, seeds: impl IntoIterator<Item = u64>) {
    for seed in seeds {
        let opts = RunOptions {
            seed,
            layer,
            ..RunOptions::default()
        };
        if let Some(v) = run_seed(&opts).violation {
            panic!("seed {seed} layer {}: {v}", layer.name());
        }
    }
}

#[test]
fn bug_free_paxos_swarm_passes() {
    assert_seeds_pass(Layer::Paxos, 0..bug_free_seeds());
}

#[test]
fn bug_free_transaction_swarm_passes() {
    assert_seeds_pass(Layer::Txn, 0..bug_free_seeds());
}

#[test]
fn bug_free_cluster_swarm_passes() {
    assert_seeds_pass(Layer::Cluster, 0..bug_free_seeds());
}

/// Seeds of the long election run (docs/verification.md): at most one
/// election after the heal on at least 99.9 % of them.
const ELECTION_RUN_SEEDS: u64 = 20_000;
/// Of every thousand seeds, at most this many may elect more than one
/// leader after the heal (none may elect more than two: that fails the
/// seed in every swarm).
const ELECTIONS_OVER_ONE_PER_MILLE: u64 = 1;

#[test]
#[ignore = "long run (20,000 Paxos seeds, minutes in release): see docs/verification.md"]
fn at_most_one_election_after_the_heal_on_nearly_every_paxos_seed() {
    // MERIDIAN_ELECTION_SEEDS and MERIDIAN_ELECTION_START choose the seeds.
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let seeds = env("MERIDIAN_ELECTION_SEEDS", ELECTION_RUN_SEEDS);
    let start = env("MERIDIAN_ELECTION_START", 0);
    // Elections after the heal -> seeds; seeds that elected more than one.
    let mut histogram = std::collections::BTreeMap::<u64, u64>::new();
    let mut over_one = Vec::new();
    let mut over_two = Vec::new();
    for seed in start..start + seeds {
        let opts = RunOptions {
            seed,
            layer: Layer::Paxos,
            ..RunOptions::default()
        };
        let outcome = run_seed(&opts);
        // A third election fails the seed at once; it is counted here as
        // three, and the run goes on so the distribution is complete.
        let n = match outcome.violation {
            None => outcome.stats.elections_after_heal,
            Some(v) if v.rule == rules::ELECTIONS_AFTER_HEAL => {
                over_two.push(seed);
                3
            }
            Some(v) => panic!("seed {seed} layer paxos: {v}"),
        };
        *histogram.entry(n).or_default() += 1;
        if n > 1 {
            over_one.push(seed);
        }
    }
    let shown: Vec<String> = histogram
        .iter()
        .map(|(n, k)| match n {
            3 => format!("3 or more: {k}"),
            _ => format!("{n}: {k}"),
        })
        .collect();
    eprintln!(
        "elections after the heal, seeds {start}..{}: {} (elections: seeds); more than one on {over_one:?}",
        start + seeds,
        shown.join(", ")
    );
    assert!(
        over_two.is_empty(),
        "seeds {over_two:?} elected three leaders"
    );
    assert!(
        over_one.len() as u64 * 1000 <= seeds * ELECTIONS_OVER_ONE_PER_MILLE,
        "{} of {seeds} seeds elected more than one leader after the heal",
        over_one.len()
    );
}

#[test]
fn paxos_regression_seeds_pass() {
    // Seeds that once failed: an isolated old leader's queued proposal was
    // taken for a lost commit (the liveness check now asks only for a
    // command that committed after healing).
    // 375: after a power loss, a replica holding an uncommitted
    // configuration entry ignored every candidate of the chosen
    // configuration, whose logs it would have voted for, so no one could
    // win (a stale-epoch refusal now uses the chosen configuration).
    // 9100052: three elections after the heal. A candidate partitioned
    // in its campaign at (21, 5) kept that promise and refused the
    // (21, 3) leader elected at the heal, deposing it; a stale-logged
    // candidate then won and a more up-to-date one deposed it. A candidate
    // now yields to the leader of its own round
    // (`pms_s3_a_candidate_yields_to_the_leader_of_its_own_round`).
    assert_seeds_pass(Layer::Paxos, [23, 31, 62, 87, 296, 375, 9_100_052]);
}

#[test]
fn transaction_regression_seeds_pass() {
    // 233, 393: a commit whose entry was overwritten in the replica's log
    // was tracked by slot alone, and the replica's later proposal at that
    // slot replaced it, leaving it unanswered forever (a slot now tracks
    // every commit placed there until the slot applies). These seeds
    // reproduce it with the simulator's draws as of that fix; a change to
    // what the simulator draws moves the bug to other seeds. The two
    // leader-timestamp fixes have deterministic tests in the txn crate
    // (`spanner_s4_2_2_leader_strong_read_sees_what_a_follower_already_applied`,
    // `a_transaction_without_writes_is_not_placed_below_what_a_follower_showed`).
    // 228, 498: crowded seeds. The oldest transaction was refused by full
    // lock queues while younger waiters kept their places (starved), and an
    // upgrading holder was refused by the waiters that waited for it (both
    // stuck); a request now displaces a younger last waiter (scenario
    // `queue_full.txt` in the participant crate pins it).
    assert_seeds_pass(Layer::Txn, [228, 233, 393, 498]);
}

#[test]
fn cluster_regression_seeds_pass() {
    // Txn layer, --cc occ, seed 860: three elections after the heal (a
    // second candidate, pre-voted just before the first one won, deposed
    // it); a fresh promise now holds off other pre-votes
    // (`raft_s9_6_a_replica_that_just_promised_a_candidate_refuses_other_pre_votes_for_a_while`
    // pins it). Cluster seed 243: a client spent its liveness bound on
    // lock-free reads at a replica removed from its group, which waited
    // for a safe time that could not move; such a replica now refuses at
    // once.
    let occ = RunOptions {
        seed: 860,
        layer: Layer::Txn,
        cc: Cc::Occ,
        ..RunOptions::default()
    };
    if let Some(v) = run_seed(&occ).violation {
        panic!("seed 860 layer txn cc occ: {v}");
    }
    // Cluster seed 263: after the heal three rounds of same-round duels
    // (followers that had just backed a candidate's pre-vote timed out a
    // millisecond later and campaigned too); a follower granting a pre-vote
    // now waits a full election timeout before its own campaign
    // (`raft_s9_6_a_follower_that_grants_a_pre_vote_waits_a_full_election_timeout_before_campaigning`).
    // Cluster seeds 185, 204, 276 and 293: once prepare timestamps stopped
    // reading the clock, a writer waiting behind a commit without writes
    // prepared below that commit's timestamp (a read that missed a write
    // serialized before it); the leader now raises its floor to it. Seed
    // 257: an older scan and a younger coordinator prepared at its home
    // group waited for each other until the client gave up, again and
    // again (the older one starved); a scan waiting for prepared keys now
    // wounds their coordinators
    // (`spanner_s4_2_1_wound_wait_holds_across_groups_for_a_scan_waiting_on_a_prepared_key`).
    // Seed 283, crowded: clients that gave up an attempt while its read
    // waited for a lock at a guest group aborted it only where reads had
    // been answered; the waiter, never taken for inactive, kept its place
    // in a one-waiter queue for good, older than every later transaction,
    // and a client starved behind it. A client now aborts at the group of
    // its unanswered read too.
    // Seed 634, wide ε: the end-of-run safe-time check took a transaction
    // still prepared at the end (its two commit waits of up to 2ε each) for
    // closes that had stopped; the check now measures `t_paxos_safe`, the
    // part closes advance, and leaves prepared transactions to the atomic
    // commitment check.
    // Seed 99, splits: a prepare queued at the parent leader for a
    // timestamp ahead of the clock was overtaken by a split that gave its
    // key away; chosen after the split had applied, it was void, yet voted
    // yes (the leader checked only its own split still in flight). A
    // prepare chosen behind an applied split now votes no, and a split
    // waits behind every record already queued. Seed 246, splits: a
    // coordinator collecting votes held a range lock across the split key;
    // the split moved the right half without its lock and the child took a
    // write there below the coordinator's commit timestamp (its scan missed
    // it). Such a coordinator is now wounded when the split applies, and
    // no commit record of a transaction holding locks in the right half is
    // proposed while a split is in flight (docs/design.md §9). Seed 542,
    // splits: the simulator synced a split child's initial state later
    // than its parent's next persists; a crash kept the parent's snapshot
    // past the split (recovery from it emits no seed) and lost the child on
    // that machine, whose clients then waited on it for ever. The child's
    // initial state is now synced in the step that applied the split, as
    // the node's driver does.
    assert_seeds_pass(
        Layer::Cluster,
        [99, 185, 204, 243, 246, 257, 263, 276, 283, 293, 542, 634],
    );
    // Txn layer, --cc 2pl, seed 551: a crowded seed where range requests
    // queued behind a full key queue's younger last waiter kept the oldest
    // transaction from displacing it (LockQueueFull on every retry); the
    // lock table test
    // `spanner_s4_2_1_a_full_queue_never_refuses_an_older_request_a_younger_waiter_could_make_room_for`
    // pins it.
    // Seeds 523 (txn) and 149 (cluster), --cc 2pl: the first fix left the
    // waiter it wounded marked but unreported when the table's total
    // bound then refused the request (unanswered requests; an upgrade
    // pair waiting for each other).
    // Cluster seed 83, --cc 2pl: after the heal one replica held its own
    // campaign's promise from before a power loss, refused every lower
    // ballot, and deposed two leaders in turn (three elections); a
    // candidate shown a higher round now campaigns above it before leading
    // (`pms_s3_a_candidate_told_of_a_higher_promise_campaigns_above_it_instead_of_leading`).
    for (seed, layer) in [
        (551, Layer::Txn),
        (523, Layer::Txn),
        (149, Layer::Cluster),
        (83, Layer::Cluster),
    ] {
        let crowded = RunOptions {
            seed,
            layer,
            cc: Cc::TwoPl,
            ..RunOptions::default()
        };
        if let Some(v) = run_seed(&crowded).violation {
            panic!("seed {seed} layer {} cc 2pl: {v}", layer.name());
        }
    }
}

#[test]
fn planted_lease_overlap_is_caught_as_overlapping_leases() {
    assert_caught_as(
        "lease-overlap",
        false,
        &[rules::LEASE_DISJOINT, rules::TS_MONOTONIC],
    );
}

#[test]
fn planted_hand_over_skips_lease_wait_is_caught_as_overlapping_leases() {
    // docs/design.md §3: a replica taking over from a leader that hands
    // over still waits out every lease its promisers granted. The swarm
    // asks new leaders to hand over while they may still be waiting out
    // a deposed leader's lease; without the wait, the target's lease
    // overlaps that one, and the deposed leader may serve a read that
    // misses the target's write before the lease check sees both (the
    // first catching seed on a split cluster, 8, is such a stale read).
    assert_caught_as(
        "hand-over-skips-lease-wait",
        false,
        &[
            rules::LEASE_DISJOINT,
            rules::TS_MONOTONIC,
            rules::SNAPSHOT_READ,
        ],
    );
}

#[test]
fn planted_ack_before_persist_is_caught() {
    assert_caught_as(
        "ack-before-persist",
        false,
        &[
            rules::ONE_VALUE_PER_SLOT,
            rules::ACKED_NOT_LOST,
            rules::ACKED_IN_LOG,
            rules::APPLIED_PREFIX,
            rules::CORE_ASSERTION,
        ],
    );
}

#[test]
fn planted_forget_promise_is_caught() {
    assert_caught_as(
        "forget-promise",
        false,
        &[
            rules::ONE_VALUE_PER_SLOT,
            rules::ACKED_NOT_LOST,
            // A slot chosen twice shows at the transaction layer as an
            // acknowledged commit whose slot holds other writes.
            rules::ACKED_IN_LOG,
            rules::APPLIED_PREFIX,
            rules::CORE_ASSERTION,
        ],
    );
}

#[test]
fn planted_lease_vote_from_earliest_is_caught_in_an_edge_pause() {
    // Spanner §4.1.1: a lease vote runs to latest + lease. Timed from
    // earliest it ends up to 2ε early in true time. On edge-pause seeds
    // the clocks sit at opposite edges of their ε (the leader's narrow,
    // the campaigner ahead, the other voters behind with a wide ε), the
    // leader's last rounds reach every follower but the campaigner, and
    // the leader pauses: the campaigner wins with the others' short votes
    // and holds a lease while the paused leader still does.
    assert_caught_as("lease-vote-from-earliest", false, &[rules::LEASE_DISJOINT]);
}

#[test]
fn planted_same_round_ballot_is_caught_in_a_duel() {
    // PMS §2.5: ballots are (round, node). Acceptors that compare rounds
    // alone promise both candidates of one round; on duel seeds every
    // replica restarts at once with election timers in lockstep, two
    // candidates campaign in one round, both lead, and each has its own
    // no-op chosen in one slot.
    assert_caught_as(
        "same-round-ballot",
        false,
        &[
            rules::ONE_VALUE_PER_SLOT,
            rules::ACKED_NOT_LOST,
            rules::ACKED_IN_LOG,
            rules::APPLIED_PREFIX,
            rules::CORE_ASSERTION,
            // Leaders deposing each other in one round.
            rules::ELECTIONS_AFTER_HEAL,
            rules::LIVENESS,
            // In the transaction layers: two leaders of one round.
            rules::CONVERGE,
            rules::LEASE_DISJOINT,
        ],
    );
}

#[test]
fn planted_count_old_ballot_is_caught_by_the_figure_eight_schedule() {
    // Raft §5.4.2, Figure 8: a leader writes entries no one sees and
    // crashes, a successor writes its no-op in that slot and crashes, the
    // first wins again and counts its old entries chosen once a quorum
    // holds them; it crashes before its own no-op is there, and the
    // successor returns, wins, and overwrites them.
    assert_caught_as(
        "count-old-ballot",
        false,
        &[
            rules::ONE_VALUE_PER_SLOT,
            rules::ACKED_NOT_LOST,
            rules::ACKED_IN_LOG,
            rules::APPLIED_PREFIX,
            rules::CORE_ASSERTION,
        ],
    );
}

#[test]
fn planted_skip_commit_wait_is_caught_as_an_early_acknowledgement() {
    assert_caught_as("skip-commit-wait", false, &[rules::COMMIT_WAIT]);
}

#[test]
fn planted_skip_commit_wait_is_caught_by_the_history_checker_alone() {
    // Without the white-box commit-wait rule: a client that learned of a
    // commit before its timestamp passed later reads below it, or a
    // transaction without writes lets go of its locks before its
    // timestamp has passed and a write slips in below it.
    assert_caught_as(
        "skip-commit-wait",
        true,
        &[rules::REAL_TIME, rules::SNAPSHOT_READ, rules::SERIALIZABLE],
    );
}

#[test]
fn planted_read_without_safe_time_is_caught_as_a_wrong_snapshot() {
    assert_caught_as(
        "read-without-safe-time",
        false,
        &[rules::SNAPSHOT_READ, rules::BANK_TOTAL, rules::REAL_TIME],
    );
}

#[test]
fn planted_read_without_lease_is_caught_as_a_stale_read() {
    assert_caught_as(
        "read-without-lease",
        false,
        &[
            rules::REAL_TIME,
            rules::FRESH_LOCKING_READ,
            rules::SNAPSHOT_READ,
            // A deposed leader that still answers may call a transaction
            // aborted that its successor committed.
            rules::ABORTED_NO_EFFECT,
            // Cluster seed 20 (crowded, with splits): under the bug one
            // client's first commit after the heal comes 26 ms past the
            // liveness bound; the same seed passes without the bug.
            rules::CLIENT_LIVENESS,
        ],
    );
}

#[test]
fn planted_read_ts_not_remembered_is_caught_as_a_wrong_snapshot() {
    assert_caught_as(
        "read-ts-not-remembered",
        false,
        &[
            rules::SNAPSHOT_READ,
            rules::BANK_TOTAL,
            rules::REAL_TIME,
            rules::SERIALIZABLE,
        ],
    );
}

#[test]
fn planted_no_wound_is_caught_as_a_deadlock() {
    assert_caught_as("no-wound", false, &[rules::NO_DEADLOCK]);
}

#[test]
fn planted_skip_occ_validation_is_caught_as_a_stale_read() {
    assert_caught_as(
        "skip-occ-validation",
        false,
        &[rules::SERIALIZABLE, rules::ROSTER, rules::BANK_TOTAL],
    );
}

#[test]
fn planted_commit_ts_below_prepare_is_caught() {
    // A participant refuses to apply a decision below its prepare
    // timestamp (the replica stops rather than diverge).
    assert_caught_as(
        "commit-ts-below-prepare",
        false,
        &[rules::CORE_ASSERTION, rules::SERIALIZABLE, rules::REAL_TIME],
    );
}

#[test]
fn planted_coordinator_forgets_decision_is_caught_as_a_torn_commit() {
    assert_caught_as(
        "coordinator-forgets-decision",
        false,
        &[rules::ATOMIC_COMMIT, rules::ACKED_IN_LOG],
    );
}

#[test]
fn planted_no_lock_rebuild_after_failover_is_caught() {
    assert_caught_as(
        "no-lock-rebuild-after-failover",
        false,
        &[
            rules::SERIALIZABLE,
            rules::FRESH_LOCKING_READ,
            rules::CORE_ASSERTION,
            rules::ELLE_LIST_APPEND,
            rules::ROSTER,
        ],
    );
}

#[test]
fn planted_release_read_locks_at_prepare_is_caught() {
    assert_caught_as(
        "release-read-locks-at-prepare",
        false,
        &[
            rules::SERIALIZABLE,
            rules::CORE_ASSERTION,
            rules::ELLE_LIST_APPEND,
            rules::ROSTER,
        ],
    );
}

#[test]
fn planted_scan_without_range_lock_is_caught_as_a_phantom() {
    assert_caught_as(
        "scan-without-range-lock",
        false,
        &[rules::SERIALIZABLE, rules::ROSTER],
    );
}

#[test]
fn planted_txn_status_presumes_abort_is_caught_as_an_aborted_answer_that_committed() {
    // docs/design.md §5.5: clients whose commit timed out ask TxnStatus;
    // an Aborted answer for a commit still in flight is contradicted by
    // the log.
    assert_caught_as(
        "txn-status-presumes-abort",
        false,
        &[rules::TXN_STATUS, rules::ABORTED_NO_EFFECT],
    );
}

#[test]
fn planted_decision_ack_before_durable_is_caught_as_a_torn_commit() {
    // Spanner §4.2.1: a participant acknowledges a decision only once its
    // own record of it is chosen and durable. Acknowledged early, the
    // coordinator forgets the transaction; a participant leader that fails
    // before the record is chosen leaves a successor that finds the
    // transaction prepared, asks, and is told abort (presumed abort). The
    // swarm opens the window on purpose (participant-crashes-before-durable).
    assert_caught_as(
        "decision-ack-before-durable",
        false,
        &[
            rules::ATOMIC_COMMIT,
            rules::ACKED_IN_LOG,
            rules::CORE_ASSERTION,
        ],
    );
}

#[test]
fn planted_prepare_revives_aborted_is_caught() {
    // A prepare that arrives after the transaction aborted at the
    // participant must be refused: revived, it prepares writes computed
    // from reads whose locks it lost (window prepare-after-decide, and
    // every wound before a prepare).
    assert_caught_as(
        "prepare-revives-aborted",
        false,
        &[
            rules::SERIALIZABLE,
            rules::BANK_TOTAL,
            rules::ROSTER,
            rules::ELLE_LIST_APPEND,
            rules::ATOMIC_COMMIT,
            rules::CORE_ASSERTION,
            rules::ABORTED_NO_EFFECT,
        ],
    );
}

#[test]
fn planted_split_child_lease_overlap_is_caught_as_overlapping_leases() {
    // docs/design.md §9: a child replica starts with its node's parent
    // replica's promise and lease grant; without them a child follower
    // votes at once for a candidate while the inherited lease still runs
    // (the parent's leader paused just after the split reached its
    // followers).
    assert_caught_as(
        "split-child-lease-overlap",
        false,
        &[
            rules::LEASE_DISJOINT,
            rules::REAL_TIME,
            rules::SNAPSHOT_READ,
        ],
    );
}

#[test]
fn planted_split_child_safe_time_from_zero_is_caught() {
    // The child's timestamp floor must be the parent leader's: from zero,
    // its leader assigns Paxos timestamps below the parent's, and writes
    // land below reads the parent already served.
    assert_caught_as(
        "split-child-safe-time-from-zero",
        false,
        &[
            rules::TS_MONOTONIC,
            rules::SNAPSHOT_READ,
            rules::REAL_TIME,
            rules::SERIALIZABLE,
            rules::CORE_ASSERTION,
        ],
    );
}

#[test]
fn planted_split_drops_prepared_is_caught_as_a_torn_commit() {
    // Prepared transactions with keys in the right half must move to the
    // child: dropped, their decision writes nothing there.
    assert_caught_as(
        "split-drops-prepared",
        false,
        &[
            rules::ATOMIC_COMMIT,
            rules::ACKED_IN_LOG,
            rules::SERIALIZABLE,
            rules::BANK_TOTAL,
            rules::ELLE_LIST_APPEND,
            rules::ROSTER,
            rules::CORE_ASSERTION,
        ],
    );
}

#[test]
fn planted_split_ack_before_child_decides_is_caught_as_a_torn_commit() {
    // The parent acknowledges a moved transaction's decision only once the
    // child applied it; earlier, the coordinator forgets it and a child
    // leader that fails first is told to abort (presumed abort).
    assert_caught_as(
        "split-ack-before-child-decides",
        false,
        &[
            rules::ATOMIC_COMMIT,
            rules::ACKED_IN_LOG,
            rules::SERIALIZABLE,
            rules::BANK_TOTAL,
            rules::ELLE_LIST_APPEND,
            rules::CORE_ASSERTION,
        ],
    );
}

#[test]
fn planted_stale_descriptor_served_is_caught_as_a_stale_read() {
    // A replica must refuse keys a split moved away: lock-free reads that
    // skip the check, sent by clients with stale range caches, see the
    // parent's frozen history instead of the child's commits.
    assert_caught_as(
        "stale-descriptor-served",
        false,
        &[
            rules::SNAPSHOT_READ,
            rules::REAL_TIME,
            rules::SERIALIZABLE,
            rules::BANK_TOTAL,
            rules::ROSTER,
            rules::ELLE_LIST_APPEND,
        ],
    );
}

#[test]
fn every_concurrency_mode_passes_in_both_transaction_layers() {
    for cc in [Cc::TwoPl, Cc::Occ, Cc::Mixed] {
        for layer in Layer::TRANSACTIONAL {
            for seed in 0..8 {
                let opts = RunOptions {
                    seed,
                    layer,
                    cc,
                    ..RunOptions::default()
                };
                if let Some(v) = run_seed(&opts).violation {
                    panic!("seed {seed} layer {} cc {}: {v}", layer.name(), cc.name());
                }
            }
        }
    }
}

#[test]
fn one_seed_replays_identically() {
    for layer in Layer::ALL {
        let opts = RunOptions {
            seed: 7,
            layer,
            ..RunOptions::default()
        };
        let a = run_seed(&opts).into_result().expect("seed 7 passes");
        let b = run_seed(&opts).into_result().expect("seed 7 passes");
        assert_eq!(a, b, "layer {}", layer.name());
    }
}

#[test]
fn a_broken_clock_bound_is_caught() {
    // docs/design.md §2: TrueTime's promise is the one assumption leases and
    // commit wait rest on; when every clock errs beyond its ε, the checkers
    // must notice.
    assert_caught_as(
        "clock-bound-broken",
        false,
        &[
            rules::COMMIT_WAIT,
            rules::LEASE_DISJOINT,
            rules::TS_MONOTONIC,
            rules::REAL_TIME,
            rules::SNAPSHOT_READ,
        ],
    );
}

#[test]
fn a_clock_out_of_bound_is_harmless_once_the_driver_reports_it() {
    // docs/design.md §2: on some seeds a replica's clock runs away from
    // true time, far beyond its ε. Unreported (`clock-unmonitored`), the
    // replica keeps leading and serving on it and the checkers fail;
    // reported (Input::ClockHealth, as the swarm's driver does before the
    // interval stops holding true time), the same seeds pass.
    let bug = bug("clock-unmonitored");
    let allowed = [
        rules::COMMIT_WAIT,
        rules::LEASE_DISJOINT,
        rules::TS_MONOTONIC,
        rules::REAL_TIME,
        rules::SNAPSHOT_READ,
        rules::FRESH_LOCKING_READ,
        rules::SERIALIZABLE,
    ];
    let mut caught = Vec::new();
    for seed in 0..BUG_BUDGET {
        for &layer in bug.layers() {
            let opts = RunOptions {
                seed,
                layer,
                planted_bug: Some(bug),
                ..RunOptions::default()
            };
            if let Some(v) = run_seed(&opts).violation {
                assert!(
                    allowed.contains(&v.rule),
                    "seed {seed} layer {}: unexpected rule: {v}",
                    layer.name()
                );
                caught.push((seed, layer));
            }
        }
        if caught.len() >= 4 {
            break;
        }
    }
    assert!(
        !caught.is_empty(),
        "unreported clock excursions must be caught within {BUG_BUDGET} seeds"
    );
    for (seed, layer) in caught {
        let opts = RunOptions {
            seed,
            layer,
            ..RunOptions::default()
        };
        if let Some(v) = run_seed(&opts).violation {
            panic!(
                "seed {seed} layer {}: with its clock reported, it must pass: {v}",
                layer.name()
            );
        }
    }
}
