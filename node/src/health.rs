//! Liveness and readiness, as the metrics endpoint answers them
//! (docs/operations.md "Health and readiness"): `GET /health` says the
//! process answers; `GET /ready` says the node serves — its clock within
//! its bound, not draining, and every replica's safe time within
//! [`HealthConfig::ready_max_safe_time_lag_ms`] of its clock — as etcd's
//! `/health` and CockroachDB's `/health?ready=1`.
//!
//! [`HealthConfig::ready_max_safe_time_lag_ms`]: crate::config::HealthConfig::ready_max_safe_time_lag_ms

use std::sync::atomic::Ordering;
use std::time::Duration;

use meridian_truetime::{Timestamp, TtInterval};
use serde_json::json;

use crate::service::Shared;

/// How far `t_safe` trails the midpoint of `now` (zero if ahead); `None`
/// while the replica has no safe time yet (recovering, or never led).
pub fn safe_time_lag(now: TtInterval, t_safe: Timestamp) -> Option<Duration> {
    if t_safe == Timestamp::ZERO {
        return None;
    }
    let mid = Timestamp::from_nanos(now.earliest.as_nanos() / 2 + now.latest.as_nanos() / 2);
    Some(if mid > t_safe {
        Duration::from_nanos(mid.nanos_since(t_safe))
    } else {
        Duration::ZERO
    })
}

/// Whether a node serves, and if not, why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readiness {
    /// Ready: every check passed.
    pub ready: bool,
    /// Each failed check, in words.
    pub reasons: Vec<String>,
}

/// The readiness of the node behind `s`.
pub fn readiness(s: &Shared) -> Readiness {
    let mut reasons = Vec::new();
    if !s.clock_ok.load(Ordering::Relaxed) {
        reasons.push(format!(
            "clock out of its bound: {}",
            s.clock_detail.lock().clone()
        ));
    }
    if s.draining.load(Ordering::Acquire) {
        reasons.push("draining".to_string());
    }
    let max = Duration::from_millis(s.cfg.health.ready_max_safe_time_lag_ms);
    let now = s.clock.now();
    let views = s.views.read();
    // The configured replicas and those created at run time.
    let groups: std::collections::BTreeSet<u64> = s
        .cfg
        .local_groups()
        .map(|g| g.id)
        .chain(views.keys().copied())
        .collect();
    for id in groups {
        let Some(v) = views.get(&id) else {
            reasons.push(format!("group {id}: replica not started"));
            continue;
        };
        match safe_time_lag(now, v.t_safe) {
            None => reasons.push(format!(
                "group {id}: no safe time yet (no leader since start)"
            )),
            Some(lag) if lag > max => reasons.push(format!(
                "group {id}: safe time {} ms behind the clock (most allowed {} ms)",
                lag.as_millis(),
                max.as_millis()
            )),
            Some(_) => {}
        }
    }
    Readiness {
        ready: reasons.is_empty(),
        reasons,
    }
}

/// An HTTP answer of the metrics endpoint: status line, content type,
/// body.
pub type Answer = (&'static str, &'static str, String);

/// Content type of the JSON answers.
const JSON: &str = "application/json";

/// `GET /health`: 200 while the process answers.
pub fn health_answer(s: &Shared) -> Answer {
    let body = json!({ "alive": true, "node": s.cfg.node_id });
    ("200 OK", JSON, format!("{body}\n"))
}

/// `GET /ready`: 200 when ready, else 503 with the reasons.
pub fn ready_answer(s: &Shared) -> Answer {
    let r = readiness(s);
    let body = json!({ "ready": r.ready, "node": s.cfg.node_id, "reasons": r.reasons });
    let status = if r.ready {
        "200 OK"
    } else {
        "503 Service Unavailable"
    };
    (status, JSON, format!("{body}\n"))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize};

    use meridian_truetime::{SystemTrueTime, TrueTime};

    use super::*;
    use crate::runtime::GroupView;

    /// A node's shared state without its loop: one node, one group.
    pub(crate) fn shared(dir: &std::path::Path) -> Shared {
        let cfg = crate::cli::local_configs(dir, 1, 1, 1, &[(17_001, 17_002)], 1.0)
            .expect("placeable")
            .pop()
            .expect("one config");
        let members = crate::members::Members::open(1, &cfg.nodes, dir, None).expect("members");
        Shared {
            cfg,
            members: Arc::new(members),
            inbox: crossbeam_channel::unbounded().0,
            views: Default::default(),
            clock: Arc::new(SystemTrueTime::new(1_000_000)),
            clock_ok: Arc::new(AtomicBool::new(true)),
            clock_detail: parking_lot::Mutex::new(String::new()),
            draining: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            metrics: Default::default(),
            stopping: tokio::sync::watch::channel(false).1,
            liveness: Default::default(),
        }
    }

    pub(crate) fn publish(s: &Shared, t_safe: Timestamp) {
        s.views.write().insert(
            1,
            GroupView {
                group: 1,
                t_safe,
                voters: vec![1],
                ..GroupView::default()
            },
        );
    }

    #[test]
    fn ready_means_clock_in_bound_not_draining_and_every_replica_within_the_lag_bound() {
        let d = tempfile::tempdir().expect("tempdir");
        let s = shared(d.path());
        let reasons = |s: &Shared| readiness(s).reasons.join("; ");
        assert!(reasons(&s).contains("group 1: replica not started"));
        publish(&s, Timestamp::ZERO);
        assert!(reasons(&s).contains("group 1: no safe time yet"));
        let now = s.clock.now().earliest;
        publish(&s, now);
        assert_eq!(
            readiness(&s),
            Readiness {
                ready: true,
                reasons: vec![]
            }
        );
        // Past the bound (2 s by default): not ready.
        publish(&s, Timestamp::from_nanos(now.as_nanos() - 2_500_000_000));
        assert!(reasons(&s).contains("safe time 25"), "{}", reasons(&s));
        assert!(reasons(&s).contains("most allowed 2000 ms"));
        publish(&s, s.clock.now().earliest);
        s.draining.store(true, Ordering::Release);
        assert_eq!(reasons(&s), "draining");
        s.draining.store(false, Ordering::Release);
        s.clock_ok.store(false, Ordering::Relaxed);
        *s.clock_detail.lock() = "node 2 is 9 ms away".into();
        assert_eq!(reasons(&s), "clock out of its bound: node 2 is 9 ms away");
        s.clock_ok.store(true, Ordering::Relaxed);
        assert!(readiness(&s).ready);
        let (status, _, body) = ready_answer(&s);
        assert_eq!(status, "200 OK");
        assert!(body.contains("\"ready\":true"), "{body}");
    }
}
