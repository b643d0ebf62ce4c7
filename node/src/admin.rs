//! The admin service: who waits for whom, membership changes, nodes
//! added at run time, and range splits.

use std::sync::Arc;

use meridian_paxos::{MembershipChange, ProposeError};
use meridian_proto::convert::{self as cv, Answer, RemoteError};
use meridian_proto::pb;
use tokio::sync::oneshot;
use tonic::{Request, Response, Status};

use crate::members::Added;
use crate::peer::{self, Identity};
use crate::runtime::Event;
use crate::service::Shared;

/// A refused membership change as a typed error: `NotLeader` (with the
/// leader hint) to send it elsewhere, `LeaderNotReady` while another change
/// of the group is not yet chosen (try again shortly), `Overloaded` when
/// the proposal queue is full, `Invalid` for a change that makes no sense.
pub(crate) fn membership_error(e: ProposeError) -> RemoteError {
    use meridian_txn::TxnError;
    match e {
        ProposeError::NotLeader { leader } => RemoteError::Txn(TxnError::NotLeader { leader }),
        ProposeError::ChangeInProgress => RemoteError::Txn(TxnError::LeaderNotReady),
        ProposeError::QueueFull(_) => RemoteError::Txn(TxnError::Overloaded),
        ProposeError::InvalidChange(why) => {
            RemoteError::Invalid(format!("invalid membership change: {why}"))
        }
    }
}

/// The admin API.
pub struct AdminService(pub Arc<Shared>);

#[tonic::async_trait]
impl pb::admin_server::Admin for AdminService {
    async fn waits_for(
        &self,
        _request: Request<pb::WaitsForRequest>,
    ) -> Result<Response<pb::WaitsForResponse>, Status> {
        let (tx, rx) = oneshot::channel();
        if self.0.inbox.send(Event::WaitsFor(tx)).is_err() {
            return Ok(Response::new(pb::WaitsForResponse::failed(
                &RemoteError::Draining,
            )));
        }
        let edges = rx.await.unwrap_or_default();
        Ok(Response::new(pb::WaitsForResponse {
            error: None,
            edges: edges
                .into_iter()
                .map(|(group, w)| pb::WaitsForEdge {
                    group,
                    waiter: Some(cv::txn_to_pb(w.waiter)),
                    holder: Some(cv::txn_to_pb(w.blocker)),
                    key: w.key,
                })
                .collect(),
        }))
    }

    async fn change_membership(
        &self,
        request: Request<pb::ChangeMembershipRequest>,
    ) -> Result<Response<pb::ChangeMembershipResponse>, Status> {
        let r = request.into_inner();
        if let Err(e) = self.0.check_header(r.header.as_ref()) {
            return Ok(Response::new(pb::ChangeMembershipResponse::failed(&e)));
        }
        let change = match r.change {
            Some(pb::change_membership_request::Change::Add(id)) => MembershipChange::AddVoter(id),
            Some(pb::change_membership_request::Change::Remove(id)) => {
                MembershipChange::RemoveVoter(id)
            }
            None => {
                return Ok(Response::new(pb::ChangeMembershipResponse::failed(
                    &RemoteError::Invalid("no change given".into()),
                )));
            }
        };
        // A voter this node cannot reach would count towards every quorum
        // and never answer.
        if let MembershipChange::AddVoter(id) = change {
            if !self.0.members.knows(id) {
                return Ok(Response::new(pb::ChangeMembershipResponse::failed(
                    &RemoteError::Invalid(format!(
                        "node {id} is not known to node {}: tell every node its address first \
                         (AddNode, or meridian admin replace-node)",
                        self.0.cfg.node_id
                    )),
                )));
            }
        }
        let (tx, rx) = oneshot::channel();
        let ev = Event::Membership {
            group: r.group,
            change,
            reply: tx,
        };
        if self.0.inbox.send(ev).is_err() {
            return Ok(Response::new(pb::ChangeMembershipResponse::failed(
                &RemoteError::Draining,
            )));
        }
        match rx.await {
            Ok(Ok(())) => {
                let voters = self
                    .0
                    .views
                    .read()
                    .get(&r.group)
                    .map(|v| v.voters.clone())
                    .unwrap_or_default();
                Ok(Response::new(pb::ChangeMembershipResponse {
                    error: None,
                    voters,
                }))
            }
            Ok(Err(why)) => Ok(Response::new(pb::ChangeMembershipResponse::failed(&why))),
            Err(_) => Ok(Response::new(pb::ChangeMembershipResponse::failed(
                &RemoteError::Draining,
            ))),
        }
    }

