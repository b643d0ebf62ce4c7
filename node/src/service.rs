//! The client and admin gRPC services (docs/design.md §6): each call is
//! checked (header, limits, key ranges), handed to the loop as a core
//! [`Request`], and its [`Reply`] mapped back; nothing awaits while holding
//! a lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::Sender;
use meridian_participant::{Priority, RangeDescriptor};
use meridian_proto::convert::{self as cv, Answer, RemoteError};
use meridian_proto::pb;
use meridian_truetime::{Timestamp, TrueTime};
use meridian_txn::{
    GroupId, ReadOp, Reply, Request as CoreRequest, Response as CoreResponse, TxnError,
};
use tokio::sync::oneshot;
use tonic::{Request, Response, Status};

use crate::config::NodeConfig;
use crate::metrics::Metrics;
use crate::runtime::{Event, Views};

/// How long a call waits for the loop's answer before giving up: a commit
/// then reports an unknown outcome, anything else "not ready".
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// What the services share.
pub struct Shared {
    /// The configuration (ranges, nodes).
    pub cfg: NodeConfig,
    /// The nodes this node knows: the configuration's and those added at
    /// run time.
    pub members: Arc<crate::members::Members>,
    /// The loop's inbox.
    pub inbox: Sender<Event>,
    /// The replicas' views.
    pub views: Views,
    /// The clock.
    pub clock: Arc<dyn TrueTime>,
    /// Whether the clock is within bound against the peers, and why not.
    pub clock_ok: Arc<AtomicBool>,
    /// The clock check's last finding.
    pub clock_detail: parking_lot::Mutex<String>,
    /// Set when the node drains for shutdown: new calls are refused.
    pub draining: AtomicBool,
    /// Calls in progress (drain waits for them).
    pub in_flight: std::sync::atomic::AtomicUsize,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Turns true when the node stops: its `Calls` streams end then.
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// When each peer last answered this node's hello.
    pub liveness: Arc<crate::liveness::Liveness>,
}

struct InFlight<'a>(&'a Shared);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Shared {
    pub(crate) fn check_header(&self, h: Option<&pb::Header>) -> Result<(), RemoteError> {
        let h = h.ok_or_else(|| RemoteError::Invalid("missing header".into()))?;
        if h.cluster_id != self.cfg.cluster_id {
            return Err(RemoteError::ClusterMismatch {
                expected: self.cfg.cluster_id,
                got: h.cluster_id,
            });
        }
        if h.epoch != self.cfg.epoch {
            return Err(RemoteError::StaleEpoch {
                epoch: self.cfg.epoch,
            });
        }
        Ok(())
    }

    /// The range this node's replica of `group` serves: the runtime's
    /// hosted groups decide (a group created at run time is served, a
    /// dropped one is not), each with its applied range. A hosted replica
    /// whose range is not yet known serves no key.
    fn group(&self, group: GroupId) -> Result<Hosted, RemoteError> {
        match self.views.read().get(&group) {
            Some(v) => Ok(Hosted {
                id: group,
                range: v.descriptor.clone(),
            }),
            None => Err(RemoteError::NoReplica { group }),
        }
    }

    /// The range of `group` as this node best knows it: its own replica's,
    /// else the configuration's bootstrap range; `None` for a group known
    /// to neither (created at run time on other nodes: its own replicas
    /// check their keys).
    fn known_range(&self, group: GroupId) -> Option<Hosted> {
        if let Ok(h) = self.group(group) {
            return Some(h);
        }
        self.cfg
            .groups
            .iter()
            .find(|g| g.id == group)
            .map(|g| Hosted {
                id: group,
                range: Some(g.descriptor()),
            })
    }

