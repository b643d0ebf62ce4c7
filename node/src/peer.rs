//! Node-to-node transport (docs/design.md §6): one outbound gRPC stream per
//! peer carrying coalesced batches of Paxos and two-phase-commit messages,
//! the inbound side that decodes them into the loop's inbox, and the hello
//! that checks a peer's cluster id and samples its clock.

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Sender;
use meridian_paxos::NodeId;
use meridian_proto::pb;
use meridian_proto::pb::peer_client::PeerClient;
use meridian_proto::pb::peer_server::Peer;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Response, Status, Streaming};

use crate::codec;
use crate::metrics::Metrics;
use crate::runtime::Event;

/// Most messages queued for one peer; beyond it the newest are dropped
/// (Paxos and two-phase commit resend what matters).
pub const PEER_QUEUE: usize = 65_536;

/// Most messages coalesced into one batch.
pub const MAX_BATCH_MESSAGES: usize = 1024;

/// Batches in flight on one stream before the sender waits.
const STREAM_WINDOW: usize = 64;

/// Pause before reconnecting to a peer whose stream failed.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(100);

/// Connection timeout to a peer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// HTTP/2 keepalive: ping interval and the time without an answer after
/// which the connection is dropped, so a partitioned peer is noticed.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(1);
/// See [`KEEPALIVE_INTERVAL`].
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(2);

/// Deadline of a hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(1);

/// Who this node is, as its messages say.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The node.
    pub node: NodeId,
    /// Its cluster.
    pub cluster_id: u64,
    /// Its configuration epoch.
    pub epoch: u64,
}

impl Identity {
    /// The header every message carries.
    pub fn header(&self) -> pb::Header {
        pb::Header {
            cluster_id: self.cluster_id,
            epoch: self.epoch,
        }
    }
}

