//! Operating a cluster (docs/operations.md): telling nodes of a new node,
//! one-at-a-time membership changes at a group's leader, and replacing a
//! node online with [`replace_node`].
//!
//! # Replacing a node
//! [`replace_node`] moves every group that has `old` as a voter to `new`:
//! 1. it tells every node that answers of `new`'s id and address
//!    (`AddNode`; a node remembers it across restarts);
//! 2. it checks that `new` answers at its address, belongs to the cluster,
//!    and hosts a replica of each group to move (listed under `joining` in
//!    its configuration);
//! 3. for each such group in turn, one membership change at a time at the
//!    group's leader: add `new` as a voter, wait until `new`'s replica has
//!    applied what the leader had chosen once the addition was in its log
//!    (with a deadline, reporting progress), then remove `old`.
//!
//! Every step reads the cluster's state first and is skipped when already
//! done, so running it again after a partial run (a deadline, a lost
//! connection) finishes the job.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use meridian_participant::RangeDescriptor;
use meridian_proto::convert::{descriptor_from_pb, error_from_pb};
use meridian_proto::pb;
use meridian_proto::pb::admin_client::AdminClient;
use meridian_proto::pb::meridian_client::MeridianClient;
use meridian_proto::{MAX_MESSAGE_BYTES, RemoteError};
use meridian_txn::{GroupId, TxnError};
use tonic::transport::Channel;

use crate::{Client, Error, NodeId, route};

/// Why an admin operation did not complete.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// Bad arguments; nothing was sent. Exit code 2.
    #[error("invalid arguments: {0}")]
    Invalid(String),
    /// The cluster refused (an unknown node, a conflicting address, a node
    /// that hosts no replica of a group to move, ...). Exit code 1.
    #[error("refused: {0}")]
    Refused(String),
    /// A node needed did not answer, or no leader took a change before the
    /// deadline. Exit code 4.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The new node's replica did not catch up before the deadline; the
    /// group has both nodes as voters. Run again to finish. Exit code 4.
    #[error(
        "node {node}'s replica of group {group} did not catch up within {waited:?} \
         (applied {applied} of {target}); run again to resume"
    )]
    CatchUpTimeout {
        /// The group.
        group: GroupId,
        /// The new node.
        node: NodeId,
        /// What its replica had applied.
        applied: u64,
        /// The slot it had to reach.
        target: u64,
        /// How long it was given.
        waited: Duration,
    },
}

impl AdminError {
    /// The CLI's exit code: 1 refused, 2 bad arguments, 4 unreachable or
    /// out of time.
    pub fn exit_code(&self) -> u8 {
        match self {
            AdminError::Refused(_) => crate::exit::EXIT_NOT_COMMITTED,
            AdminError::Invalid(_) => crate::exit::EXIT_USAGE,
            AdminError::Unreachable(_) | AdminError::CatchUpTimeout { .. } => {
                crate::exit::EXIT_UNREACHABLE
            }
        }
    }
}

impl From<Error> for AdminError {
    fn from(e: Error) -> AdminError {
        let code = crate::exit::exit_code(&e);
        let m = e.to_string();
        match code {
            crate::exit::EXIT_USAGE => AdminError::Invalid(m),
            crate::exit::EXIT_UNREACHABLE => AdminError::Unreachable(m),
            _ => AdminError::Refused(m),
        }
    }
}

/// Deadlines of [`replace_node`].
#[derive(Clone, Debug)]
pub struct ReplaceOptions {
    /// How long the new node's replica of one group may take to catch up.
    pub catch_up_timeout: Duration,
    /// How long one membership change may take to be accepted by a leader
    /// (leaders move, a previous change may still be in progress).
    pub change_timeout: Duration,
    /// Interval between looks at the cluster's state.
    pub poll_interval: Duration,
}

impl Default for ReplaceOptions {
    fn default() -> Self {
        ReplaceOptions {
            catch_up_timeout: Duration::from_secs(120),
            change_timeout: Duration::from_secs(30),
            poll_interval: Duration::from_millis(200),
        }
    }
}

