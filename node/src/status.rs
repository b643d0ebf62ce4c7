//! Cluster status as one node sees it, and transaction status lookups.

use meridian_participant::TxnId;
use meridian_proto::convert::RemoteError;
use meridian_proto::pb;
use meridian_txn::{GroupId, Request as CoreRequest, Response as CoreResponse, TxnStatus};

use crate::service::Shared;

/// The generation of a range as `cluster init` lays it out (the
/// bootstrap descriptor's).
pub const INITIAL_RANGE_GENERATION: u64 = 1;

/// The node's view of the cluster: nodes with their liveness as this node
/// sees it, groups with their ranges, leaders, and this node's replicas'
/// role and progress, the clock.
pub fn status(s: &Shared) -> pb::StatusResponse {
    let views = s.views.read();
    let now = s.clock.now();
    // The configured groups, and those this node's runtime created since
    // (a split's child): each with the range its local replica applied,
    // else the configuration's.
    let ids: std::collections::BTreeSet<GroupId> = s
        .cfg
        .groups
        .iter()
        .map(|g| g.id)
        .chain(views.keys().copied())
        .collect();
    let groups = ids
        .into_iter()
        .map(|id| {
            let g = s.cfg.groups.iter().find(|g| g.id == id);
            let v = views.get(&id);
            let (start, end) = match (v.and_then(|v| v.descriptor.as_ref()), g) {
                (Some(r), _) => (r.start.clone(), r.end.clone()),
                (None, Some(g)) => (g.start_bytes(), g.end_bytes()),
                (None, None) => (Default::default(), None),
            };
            pb::GroupInfo {
                id,
                start,
                end,
                // A replica waiting to be added knows no voters yet: the
                // configured ones are the better hint for routing.
                // Listed in the configured order (the preferred leader
                // first), voters added since (and a split child's, which
                // has no configured replicas) at the end by node id.
                replicas: v.filter(|v| !v.voters.is_empty()).map_or_else(
                    || g.map(|g| g.replicas.clone()).unwrap_or_default(),
                    |v| {
                        let configured: &[meridian_paxos::NodeId] =
                            g.map_or(&[], |g| g.replicas.as_slice());
                        let mut voters = v.voters.clone();
                        voters.sort_by_key(|n| {
                            (
                                configured.iter().position(|r| r == n).unwrap_or(usize::MAX),
                                *n,
                            )
                        });
                        voters
                    },
                ),
                leader: v.and_then(|v| v.leader),
                local_leader: v.is_some_and(|v| v.leading),
                chosen: v.map_or(0, |v| v.chosen),
                applied: v.map_or(0, |v| v.applied),
                t_safe: v.map_or(0, |v| v.t_safe.as_nanos()),
                active_txns: v.map_or(0, |v| v.active_txns as u64),
                local_replica: v.is_some(),
                role: v.map_or(String::new(), |v| {
                    crate::metrics::role_name(v, s.cfg.node_id).to_string()
                }),
                safe_time_lag_micros: v
                    .and_then(|v| crate::health::safe_time_lag(now, v.t_safe))
                    .map(|d| d.as_micros().min(u128::from(u64::MAX)) as u64),
                bytes: v.map(|v| v.bytes),
                // The generation of the range the local replica applied;
                // without a local replica, the bootstrap one of a range
                // `cluster init` laid out (a split raises it).
                generation: Some(
                    v.and_then(|v| v.descriptor.as_ref())
                        .map_or(INITIAL_RANGE_GENERATION, |d| d.generation),
                ),
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
            .map(|(id, address)| node_info(s, id, address))
            .collect(),
        groups,
        now_earliest: now.earliest.as_nanos(),
        now_latest: now.latest.as_nanos(),
        clock_ok: s.clock_ok.load(std::sync::atomic::Ordering::Relaxed),
        clock_detail: s.clock_detail.lock().clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// Node `id` as this node sees it: itself, or a peer with its liveness.
fn node_info(s: &Shared, id: meridian_paxos::NodeId, address: String) -> pb::NodeInfo {
    if id == s.cfg.node_id {
        return pb::NodeInfo {
            id,
            address,
            metrics_address: s.cfg.metrics_listen.clone(),
            liveness: pb::Liveness::Self_ as i32,
            last_contact_ms: Some(0),
        };
    }
    let l = s.liveness.of(id);
    pb::NodeInfo {
        id,
        address,
        metrics_address: l.metrics_address,
        liveness: if l.live {
            pb::Liveness::Live
        } else {
            pb::Liveness::Down
        } as i32,
        last_contact_ms: l
            .since_contact
            .map(|d| d.as_millis().min(u128::from(u64::MAX)) as u64),
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