    fn check_keys<'k>(
        &self,
        g: &Hosted,
        keys: impl IntoIterator<Item = &'k [u8]>,
    ) -> Result<(), RemoteError> {
        for k in keys {
            meridian_txn::api::check_key(k).map_err(|e| RemoteError::Invalid(e.to_string()))?;
            if !g.range.as_ref().is_some_and(|r| r.contains(k)) {
                return Err(g.refusal());
            }
        }
        Ok(())
    }

    /// A scan's bounds must lie within the group's range.
    fn check_scan_range(
        &self,
        g: &Hosted,
        start: &[u8],
        end: Option<&Bytes>,
    ) -> Result<(), RemoteError> {
        if g.range
            .as_ref()
            .is_some_and(|r| r.contains_span(start, end.map(|e| e.as_ref())))
        {
            Ok(())
        } else {
            Err(g.refusal())
        }
    }

    /// Hands `request` to `group`'s replica and waits for its answer.
    pub(crate) async fn call(
        &self,
        group: GroupId,
        request: CoreRequest,
    ) -> Result<CoreResponse, RemoteError> {
        if self.draining.load(Ordering::Acquire) {
            return Err(RemoteError::Draining);
        }
        if !self.clock_ok.load(Ordering::Relaxed) {
            return Err(RemoteError::ClockUnhealthy(
                self.clock_detail.lock().clone(),
            ));
        }
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        let _guard = InFlight(self);
        let commit_txn = match &request {
            CoreRequest::Commit { txn, .. } => Some(*txn),
            _ => None,
        };
        let (tx, rx) = oneshot::channel();
        self.inbox
            .send(Event::Request {
                group,
                request,
                reply: tx,
            })
            .map_err(|_| RemoteError::Draining)?;
        let reply: Reply = match tokio::time::timeout(CALL_TIMEOUT, rx).await {
            Ok(Ok(reply)) => reply,
            // The loop is gone (shutting down) or too slow: a commit may
            // still land.
            _ => match commit_txn {
                Some(txn) => Err(TxnError::OutcomeUnknown { txn }),
                None => Err(TxnError::LeaderNotReady),
            },
        };
        reply.map_err(RemoteError::from)
    }
}

/// A group as the services check requests against it.
struct Hosted {
    id: GroupId,
    range: Option<RangeDescriptor>,
}

impl Hosted {
    /// The refusal of keys outside the group's range: what it serves, so
    /// that the client's range map learns it (retryable).
    fn refusal(&self) -> RemoteError {
        match &self.range {
            Some(d) => RemoteError::Txn(TxnError::OutsideRange {
                descriptor: d.clone(),
            }),
            None => RemoteError::WrongGroup { group: self.id },
        }
    }
}

fn unexpected(r: CoreResponse) -> RemoteError {
    RemoteError::Invalid(format!("unexpected answer {r:?}"))
}

/// The client API.
pub struct ClientService(pub Arc<Shared>);

macro_rules! answer {
    ($ty:ty, $body:expr) => {{
        let r: Result<$ty, RemoteError> = $body;
        Ok(match r {
            Ok(v) => Response::new(v),
            Err(e) => Response::new(<$ty>::failed(&e)),
        })
    }};
}

#[tonic::async_trait]
impl pb::meridian_server::Meridian for ClientService {
    type CallsStream = meridian_proto::calls::ReplyStream;

    async fn calls(
        &self,
        request: Request<tonic::Streaming<pb::CallBatch>>,
    ) -> Result<Response<Self::CallsStream>, Status> {
        let svc = Arc::new(ClientService(self.0.clone()));
        let mut stopping = self.0.stopping.clone();
        let closing = async move {
            let _ = stopping.wait_for(|s| *s).await;
        };
        Ok(Response::new(meridian_proto::calls::serve(
            svc,
            request.into_inner(),
            closing,
        )))
    }

    async fn begin(
        &self,
        request: Request<pb::BeginRequest>,
    ) -> Result<Response<pb::BeginResponse>, Status> {
        let s = &self.0;
        let r = request.into_inner();
        answer!(
            pb::BeginResponse,
            async {
                s.check_header(r.header.as_ref())?;
                s.group(r.group)?;
                let mode = cv::mode_from_pb(r.mode)?;
                let priority = r.priority.map(|p| Priority::new(Timestamp::from_nanos(p)));
                let request = CoreRequest::Begin {
                    priority,
                    mode,
                    reserve: r.reserve,
                };
                match s.call(r.group, request).await? {
                    CoreResponse::Begun {
                        txn,
                        priority,
                        reserved,
                    } => Ok(pb::BeginResponse {
                        error: None,
                        txn: Some(cv::txn_to_pb(txn)),
                        priority: priority.0.as_nanos(),
                        reserved,
                    }),
                    other => Err(unexpected(other)),
                }
            }
            .await
        )
    }