/// A step of [`replace_node`], reported as it happens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// A node was told of the new node (`already_known`: it knew it).
    Told {
        /// The node told.
        node: NodeId,
        /// It already knew the new node at this address.
        already_known: bool,
    },
    /// A node could not be told (it did not answer).
    NotTold {
        /// The node.
        node: NodeId,
        /// Why.
        why: String,
    },
    /// The new node was added as a voter of a group (`already`: it was).
    Added {
        /// The group.
        group: GroupId,
        /// It was a voter already.
        already: bool,
    },
    /// The new node's replica is catching up.
    CatchingUp {
        /// The group.
        group: GroupId,
        /// Applied so far.
        applied: u64,
        /// The slot to reach.
        target: u64,
    },
    /// The new node's replica has caught up.
    CaughtUp {
        /// The group.
        group: GroupId,
        /// Applied.
        applied: u64,
    },
    /// The old node was removed from a group (`already`: it was not a
    /// voter); `voters` are the group's voters after.
    Removed {
        /// The group.
        group: GroupId,
        /// It was removed already.
        already: bool,
        /// The voters now.
        voters: Vec<NodeId>,
    },
}

/// What [`replace_node`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplaceReport {
    /// Nodes told of the new node.
    pub told: Vec<NodeId>,
    /// Nodes that could not be told, and why (the old node, if it is
    /// down, is among them). They learn the new node when told again.
    pub not_told: Vec<(NodeId, String)>,
    /// Every group moved (or found moved), with its voters after.
    pub groups: Vec<(GroupId, Vec<NodeId>)>,
}

/// Checks [`replace_node`]'s arguments without sending anything.
pub fn check_replace_args(old: NodeId, new: NodeId, address: &str) -> Result<(), AdminError> {
    let max = meridian_txn::MAX_NODE_ID;
    for (name, id) in [("old", old), ("new", new)] {
        if id == 0 || id > max {
            return Err(AdminError::Invalid(format!(
                "--{name} {id} is not a node id (1..={max})"
            )));
        }
    }
    if old == new {
        return Err(AdminError::Invalid(format!(
            "--old and --new are both node {old}: a node cannot replace itself"
        )));
    }
    check_address(address)
}

/// Checks that `address` is `host:port` (what a node's `[[nodes]]` entry
/// holds: no scheme).
pub fn check_address(address: &str) -> Result<(), AdminError> {
    let bad = |why: &str| {
        Err(AdminError::Invalid(format!(
            "bad address {address:?}: {why}"
        )))
    };
    if address.contains("://") {
        return bad("give host:port, without a scheme");
    }
    let Some((host, port)) = address.rsplit_once(':') else {
        return bad("expected host:port");
    };
    if host.is_empty() || host.contains(['/', ' ', '\t']) {
        return bad("expected host:port");
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => {}
        _ => return bad("the port is not a number from 1 to 65535"),
    }
    route::endpoint_uri(address, false)
        .map(|_| ())
        .map_err(|e| AdminError::Invalid(e.to_string()))
}

/// How an admin call failed.
enum CallFail {
    /// The node answered with a typed error.
    Remote(RemoteError),
    /// No answer.
    Transport(String),
}

impl CallFail {
    fn text(&self) -> String {
        match self {
            CallFail::Remote(e) => e.to_string(),
            CallFail::Transport(m) => m.clone(),
        }
    }
}

/// The admin side of one cluster, through a connected [`Client`].
struct Admin<'a> {
    client: &'a Client,
    header: pb::Header,
    tls: bool,
    /// Node id → `host:port`.
    nodes: BTreeMap<NodeId, String>,
    /// Nodes that did not answer a status lately (a dead node is not asked
    /// again on every look).
    down: std::sync::Mutex<BTreeMap<NodeId, Instant>>,
}