/// A channel to `address` (`host:port`) with keepalive and timeouts, and
/// TLS when configured.
pub fn channel(address: &str, tls: Option<&ClientTlsConfig>) -> Result<Channel, String> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut ep = Endpoint::from_shared(format!("{scheme}://{address}"))
        .map_err(|e| format!("bad peer address {address:?}: {e}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true)
        .tcp_nodelay(true);
    if let Some(tls) = tls {
        ep = ep
            .tls_config(tls.clone())
            .map_err(|e| format!("TLS configuration for {address}: {e}"))?;
    }
    Ok(ep.connect_lazy())
}

/// Drains `rx` into batches and streams them to the peer, reconnecting
/// after failures; runs until `rx` closes.
pub async fn run_sender(
    me: Identity,
    to: NodeId,
    chan: Channel,
    mut rx: mpsc::Receiver<pb::PeerMessage>,
    metrics: Arc<Metrics>,
) {
    loop {
        let (batch_tx, batch_rx) = mpsc::channel::<pb::PeerBatch>(STREAM_WINDOW);
        let mut client = PeerClient::new(chan.clone())
            .max_encoding_message_size(meridian_proto::MAX_MESSAGE_BYTES)
            .max_decoding_message_size(meridian_proto::MAX_MESSAGE_BYTES);
        let call = tokio::spawn(async move {
            client
                .stream(Request::new(ReceiverStream::new(batch_rx)))
                .await
        });
        loop {
            let Some(first) = rx.recv().await else {
                call.abort();
                return;
            };
            let mut messages = Vec::with_capacity(16);
            messages.push(first);
            while messages.len() < MAX_BATCH_MESSAGES {
                match rx.try_recv() {
                    Ok(m) => messages.push(m),
                    Err(_) => break,
                }
            }
            let batch = pb::PeerBatch {
                header: Some(me.header()),
                from: me.node,
                messages,
            };
            if batch_tx.send(batch).await.is_err() {
                break;
            }
            metrics.peer_batches.inc();
        }
        match call.await {
            Ok(Err(status)) if status.code() == tonic::Code::PermissionDenied => {
                tracing::error!(peer = to, %status, "peer refuses this node's messages");
            }
            Ok(Err(status)) => tracing::debug!(peer = to, %status, "peer stream ended"),
            _ => {}
        }
        tokio::time::sleep(RECONNECT_BACKOFF).await;
        // What queued while the stream was down is stale: drop it.
        while rx.try_recv().is_ok() {}
    }
}

/// Checks a message header against this node's identity.
pub fn check_header(me: &Identity, h: Option<&pb::Header>) -> Result<(), Status> {
    let Some(h) = h else {
        return Err(Status::invalid_argument("missing header"));
    };
    if h.cluster_id != me.cluster_id {
        return Err(Status::permission_denied(format!(
            "cluster id mismatch: node {} belongs to cluster {}, the message names cluster {}",
            me.node, me.cluster_id, h.cluster_id
        )));
    }
    if h.epoch != me.epoch {
        return Err(Status::permission_denied(format!(
            "configuration epoch mismatch: node {} is at epoch {}, the message names epoch {}",
            me.node, me.epoch, h.epoch
        )));
    }
    Ok(())
}

/// The inbound side of the peer service.
pub struct PeerService {
    /// This node.
    pub me: Identity,
    /// The loop's inbox.
    pub inbox: Sender<Event>,
    /// This node's clock.
    pub clock: Arc<dyn meridian_truetime::TrueTime>,
    /// Its ε in nanoseconds.
    pub epsilon: u64,
    /// Its metrics endpoint (`host:port`), told to peers in hellos; "" if
    /// none.
    pub metrics_address: String,
}

#[tonic::async_trait]
impl Peer for PeerService {
    async fn stream(
        &self,
        request: Request<Streaming<pb::PeerBatch>>,
    ) -> Result<Response<pb::PeerStreamEnd>, Status> {
        let mut s = request.into_inner();
        while let Some(batch) = s.message().await? {
            check_header(&self.me, batch.header.as_ref())?;
            for m in batch.messages {
                let ev = match m.body {
                    Some(pb::peer_message::Body::Paxos(b)) => match codec::decode_message(&b) {
                        Ok(msg) => Event::Peer {
                            group: m.group,
                            msg,
                        },
                        Err(e) => {
                            tracing::warn!(from = batch.from, error = %e, "undecodable peer message");
                            continue;
                        }
                    },
                    Some(pb::peer_message::Body::GroupMessage(b)) => {
                        match codec::decode_group_message(&b) {
                            Ok(msg) => Event::FromGroup {
                                group: m.group,
                                msg,
                            },
                            Err(e) => {
                                tracing::warn!(from = batch.from, error = %e, "undecodable group message");
                                continue;
                            }
                        }
                    }
                    None => continue,
                };
                if self.inbox.send(ev).is_err() {
                    return Err(Status::unavailable("node is shutting down"));
                }
            }
        }
        Ok(Response::new(pb::PeerStreamEnd {}))
    }

    async fn hello(
        &self,
        request: Request<pb::HelloRequest>,
    ) -> Result<Response<pb::HelloResponse>, Status> {
        let req = request.into_inner();
        let error = check_header(&self.me, req.header.as_ref())
            .err()
            .map(|s| pb::Error {
                message: s.message().to_string(),
                kind: Some(pb::error::Kind::ClusterMismatch(pb::ClusterMismatch {
                    expected: self.me.cluster_id,
                    got: req.header.as_ref().map_or(0, |h| h.cluster_id),
                })),
            });
        let now = self.clock.now();
        Ok(Response::new(pb::HelloResponse {
            error,
            node: self.me.node,
            now: now.earliest.as_nanos() / 2 + now.latest.as_nanos() / 2,
            epsilon: self.epsilon,
            metrics_address: self.metrics_address.clone(),
        }))
    }
}

/// One clock sample of a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockSample {
    /// The peer.
    pub peer: NodeId,
    /// Peer clock minus ours, estimated at the midpoint of the round trip
    /// (ns, signed).
    pub offset: i64,
    /// The round trip (ns).
    pub rtt: u64,
    /// The peer's ε (ns).
    pub peer_epsilon: u64,
}

impl ClockSample {
    /// Whether the two clocks' intervals can both hold the true time: their
    /// distance, less the measurement's own uncertainty (half the round
    /// trip), is at most the sum of the two ε.
    pub fn consistent(&self, my_epsilon: u64) -> bool {
        let distance = self.offset.unsigned_abs().saturating_sub(self.rtt / 2);
        distance <= my_epsilon + self.peer_epsilon
    }
}

