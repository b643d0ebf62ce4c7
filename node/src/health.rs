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
    for g in s.cfg.local_groups() {
        let Some(v) = views.get(&g.id) else {
            reasons.push(format!("group {}: replica not started", g.id));
            continue;
        };
        match safe_time_lag(now, v.t_safe) {
            None => reasons.push(format!(
                "group {}: no safe time yet (no leader since start)",
                g.id
            )),
            Some(lag) if lag > max => reasons.push(format!(
                "group {}: safe time {} ms behind the clock (most allowed {} ms)",
                g.id,
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