/// How long a node that did not answer is left out of the looks at the
/// cluster's state.
const DOWN_FOR: Duration = Duration::from_secs(5);

impl<'a> Admin<'a> {
    async fn new(client: &'a Client) -> Result<Admin<'a>, AdminError> {
        let status = client.status().await?;
        Ok(Admin {
            client,
            header: pb::Header {
                cluster_id: status.cluster_id,
                epoch: status.epoch,
            },
            tls: client.options().tls.is_some(),
            nodes: status
                .nodes
                .into_iter()
                .map(|n| (n.id, n.address))
                .collect(),
            down: std::sync::Mutex::new(BTreeMap::new()),
        })
    }

    fn channel(&self, address: &str) -> Result<Channel, CallFail> {
        let uri = route::endpoint_uri(address, self.tls)
            .map_err(|e| CallFail::Transport(e.to_string()))?;
        self.client
            .inner
            .channel(&uri)
            .map_err(|e| CallFail::Transport(e.to_string()))
    }

    fn deadline(&self) -> Duration {
        self.client.options().request_timeout
    }

    /// Maps a gRPC answer: a typed error in the response, or a status.
    async fn finish<R>(
        &self,
        address: &str,
        fut: impl std::future::Future<Output = Result<tonic::Response<R>, tonic::Status>>,
        error: impl FnOnce(&mut R) -> Option<pb::Error>,
    ) -> Result<R, CallFail> {
        match tokio::time::timeout(self.deadline(), fut).await {
            Err(_) => Err(CallFail::Transport(format!(
                "{address}: no answer within {:?}",
                self.deadline()
            ))),
            Ok(Err(s)) => Err(CallFail::Transport(format!(
                "{address}: {}",
                crate::route::status_words(&s)
            ))),
            Ok(Ok(r)) => {
                let mut r = r.into_inner();
                match error_from_pb(error(&mut r)) {
                    Some(e) => Err(CallFail::Remote(e)),
                    None => Ok(r),
                }
            }
        }
    }

    async fn status_at(&self, address: &str) -> Result<pb::StatusResponse, CallFail> {
        let mut c = MeridianClient::new(self.channel(address)?)
            .max_decoding_message_size(MAX_MESSAGE_BYTES);
        let mut req = tonic::Request::new(pb::StatusRequest {
            header: Some(self.header),
        });
        req.set_timeout(self.deadline());
        self.finish(address, c.status(req), |r| r.error.take())
            .await
    }

    async fn add_node_at(
        &self,
        address: &str,
        id: NodeId,
        new_address: &str,
    ) -> Result<bool, CallFail> {
        let mut c = AdminClient::new(self.channel(address)?);
        let mut req = tonic::Request::new(pb::AddNodeRequest {
            header: Some(self.header),
            node: Some(pb::NodeInfo {
                id,
                address: new_address.to_string(),
                ..Default::default()
            }),
        });
        req.set_timeout(self.deadline());
        self.finish(address, c.add_node(req), |r| r.error.take())
            .await
            .map(|r| r.already_known)
    }

    async fn change_at(
        &self,
        address: &str,
        group: GroupId,
        change: pb::change_membership_request::Change,
    ) -> Result<Vec<NodeId>, CallFail> {
        let mut c = AdminClient::new(self.channel(address)?);
        let mut req = tonic::Request::new(pb::ChangeMembershipRequest {
            header: Some(self.header),
            group,
            change: Some(change),
        });
        req.set_timeout(self.deadline());
        self.finish(address, c.change_membership(req), |r| r.error.take())
            .await
            .map(|r| r.voters)
    }

    /// The group as its leader sees it (or, with no leader answering, the
    /// answering replica furthest ahead): `(leader, voters, chosen)`.
    async fn group_state(
        &self,
        group: GroupId,
        skip: Option<NodeId>,
    ) -> Option<(Option<NodeId>, Vec<NodeId>, u64)> {
        let mut best: Option<(Option<NodeId>, Vec<NodeId>, u64)> = None;
        for (id, a) in &self.nodes {
            if Some(*id) == skip {
                continue;
            }
            let recently_down = {
                let down = self.down.lock().expect("down lock poisoned");
                down.get(id).is_some_and(|t| t.elapsed() < DOWN_FOR)
            };
            if recently_down {
                continue;
            }
            let s = match self.status_at(a).await {
                Ok(s) => s,
                Err(_) => {
                    let mut down = self.down.lock().expect("down lock poisoned");
                    down.insert(*id, Instant::now());
                    continue;
                }
            };
            let Some(g) = s.groups.iter().find(|g| g.id == group && g.local_replica) else {
                continue;
            };
            if g.local_leader {
                return Some((Some(*id), g.replicas.clone(), g.chosen));
            }
            if !g.replicas.contains(id) {
                continue; // a replica still waiting to be added
            }
            if best.as_ref().is_none_or(|b| g.chosen > b.2) {
                best = Some((g.leader, g.replicas.clone(), g.chosen));
            }
        }
        best
    }

    /// Adds or removes one voter at the group's leader, retrying while
    /// leaders move or a previous change is in progress, until the
    /// leader's voters show it. Answers whether it was already done.
    async fn change(
        &self,
        group: GroupId,
        change: pb::change_membership_request::Change,
        skip: Option<NodeId>,
        opts: &ReplaceOptions,
    ) -> Result<bool, AdminError> {
        use pb::change_membership_request::Change;
        let done = |voters: &[NodeId]| match change {
            Change::Add(n) => voters.contains(&n),
            Change::Remove(n) => !voters.contains(&n),
        };
        let started = Instant::now();
        let mut sent = false;
        let mut last = String::from("no leader answered");
        loop {
            if let Some((leader, voters, _)) = self.group_state(group, skip).await {
                // Done when the leader says so (and nothing is in flight:
                // a leader shows a change as soon as it is in its log, and
                // the next one is refused until it is chosen).
                if leader.is_some() && done(&voters) {
                    return Ok(!sent);
                }
                let mut order: Vec<NodeId> = leader.into_iter().collect();
                order.extend(self.nodes.keys().filter(|n| Some(**n) != leader));
                for n in order {
                    if Some(n) == skip {
                        continue;
                    }
                    let a = &self.nodes[&n];
                    match self.change_at(a, group, change).await {
                        Ok(_) => {
                            sent = true;
                            break;
                        }
                        Err(CallFail::Remote(
                            RemoteError::Txn(TxnError::NotLeader { .. })
                            | RemoteError::NoReplica { .. },
                        ))
                        | Err(CallFail::Transport(_)) => continue,
                        Err(CallFail::Remote(RemoteError::Txn(TxnError::LeaderNotReady))) => {
                            last = format!("node {n}: another change of the group is in progress");
                            break;
                        }
                        Err(CallFail::Remote(RemoteError::Invalid(m)))
                            if m.contains("already a voter") || m.contains("not a voter") =>
                        {
                            break; // done meanwhile: the next look says so
                        }
                        Err(CallFail::Remote(e)) if !e.is_retryable() => {
                            return Err(AdminError::Refused(format!(
                                "group {group}: node {n}: {e}"
                            )));
                        }
                        Err(e) => {
                            last = format!("node {n}: {}", e.text());
                        }
                    }
                }
            }
            if started.elapsed() > opts.change_timeout {
                return Err(AdminError::Unreachable(format!(
                    "group {group}: the change was not taken within {:?}: {last}",
                    opts.change_timeout
                )));
            }
            tokio::time::sleep(opts.poll_interval).await;
        }
    }
}

/// Tells every node of `client`'s cluster that answers of node `id` at
/// `address` (`AddNode`). Answers the nodes told and those that did not
/// answer; a node that refuses (it knows `id` at another address, say)
/// stops it with [`AdminError::Refused`].
pub async fn add_node(
    client: &Client,
    id: NodeId,
    address: &str,
) -> Result<(Vec<NodeId>, Vec<(NodeId, String)>), AdminError> {
    check_address(address)?;
    let admin = Admin::new(client).await?;
    let mut report = ReplaceReport::default();
    tell_all(&admin, id, address, &mut report, &mut |_| {}).await?;
    Ok((report.told, report.not_told))
}

async fn tell_all(
    admin: &Admin<'_>,
    id: NodeId,
    address: &str,
    report: &mut ReplaceReport,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<(), AdminError> {
    for (n, a) in &admin.nodes {
        if *n == id {
            continue;
        }
        match admin.add_node_at(a, id, address).await {
            Ok(already_known) => {
                report.told.push(*n);
                progress(Progress::Told {
                    node: *n,
                    already_known,
                });
            }
            Err(CallFail::Remote(e)) if !e.is_retryable() => {
                return Err(AdminError::Refused(format!("node {n}: {e}")));
            }
            Err(e) => {
                report.not_told.push((*n, e.text()));
                progress(Progress::NotTold {
                    node: *n,
                    why: e.text(),
                });
            }
        }
    }
    Ok(())
}

/// Replaces node `old` by node `new` at `address` in every group that has
/// `old` as a voter, online (see the module doc). `new` must be running,
/// from a configuration that lists every node and itself under `joining`
/// in those groups. Safe to run again after a partial run.
pub async fn replace_node(
    client: &Client,
    old: NodeId,
    new: NodeId,
    address: &str,
    opts: &ReplaceOptions,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<ReplaceReport, AdminError> {
    check_replace_args(old, new, address)?;
    let mut admin = Admin::new(client).await?;
    let groups = client.status().await?.groups;
    if !admin.nodes.contains_key(&old) && !groups.iter().any(|g| g.info.replicas.contains(&old)) {
        return Err(AdminError::Refused(format!(
            "node {old} is not a node of cluster {:#x}",
            admin.header.cluster_id
        )));
    }
    match admin.nodes.get(&new) {
        Some(a) if a != address => {
            return Err(AdminError::Refused(format!(
                "node {new} is already known at {a}, not {address}"
            )));
        }
        _ => {}
    }
    if let Some((owner, _)) = admin
        .nodes
        .iter()
        .find(|(id, a)| **id != new && a.as_str() == address)
    {
        return Err(AdminError::Refused(format!(
            "address {address} belongs to node {owner}"
        )));
    }

    // 1. Every node that answers learns the new node's address.
    let mut report = ReplaceReport::default();
    tell_all(&admin, new, address, &mut report, progress).await?;
    admin.nodes.insert(new, address.to_string());

    // 2. The new node answers, is the node named, of this cluster.
    let new_status = admin.status_at(address).await.map_err(|e| match e {
        CallFail::Remote(e) => AdminError::Refused(format!("the node at {address} refused: {e}")),
        CallFail::Transport(m) => AdminError::Unreachable(format!(
            "the new node at {address} does not answer (start it first): {m}"
        )),
    })?;
    if new_status.node != new {
        return Err(AdminError::Refused(format!(
            "the node at {address} is node {}, not {new}",
            new_status.node
        )));
    }

    // 3. Each group, one change at a time.
    let mut ids: Vec<GroupId> = groups.iter().map(|g| g.info.id).collect();
    ids.sort_unstable();
    for group in ids {
        let Some((_, voters, _)) = admin.group_state(group, None).await else {
            return Err(AdminError::Unreachable(format!(
                "no replica of group {group} answers"
            )));
        };
        if !voters.contains(&old) {
            if voters.contains(&new) {
                // Moved by an earlier run.
                progress(Progress::Removed {
                    group,
                    already: true,
                    voters: voters.clone(),
                });
                report.groups.push((group, voters));
            }
            continue;
        }
        if !new_status
            .groups
            .iter()
            .any(|g| g.id == group && g.local_replica)
        {
            return Err(AdminError::Refused(format!(
                "node {new} hosts no replica of group {group}: list it under `joining` for \
                 that group in its configuration and restart it"
            )));
        }
        let already = admin
            .change(
                group,
                pb::change_membership_request::Change::Add(new),
                None,
                opts,
            )
            .await?;
        progress(Progress::Added { group, already });
        catch_up(&admin, group, new, address, opts, progress).await?;
        let already = admin
            .change(
                group,
                pb::change_membership_request::Change::Remove(old),
                None,
                opts,
            )
            .await?;
        let voters = admin
            .group_state(group, None)
            .await
            .map(|s| s.1)
            .unwrap_or_default();
        progress(Progress::Removed {
            group,
            already,
            voters: voters.clone(),
        });
        report.groups.push((group, voters));
    }
    Ok(report)
}

/// Waits until `new`'s replica of `group` knows it is a voter and has
/// applied what the leader had chosen once the addition was in its log.
async fn catch_up(
    admin: &Admin<'_>,
    group: GroupId,
    new: NodeId,
    address: &str,
    opts: &ReplaceOptions,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<(), AdminError> {
    let started = Instant::now();
    let mut target = None;
    let mut applied = 0;
    let mut last_report: Option<Instant> = None;
    loop {
        if target.is_none() {
            if let Some((Some(_), voters, chosen)) = admin.group_state(group, Some(new)).await {
                if voters.contains(&new) {
                    target = Some(chosen);
                } else {
                    // The addition was in a leader's log but lost with its
                    // leadership: propose it again.
                    admin
                        .change(
                            group,
                            pb::change_membership_request::Change::Add(new),
                            None,
                            opts,
                        )
                        .await?;
                }
            }
        }
        if let Ok(s) = admin.status_at(address).await {
            if let Some(g) = s.groups.iter().find(|g| g.id == group) {
                applied = g.applied;
                if let Some(t) = target {
                    if g.replicas.contains(&new) && g.applied >= t {
                        progress(Progress::CaughtUp { group, applied });
                        return Ok(());
                    }
                }
            }
        }
        let t = target.unwrap_or(0);
        if last_report.is_none_or(|r| r.elapsed() >= Duration::from_secs(1)) {
            last_report = Some(Instant::now());
            progress(Progress::CatchingUp {
                group,
                applied,
                target: t,
            });
        }
        if started.elapsed() > opts.catch_up_timeout {
            return Err(AdminError::CatchUpTimeout {
                group,
                node: new,
                applied,
                target: t,
                waited: opts.catch_up_timeout,
            });
        }
        tokio::time::sleep(opts.poll_interval).await;
    }
}

/// One voter to add or remove.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MembershipChange {
    /// Add this node as a voter.
    Add(NodeId),
    /// Remove this voter.
    Remove(NodeId),
}

impl MembershipChange {
    fn to_pb(self) -> pb::change_membership_request::Change {
        match self {
            MembershipChange::Add(n) => pb::change_membership_request::Change::Add(n),
            MembershipChange::Remove(n) => pb::change_membership_request::Change::Remove(n),
        }
    }
}

/// Proposes one membership change of `group`, sent to each node until the
/// group's leader takes it; answers the voters the leader then shows (the
/// change is in its log, not necessarily chosen yet).
pub async fn change_membership(
    client: &Client,
    group: GroupId,
    change: MembershipChange,
) -> Result<Vec<NodeId>, AdminError> {
    let admin = Admin::new(client).await?;
    let mut last = String::from("no node answered");
    let mut answered = false;
    for (n, a) in &admin.nodes {
        match admin.change_at(a, group, change.to_pb()).await {
            Ok(voters) => return Ok(voters),
            Err(CallFail::Transport(m)) => last = m,
            Err(CallFail::Remote(e)) => {
                answered = true;
                last = format!("node {n}: {e}");
            }
        }
    }
    Err(if answered {
        AdminError::Refused(format!("group {group}: {last}"))
    } else {
        AdminError::Unreachable(last)
    })
}

/// Who waits for whom in every group each node leads: per node, its edges
/// or why it did not answer.
#[allow(clippy::type_complexity)]
pub async fn waits_for(
    client: &Client,
) -> Result<Vec<(NodeId, Result<Vec<pb::WaitsForEdge>, String>)>, AdminError> {
    let admin = Admin::new(client).await?;
    let mut out = Vec::new();
    for (n, a) in &admin.nodes {
        let r = match admin.channel(a) {
            Err(e) => Err(e.text()),
            Ok(ch) => {
                let mut c = AdminClient::new(ch);
                let mut req = tonic::Request::new(pb::WaitsForRequest {
                    header: Some(admin.header),
                });
                req.set_timeout(admin.deadline());
                admin
                    .finish(a, c.waits_for(req), |r| r.error.take())
                    .await
                    .map(|r| r.edges)
                    .map_err(|e| e.text())
            }
        };
        out.push((*n, r));
    }
    Ok(out)
}

/// Splits the range holding `key` at `key`: its group keeps the keys below
/// it, and the new group `child` takes the rest. `child` must be an id no
/// group of the cluster ever had (ids are never reused; the caller
/// allocates it). Sent to each node until one answers: a node forwards it
/// to the group's leader, which answers once the split applied there.
/// Answers the two ranges. A key outside the group's range or on its start,
/// or a change of the range still in progress, is refused (exit code 1 in
/// the CLI's terms; nothing changed); a key that is not a valid key is
/// [`AdminError::Invalid`].
pub async fn split(
    client: &Client,
    key: Bytes,
    child: GroupId,
) -> Result<(RangeDescriptor, RangeDescriptor), AdminError> {
    meridian_txn::api::check_key(&key).map_err(|e| AdminError::Invalid(e.to_string()))?;
    if child == 0 || child > meridian_txn::MAX_GROUP_ID {
        return Err(AdminError::Invalid(format!(
            "child group id {child} is outside 1..={}",
            meridian_txn::MAX_GROUP_ID
        )));
    }
    let admin = Admin::new(client).await?;
    let mut last = String::from("no node answered");
    let mut answered = false;
    for round in 0..SPLIT_ROUNDS {
        for (n, a) in &admin.nodes {
            let ch = match admin.channel(a) {
                Ok(ch) => ch,
                Err(e) => {
                    last = e.text();
                    continue;
                }
            };
            let mut c = AdminClient::new(ch);
            let mut req = tonic::Request::new(pb::SplitRequest {
                header: Some(admin.header),
                key: key.clone(),
                child,
                forwarded: false,
            });
            req.set_timeout(admin.deadline());
            match admin.finish(a, c.split(req), |r| r.error.take()).await {
                Ok(r) => {
                    let left = descriptor_from_pb(r.left).map_err(|e| {
                        AdminError::Refused(format!("node {n} answered badly: {e}"))
                    })?;
                    let right = descriptor_from_pb(r.right).map_err(|e| {
                        AdminError::Refused(format!("node {n} answered badly: {e}"))
                    })?;
                    return Ok((left, right));
                }
                Err(CallFail::Remote(e)) if !e.is_retryable() => {
                    return Err(AdminError::Refused(format!("node {n}: {e}")));
                }
                Err(CallFail::Remote(e)) => {
                    answered = true;
                    last = format!("node {n}: {e}");
                }
                Err(CallFail::Transport(m)) => last = m,
            }
        }
        tokio::time::sleep(SPLIT_RETRY_PAUSE * (round + 1)).await;
    }
    Err(if answered {
        AdminError::Unreachable(format!("no leader took the split: {last}"))
    } else {
        AdminError::Unreachable(last)
    })
}

/// Rounds over every node before [`split`] gives up (the group may be
/// electing a leader).
const SPLIT_ROUNDS: u32 = 5;

/// Pause after a round of [`split`] in which no node took it, times the
/// round's number.
const SPLIT_RETRY_PAUSE: Duration = Duration::from_millis(200);
