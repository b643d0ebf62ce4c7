//! Counts the client's transaction retries by reason.
//!
//! [`meridian_client::Client::transaction_with`] retries a retryable
//! failure as a new attempt with the first attempt's wound-wait priority,
//! which the benchmark wants (a hand-made retry loop would lose the
//! priority, and with it wound-wait's freedom from starvation). The
//! number of attempts is counted by the benchmark's own closures; the
//! reason of each retried attempt is taken from the client's
//! `transaction attempt failed; retrying` debug event by this small
//! `tracing` subscriber, which listens to nothing else. Should the event
//! change, retries are still counted, under "unclassified".

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};

/// The client's module, whose events are listened to.
const CLIENT_TARGET: &str = "meridian_client";

/// The message of the client's retry event.
const RETRY_MESSAGE: &str = "transaction attempt failed; retrying";

static REASONS: Mutex<BTreeMap<&'static str, u64>> = Mutex::new(BTreeMap::new());
static SPAN_IDS: AtomicU64 = AtomicU64::new(1);

/// A short name for the reason of a failure, from the error's text (the
/// client's [`meridian_client::Error`] and the node's abort reasons).
pub fn classify(error: &str) -> &'static str {
    let e = error.to_ascii_lowercase();
    if e.contains("wounded") {
        "wounded"
    } else if e.contains("optimistic") || e.contains("conflict") {
        "occ_conflict"
    } else if e.contains("leader changed") {
        "leader_changed"
    } else if e.contains("not the group leader") || e.contains("not the leader") {
        "not_leader"
    } else if e.contains("inactive") {
        "inactive"
    } else if e.contains("overloaded") {
        "overloaded"
    } else if e.contains("unknown to the leader") {
        "unknown_to_leader"
    } else if e.contains("commit arrived") || e.contains("commit did not arrive") {
        "commit_lost"
    } else if e.contains("outcome") && e.contains("unknown") {
        "outcome_unknown"
    } else if e.contains("unavailable") {
        "unavailable"
    } else if e.contains("timed out") || e.contains("deadline") {
        "timeout"
    } else if e.contains("clock") {
        "clock_unhealthy"
    } else if e.contains("aborted") {
        "aborted_other"
    } else {
        "other"
    }
}

/// Installs the listener as the process's global `tracing` subscriber.
/// `false` if another subscriber was installed first (retries are then
/// counted without reasons).
pub fn install() -> bool {
    tracing::subscriber::set_global_default(RetryListener).is_ok()
}

/// The retries seen so far, by reason.
pub fn reasons() -> BTreeMap<&'static str, u64> {
    REASONS.lock().expect("retry reasons lock").clone()
}

/// Counts one retry for `reason`: for a store that retries by itself
/// rather than through the Meridian client.
pub fn note(reason: &'static str) {
    *REASONS
        .lock()
        .expect("retry reasons lock")
        .entry(reason)
        .or_default() += 1;
}

/// Clears the counts (between the load and the run).
pub fn reset() {
    REASONS.lock().expect("retry reasons lock").clear();
}

/// `reasons` completed to `total` retries: whatever the listener did not
/// see is "unclassified".
pub fn by_reason(mut reasons: BTreeMap<&'static str, u64>, total: u64) -> BTreeMap<String, u64> {
    let seen: u64 = reasons.values().sum();
    if total > seen {
        *reasons.entry("unclassified").or_default() += total - seen;
    }
    reasons
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// The subscriber: enabled only for the client's debug events.
struct RetryListener;

fn wanted(meta: &Metadata<'_>) -> bool {
    meta.is_event()
        && *meta.level() <= tracing::Level::DEBUG
        && meta.target().starts_with(CLIENT_TARGET)
}

#[derive(Default)]
struct Fields {
    message: String,
    error: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "error" => self.error = format!("{value:?}"),
            _ => {}
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_string(),
            "error" => self.error = value.to_string(),
            _ => {}
        }
    }
}

impl Subscriber for RetryListener {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if wanted(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        wanted(meta)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::DEBUG)
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(SPAN_IDS.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut f = Fields::default();
        event.record(&mut f);
        if f.message == RETRY_MESSAGE {
            note(classify(&f.error));
        }
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_the_client_errors() {
        assert_eq!(
            classify("transaction aborted: wounded by an older transaction"),
            "wounded"
        );
        assert_eq!(
            classify("transaction aborted: an optimistic read or write conflicted"),
            "occ_conflict"
        );
        assert_eq!(
            classify("transaction aborted: the group leader changed"),
            "leader_changed"
        );
        assert_eq!(
            classify("not the group leader (leader hint: Some(2))"),
            "not_leader"
        );
        assert_eq!(
            classify("cluster unavailable: node 2: http://127.0.0.1:1: Timeout expired"),
            "unavailable"
        );
        assert_eq!(classify("timed out: budget"), "timeout");
        assert_eq!(
            classify("outcome of transaction 1.2 is unknown"),
            "outcome_unknown"
        );
    }

    #[test]
    fn unseen_retries_are_unclassified() {
        let mut seen = BTreeMap::new();
        seen.insert("wounded", 2);
        let all = by_reason(seen, 5);
        assert_eq!(all["wounded"], 2);
        assert_eq!(all["unclassified"], 3);
    }
}
