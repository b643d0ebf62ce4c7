//! Cluster status as one node sees it, and transaction status lookups.

use meridian_participant::TxnId;
use meridian_proto::convert::RemoteError;
use meridian_proto::pb;
use meridian_txn::{GroupId, Request as CoreRequest, Response as CoreResponse, TxnStatus};

use crate::service::Shared;

/// The node's view of the cluster: nodes, groups with their ranges,
/// leaders and progress, the clock.
pub fn status(s: &Shared) -> pb::StatusResponse {
    let views = s.views.read();
    let now = s.clock.now();
    let groups = s
        .cfg
        .groups
        .iter()
        .map(|g| {
            let v = views.get(&g.id);
            pb::GroupInfo {
                id: g.id,
                start: g.start_bytes(),
                end: g.end_bytes(),
                // A replica waiting to be added knows no voters yet: the
                // configured ones are the better hint for routing.
                replicas: v
                    .filter(|v| !v.voters.is_empty())
                    .map_or_else(|| g.replicas.clone(), |v| v.voters.clone()),
                leader: v.and_then(|v| v.leader),
                local_leader: v.is_some_and(|v| v.leading),
                chosen: v.map_or(0, |v| v.chosen),
                applied: v.map_or(0, |v| v.applied),
                t_safe: v.map_or(0, |v| v.t_safe.as_nanos()),
                active_txns: v.map_or(0, |v| v.active_txns as u64),
                local_replica: v.is_some(),
            }
        })
        .collect();
    pb::StatusResponse {
        error: None,
        cluster_id: s.cfg.cluster_id,
        epoch: s.cfg.epoch,
        node: s.cfg.node_id,
        nodes: s
            .members
            .nodes()
            .into_iter()
            .map(|(id, address)| pb::NodeInfo { id, address })
            .collect(),
        groups,
        now_earliest: now.earliest.as_nanos(),
        now_latest: now.latest.as_nanos(),
        clock_ok: s.clock_ok.load(std::sync::atomic::Ordering::Relaxed),
        clock_detail: s.clock_detail.lock().clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// What became of `txn`, asked of its home group's leader.
pub async fn txn_status(
    s: &Shared,
    group: GroupId,
    txn: TxnId,
) -> Result<pb::TxnStatusResponse, RemoteError> {
    use pb::txn_status_response::Status;
    let empty = pb::Empty {};
    let status = match s.call(group, CoreRequest::TxnStatus { txn }).await? {
        CoreResponse::TxnStatus(TxnStatus::Committed(ts)) => Status::Committed(ts.as_nanos()),
        CoreResponse::TxnStatus(TxnStatus::Aborted) => Status::Aborted(empty),
        CoreResponse::TxnStatus(TxnStatus::InProgress) => Status::InProgress(empty),
        CoreResponse::TxnStatus(TxnStatus::Unknown) => Status::Unknown(empty),
        other => return Err(RemoteError::Invalid(format!("unexpected answer {other:?}"))),
    };
    Ok(pb::TxnStatusResponse {
        error: None,
        status: Some(status),
    })
}