    async fn add_node(
        &self,
        request: Request<pb::AddNodeRequest>,
    ) -> Result<Response<pb::AddNodeResponse>, Status> {
        let s = &self.0;
        let r = request.into_inner();
        let fail = |e: RemoteError| Ok(Response::new(pb::AddNodeResponse::failed(&e)));
        if let Err(e) = s.check_header(r.header.as_ref()) {
            return fail(e);
        }
        let Some(n) = r.node else {
            return fail(RemoteError::Invalid("no node given".into()));
        };
        match s.members.add(n.id, &n.address) {
            Ok(Added::AlreadyKnown) => Ok(Response::new(pb::AddNodeResponse {
                error: None,
                already_known: true,
            })),
            Ok(Added::New(chan)) => {
                let me = Identity {
                    node: s.cfg.node_id,
                    cluster_id: s.cfg.cluster_id,
                    epoch: s.cfg.epoch,
                };
                let (tx, rx) = tokio::sync::mpsc::channel(peer::PEER_QUEUE);
                // The stream ends when the loop drops the queue (at stop).
                tokio::spawn(peer::run_sender(me, n.id, chan, rx, s.metrics.clone()));
                if s.inbox
                    .send(Event::AddPeer {
                        node: n.id,
                        queue: tx,
                    })
                    .is_err()
                {
                    return fail(RemoteError::Draining);
                }
                tracing::info!(peer = n.id, address = %n.address, "node added at run time");
                Ok(Response::new(pb::AddNodeResponse {
                    error: None,
                    already_known: false,
                }))
            }
            Err(e) => fail(RemoteError::Invalid(e.to_string())),
        }
    }

    async fn split(
        &self,
        request: Request<pb::SplitRequest>,
    ) -> Result<Response<pb::SplitResponse>, Status> {
        let r = request.into_inner();
        Ok(Response::new(match split(&self.0, r).await {
            Ok(resp) => resp,
            Err(e) => pb::SplitResponse::failed(&e),
        }))
    }
}

/// Most time a forwarded split waits for the leader's answer.
const SPLIT_FORWARD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Splits the range holding `r.key` at it: at this node's replica if it
/// leads the group, else forwarded once to the leader it knows of.
async fn split(s: &Shared, r: pb::SplitRequest) -> Result<pb::SplitResponse, RemoteError> {
    use meridian_txn::{Request as CoreRequest, Response as CoreResponse, TxnError};
    s.check_header(r.header.as_ref())?;
    meridian_txn::api::check_key(&r.key).map_err(|e| RemoteError::Invalid(e.to_string()))?;
    if r.child == 0 || r.child > meridian_txn::MAX_GROUP_ID {
        return Err(RemoteError::Invalid(format!(
            "child group id {} is outside 1..={}",
            r.child,
            meridian_txn::MAX_GROUP_ID
        )));
    }
    // The hosted group whose applied range holds the key.
    let (group, leader) = {
        let views = s.views.read();
        // The same split again (a retry after it applied): asked of the
        // parent, whose range now ends at the key, it is answered again.
        let done = views
            .get(&r.child)
            .and_then(|v| v.descriptor.as_ref())
            .is_some_and(|d| d.start == r.key);
        // Otherwise an id this node knows in use: a child created under it
        // would be taken for the existing group and never made (ids are
        // never reused; only the caller's allocation guarantees it for
        // groups this node does not host).
        if !done && (views.contains_key(&r.child) || s.cfg.groups.iter().any(|g| g.id == r.child)) {
            return Err(RemoteError::Invalid(format!(
                "group id {} is in use; a split's child needs an id never used",
                r.child
            )));
        }
        let hosting = views.values().find(|v| {
            v.descriptor.as_ref().is_some_and(|d| {
                if done {
                    d.end.as_ref() == Some(&r.key)
                } else {
                    d.contains(&r.key)
                }
            })
        });
        match hosting {
            Some(v) => (Some(v.group), v.leader),
            None => (None, None),
        }
    };
    let Some(group) = group else {
        // With replicas placed on some of the nodes, another node hosts
        // the range: retryable, so the caller asks the next node. The
        // group named is the configured one whose bootstrap range holds
        // the key (the range's ancestor; the cluster's ranges tile the
        // key space).
        let group = s
            .cfg
            .groups
            .iter()
            .find(|g| g.contains(&r.key))
            .map_or(0, |g| g.id);
        return Err(RemoteError::NoReplica { group });
    };
    let local = match leader {
        Some(l) if l != s.cfg.node_id && !r.forwarded => None,
        _ => Some(
            s.call(
                group,
                CoreRequest::Split {
                    key: r.key.clone(),
                    child: r.child,
                },
            )
            .await,
        ),
    };
    let leader = match local {
        Some(Ok(CoreResponse::Split { left, right })) => {
            return Ok(pb::SplitResponse {
                error: None,
                left: Some(cv::descriptor_to_pb(&left)),
                right: Some(cv::descriptor_to_pb(&right)),
            });
        }
        Some(Ok(other)) => {
            return Err(RemoteError::Invalid(format!("unexpected answer {other:?}")));
        }
        Some(Err(RemoteError::Txn(TxnError::NotLeader { leader: Some(l) })))
            if l != s.cfg.node_id && !r.forwarded =>
        {
            l
        }
        Some(Err(e)) => return Err(e),
        None => leader.unwrap_or_default(),
    };
    let chan = s
        .members
        .channels()
        .into_iter()
        .find(|(id, _)| *id == leader)
        .map(|(_, c)| c)
        .ok_or(RemoteError::Txn(TxnError::NotLeader {
            leader: Some(leader),
        }))?;
    let mut client = pb::admin_client::AdminClient::new(chan);
    let mut req = tonic::Request::new(pb::SplitRequest {
        forwarded: true,
        ..r
    });
    req.set_timeout(SPLIT_FORWARD_TIMEOUT);
    match client.split(req).await {
        Ok(resp) => Ok(resp.into_inner()),
        // The leader could not be asked: the caller tries again.
        Err(_) => Err(RemoteError::Txn(TxnError::NotLeader {
            leader: Some(leader),
        })),
    }
}