    async fn read(
        &self,
        request: Request<pb::ReadRequest>,
    ) -> Result<Response<pb::ReadResponse>, Status> {
        let s = &self.0;
        let r = request.into_inner();
        let read_started = Instant::now();
        let out = answer!(
            pb::ReadResponse,
            async {
                s.check_header(r.header.as_ref())?;
                let g = s.group(r.group)?;
                s.check_keys(&g, r.keys.iter().map(|k| k.as_ref()))?;
                let txn = cv::txn_from_pb(r.txn)?;
                let guest = cv::guest_from_pb(r.guest)?;
                let started = Instant::now();
                let resp = s
                    .call(
                        r.group,
                        CoreRequest::Read {
                            txn,
                            keys: r.keys,
                            guest,
                        },
                    )
                    .await?;
                s.metrics.lock_wait.observe_duration(started.elapsed());
                match resp {
                    CoreResponse::Read { values, term } => Ok(pb::ReadResponse {
                        error: None,
                        values: values
                            .into_iter()
                            .map(|value| pb::MaybeValue { value })
                            .collect(),
                        term,
                    }),
                    other => Err(unexpected(other)),
                }
            }
            .await
        );
        s.metrics
            .read_latency
            .observe_duration(read_started.elapsed());
        out
    }

    async fn scan(
        &self,
        request: Request<pb::ScanRequest>,
    ) -> Result<Response<pb::ScanResponse>, Status> {
        let s = &self.0;
        let r = request.into_inner();
        let read_started = Instant::now();
        let out = answer!(
            pb::ScanResponse,
            async {
                s.check_header(r.header.as_ref())?;
                let g = s.group(r.group)?;
                s.check_scan_range(&g, &r.start, r.end.as_ref())?;
                let txn = cv::txn_from_pb(r.txn)?;
                let guest = cv::guest_from_pb(r.guest)?;
                let request = CoreRequest::Scan {
                    txn,
                    start: r.start,
                    end: r.end,
                    limit: usize::try_from(r.limit).unwrap_or(usize::MAX),
                    guest,
                };
                match s.call(r.group, request).await? {
                    CoreResponse::Rows { rows, term } => Ok(pb::ScanResponse {
                        error: None,
                        rows: cv::rows_to_pb(rows),
                        term,
                    }),
                    other => Err(unexpected(other)),
                }
            }
            .await
        );
        s.metrics
            .read_latency
            .observe_duration(read_started.elapsed());
        out
    }

    async fn commit(
        &self,
        request: Request<pb::CommitRequest>,
    ) -> Result<Response<pb::CommitResponse>, Status> {
        let s = &self.0;
        let r = request.into_inner();
        let started = Instant::now();
        let out = answer!(
            pb::CommitResponse,
            async {
                s.check_header(r.header.as_ref())?;
                let home = s.group(r.group)?;
                let writes: Vec<_> = r.writes.into_iter().map(cv::write_from_pb).collect();
                s.check_keys(&home, writes.iter().map(|w| w.key.as_ref()))?;
                let mut participants = Vec::with_capacity(r.participants.len());
                for p in r.participants {
                    let p = cv::participant_from_pb(p);
                    if let Some(g) = s.known_range(p.group) {
                        s.check_keys(&g, p.writes.iter().map(|w| w.key.as_ref()))?;
                    }
                    participants.push(p);
                }
                let txn = match r.txn {
                    Some(t) => cv::txn_from_pb(Some(t))?,
                    None => {
                        // A one-shot write: begin and commit in one call.
                        let mode = cv::mode_from_pb(r.mode)?;
                        match s
                            .call(
                                r.group,
                                CoreRequest::Begin {
                                    priority: None,
                                    mode,
                                    reserve: 0,
                                },
                            )
                            .await?
                        {
                            CoreResponse::Begun { txn, .. } => txn,
                            other => return Err(unexpected(other)),
                        }
                    }
                };
                let request = CoreRequest::Commit {
                    txn,
                    writes,
                    participants,
                };
                match s.call(r.group, request).await? {
                    CoreResponse::Committed { commit_ts } => {
                        let now = s.clock.now().latest;
                        s.metrics
                            .commit_wait
                            .observe(now.nanos_since(commit_ts) / 1000);
                        Ok(pb::CommitResponse {
                            error: None,
                            commit_ts: commit_ts.as_nanos(),
                            txn: Some(cv::txn_to_pb(txn)),
                        })
                    }
                    other => Err(unexpected(other)),
                }
            }
            .await
        );
        s.metrics.commit_latency.observe_duration(started.elapsed());
        out
    }