/// Why a hello failed.
#[derive(Debug)]
pub enum HelloError {
    /// The peer could not be reached.
    Unreachable(String),
    /// The peer belongs to another cluster (or epoch).
    Mismatch(String),
}

/// A peer's answer to a hello.
#[derive(Clone, Debug)]
pub struct HelloAnswer {
    /// Its clock against ours.
    pub sample: ClockSample,
    /// Its metrics endpoint, if it has one.
    pub metrics_address: Option<String>,
}

/// Says hello to a peer: checks its cluster id and samples its clock.
pub async fn hello(
    me: &Identity,
    chan: Channel,
    clock: &dyn meridian_truetime::TrueTime,
    epsilon: u64,
) -> Result<HelloAnswer, HelloError> {
    let mut client = PeerClient::new(chan);
    let t0 = clock.now();
    let sent_at = t0.earliest.as_nanos() / 2 + t0.latest.as_nanos() / 2;
    let mut req = Request::new(pb::HelloRequest {
        header: Some(me.header()),
        from: me.node,
        sent_at,
        epsilon,
    });
    req.set_timeout(HELLO_TIMEOUT);
    // The deadline is enforced here too: a peer whose socket is bound but
    // not yet served would otherwise hold the handshake open.
    let resp = tokio::time::timeout(HELLO_TIMEOUT, client.hello(req))
        .await
        .map_err(|_| HelloError::Unreachable("hello timed out".into()))?
        .map_err(|s| HelloError::Unreachable(s.message().to_string()))?
        .into_inner();
    let t1 = clock.now();
    let recv_at = t1.earliest.as_nanos() / 2 + t1.latest.as_nanos() / 2;
    if let Some(e) = resp.error {
        return Err(HelloError::Mismatch(e.message));
    }
    let mid = sent_at / 2 + recv_at / 2;
    Ok(HelloAnswer {
        sample: ClockSample {
            peer: resp.node,
            offset: resp.now as i64 - mid as i64,
            rtt: recv_at.saturating_sub(sent_at),
            peer_epsilon: resp.epsilon,
        },
        metrics_address: Some(resp.metrics_address).filter(|m| !m.is_empty()),
    })
}

/// The verdict on this node's clock from one round of samples: unhealthy
/// when it disagrees with a majority of the peers that answered (with one
/// peer answering, with that one). A single disagreeing peer among several
/// is that peer's problem, not ours.
pub fn clock_verdict(samples: &[ClockSample], my_epsilon: u64) -> Result<(), String> {
    let bad: Vec<&ClockSample> = samples
        .iter()
        .filter(|s| !s.consistent(my_epsilon))
        .collect();
    if !samples.is_empty() && bad.len() * 2 > samples.len() {
        let detail: Vec<String> = bad
            .iter()
            .map(|s| {
                format!(
                    "node {} is {:+.3} ms away (round trip {:.3} ms, ε {:.3} + {:.3} ms)",
                    s.peer,
                    s.offset as f64 / 1e6,
                    s.rtt as f64 / 1e6,
                    my_epsilon as f64 / 1e6,
                    s.peer_epsilon as f64 / 1e6
                )
            })
            .collect();
        return Err(format!(
            "this node's clock disagrees with its peers beyond the uncertainty bound: {}",
            detail.join("; ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn sample(peer: NodeId, offset_ms: i64) -> ClockSample {
        ClockSample {
            peer,
            offset: offset_ms * MS as i64,
            rtt: MS / 5,
            peer_epsilon: MS,
        }
    }

    #[test]
    fn design_s2_a_clock_outside_its_bound_against_most_peers_is_unhealthy() {
        // ε = 1 ms each: 2 ms apart is still consistent, 5 ms is not.
        assert!(sample(2, 2).consistent(MS));
        assert!(!sample(2, 5).consistent(MS));
        assert!(clock_verdict(&[sample(2, 0), sample(3, 1)], MS).is_ok());
        // One bad peer among two is the peer's problem.
        assert!(clock_verdict(&[sample(2, 9), sample(3, 0)], MS).is_ok());
        let err = clock_verdict(&[sample(2, 9), sample(3, -9)], MS).unwrap_err();
        assert!(err.contains("node 2") && err.contains("node 3"), "{err}");
        assert!(clock_verdict(&[sample(2, 9)], MS).is_err());
        assert!(clock_verdict(&[], MS).is_ok());
    }
}
