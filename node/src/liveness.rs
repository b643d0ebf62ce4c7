//! Which peers this node hears from (docs/operations.md "Status"): the
//! last time each answered this node's hello — the clock check says hello
//! to every known node every [`CLOCK_CHECK_INTERVAL`] — and the metrics
//! address it gave. `meridian status` reports it per node, as the
//! answering node sees it.
//!
//! [`CLOCK_CHECK_INTERVAL`]: crate::server::CLOCK_CHECK_INTERVAL

use std::collections::HashMap;
use std::time::{Duration, Instant};

use meridian_paxos::NodeId;
use parking_lot::Mutex;

/// A peer not heard from for this long is reported down: three missed
/// clock checks.
pub const LIVENESS_TIMEOUT: Duration = Duration::from_secs(3);

/// The last contact with a peer.
#[derive(Clone, Debug)]
struct Contact {
    at: Instant,
    metrics_address: Option<String>,
}

/// A peer's liveness as this node sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerLiveness {
    /// Heard from within [`LIVENESS_TIMEOUT`].
    pub live: bool,
    /// Time since it was last heard from; `None` if never.
    pub since_contact: Option<Duration>,
    /// Its metrics endpoint, as it last said.
    pub metrics_address: Option<String>,
}

/// The last contact with every peer.
#[derive(Debug, Default)]
pub struct Liveness {
    contacts: Mutex<HashMap<NodeId, Contact>>,
}

impl Liveness {
    /// Records that `peer` answered now, with its metrics endpoint.
    pub fn heard(&self, peer: NodeId, metrics_address: Option<String>) {
        self.heard_at(peer, metrics_address, Instant::now());
    }

    fn heard_at(&self, peer: NodeId, metrics_address: Option<String>, at: Instant) {
        self.contacts.lock().insert(
            peer,
            Contact {
                at,
                metrics_address,
            },
        );
    }

    /// `peer`'s liveness now.
    pub fn of(&self, peer: NodeId) -> PeerLiveness {
        self.of_at(peer, Instant::now())
    }

    fn of_at(&self, peer: NodeId, now: Instant) -> PeerLiveness {
        match self.contacts.lock().get(&peer) {
            None => PeerLiveness {
                live: false,
                since_contact: None,
                metrics_address: None,
            },
            Some(c) => {
                let since = now.saturating_duration_since(c.at);
                PeerLiveness {
                    live: since <= LIVENESS_TIMEOUT,
                    since_contact: Some(since),
                    metrics_address: c.metrics_address.clone(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_is_live_until_the_timeout_after_its_last_answer() {
        let l = Liveness::default();
        let t0 = Instant::now();
        assert_eq!(
            l.of_at(2, t0),
            PeerLiveness {
                live: false,
                since_contact: None,
                metrics_address: None
            }
        );
        l.heard_at(2, Some("127.0.0.1:9".into()), t0);
        let p = l.of_at(2, t0 + LIVENESS_TIMEOUT);
        assert!(p.live);
        assert_eq!(p.since_contact, Some(LIVENESS_TIMEOUT));
        assert_eq!(p.metrics_address.as_deref(), Some("127.0.0.1:9"));
        let p = l.of_at(2, t0 + LIVENESS_TIMEOUT + Duration::from_millis(1));
        assert!(!p.live);
    }
}