    async fn abort(
        &self,
        request: Request<pb::AbortRequest>,
    ) -> Result<Response<pb::AbortResponse>, Status> {
        let s = &self.0;
        let r = request.into_inner();
        answer!(
            pb::AbortResponse,
            async {
                s.check_header(r.header.as_ref())?;
                s.group(r.group)?;
                let txn = cv::txn_from_pb(r.txn)?;
                s.call(r.group, CoreRequest::Abort { txn }).await?;
                Ok(pb::AbortResponse { error: None })
            }
            .await
        )
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        let s = &self.0;
        let r = request.into_inner();
        answer!(
            pb::HeartbeatResponse,
            async {
                s.check_header(r.header.as_ref())?;
                s.group(r.group)?;
                let txn = cv::txn_from_pb(r.txn)?;
                s.call(r.group, CoreRequest::Heartbeat { txn }).await?;
                Ok(pb::HeartbeatResponse { error: None })
            }
            .await
        )
    }

    async fn read_only(
        &self,
        request: Request<pb::ReadOnlyRequest>,
    ) -> Result<Response<pb::ReadOnlyResponse>, Status> {
        let s = &self.0;
        let r = request.into_inner();
        let read_started = Instant::now();
        let out = answer!(
            pb::ReadOnlyResponse,
            async {
                s.check_header(r.header.as_ref())?;
                let g = s.group(r.group)?;
                let at = cv::read_at_from_pb(r.at)?;
                let mut reads = Vec::with_capacity(r.reads.len());
                for op in r.reads {
                    let op = cv::read_op_from_pb(op)?;
                    match &op {
                        ReadOp::Get(k) => s.check_keys(&g, [k.as_ref()])?,
                        ReadOp::Scan { start, end, .. } => {
                            s.check_scan_range(&g, start, end.as_ref())?
                        }
                    }
                    reads.push(op);
                }
                match s.call(r.group, CoreRequest::ReadOnly { at, reads }).await? {
                    CoreResponse::ReadOnly { read_ts, results } => Ok(pb::ReadOnlyResponse {
                        error: None,
                        read_ts: read_ts.as_nanos(),
                        results: results.into_iter().map(cv::read_result_to_pb).collect(),
                    }),
                    other => Err(unexpected(other)),
                }
            }
            .await
        );
        s.metrics
            .read_latency
            .observe_duration(read_started.elapsed());
        out
    }

    async fn txn_status(
        &self,
        request: Request<pb::TxnStatusRequest>,
    ) -> Result<Response<pb::TxnStatusResponse>, Status> {
        let s = &self.0;
        let r = request.into_inner();
        answer!(
            pb::TxnStatusResponse,
            async {
                s.check_header(r.header.as_ref())?;
                s.group(r.group)?;
                let txn = cv::txn_from_pb(r.txn)?;
                crate::status::txn_status(s, r.group, txn).await
            }
            .await
        )
    }

    async fn now(
        &self,
        request: Request<pb::NowRequest>,
    ) -> Result<Response<pb::NowResponse>, Status> {
        let s = &self.0;
        let r = request.into_inner();
        answer!(
            pb::NowResponse,
            async {
                s.check_header(r.header.as_ref())?;
                if !s.clock_ok.load(Ordering::Relaxed) {
                    return Err(RemoteError::ClockUnhealthy(s.clock_detail.lock().clone()));
                }
                let now = s.clock.now();
                Ok(pb::NowResponse {
                    error: None,
                    earliest: now.earliest.as_nanos(),
                    latest: now.latest.as_nanos(),
                })
            }
            .await
        )
    }

    async fn status(
        &self,
        request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let s = &self.0;
        let r = request.into_inner();
        // Discovery: a header of zeros is accepted; another cluster's is not.
        if let Some(h) = &r.header {
            if h.cluster_id != 0 && h.cluster_id != s.cfg.cluster_id {
                let e = RemoteError::ClusterMismatch {
                    expected: s.cfg.cluster_id,
                    got: h.cluster_id,
                };
                return Ok(Response::new(pb::StatusResponse::failed(&e)));
            }
        }
        Ok(Response::new(crate::status::status(s)))
    }
}
