//! The admin service: who waits for whom, and membership changes.

use std::sync::Arc;

use meridian_paxos::MembershipChange;
use meridian_proto::convert::{self as cv, Answer, RemoteError};
use meridian_proto::pb;
use tokio::sync::oneshot;
use tonic::{Request, Response, Status};

use crate::runtime::Event;
use crate::service::Shared;

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
            Ok(Err(why)) => Ok(Response::new(pb::ChangeMembershipResponse::failed(
                &RemoteError::Invalid(why),
            ))),
            Err(_) => Ok(Response::new(pb::ChangeMembershipResponse::failed(
                &RemoteError::Draining,
            ))),
        }
    }

    async fn add_node(
        &self,
        _request: Request<pb::AddNodeRequest>,
    ) -> Result<Response<pb::AddNodeResponse>, Status> {
        Err(Status::unimplemented(
            "adding a node's address at run time is not supported: list it in every node's configuration",
        ))
    }
}
