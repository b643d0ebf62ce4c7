//! The client's picture of the cluster: nodes, groups and their key ranges,
//! leader hints; and the calls that follow it (docs/design.md §7).
//!
//! One place decides where a request goes and what to do with a refusal:
//! [`Client::call_group`] follows `NotLeader` hints, refreshes the range map
//! on a stale epoch, moves to another replica when a node is unreachable or
//! cannot serve, and backs off (exponentially, with jitter, bounded) when a
//! group is busy.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use meridian_participant::RangeDescriptor;
use meridian_proto::calls::CallRequest;
use meridian_proto::convert::{Answer, error_from_pb};
use meridian_proto::pb::meridian_client::MeridianClient;
use meridian_proto::{MAX_MESSAGE_BYTES, RemoteError, pb};
use meridian_truetime::RawInstant;
use meridian_txn::{GroupId, TxnError};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::directory::DirectoryRecord;
use crate::pipe::Pipe;
use crate::{ClientOptions, Error, NodeId};
use meridian_participant::INITIAL_GENERATION;

/// Most `Status` requests one `OutsideRange` refusal makes while the
/// group that took the refused keys is not yet known ([`Inner::learn`]).
const LEARN_TRIES: u32 = 10;

/// How long a node that failed at the transport level is tried after the
/// others.
const DOWN_FOR: Duration = Duration::from_secs(1);

/// Deadline of the liveness probe sent after a call times out.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// A group of the cluster as the client knows it: its key range
/// `[start, end)`, replicas and leader hint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupInfo {
    /// The group's id.
    pub id: GroupId,
    /// First key of its range (empty: from the first key there is).
    pub start: Bytes,
    /// Bound after its range's last key; `None`: no upper bound.
    pub end: Option<Bytes>,
    /// The nodes holding its replicas.
    pub replicas: Vec<NodeId>,
    /// The node believed to lead it, if any.
    pub leader: Option<NodeId>,
}

impl GroupInfo {
    /// Whether `key` is in the group's range.
    pub fn contains(&self, key: &[u8]) -> bool {
        key >= &self.start[..] && self.end.as_ref().is_none_or(|e| key < &e[..])
    }

    /// Whether `[start, end)` (no upper bound if `end` is `None`)
    /// overlaps the group's range.
    pub fn overlaps(&self, start: &[u8], end: Option<&[u8]>) -> bool {
        let below_end = self.end.as_ref().is_none_or(|e| start < &e[..]);
        let above_start = end.is_none_or(|e| e > &self.start[..]);
        below_end && above_start
    }
}

/// The cluster as last learned from a node's `Status`.
#[derive(Clone, Debug, Default)]
pub(crate) struct View {
    pub(crate) cluster_id: u64,
    pub(crate) epoch: u64,
    /// Node id → endpoint URI.
    pub(crate) nodes: BTreeMap<NodeId, String>,
    /// Sorted by range start.
    pub(crate) groups: Vec<GroupInfo>,
    /// The generation of each group's range where the client learnt it
    /// from the range directory; a range learnt from `Status` alone counts
    /// as [`INITIAL_GENERATION`].
    pub(crate) generations: BTreeMap<GroupId, u64>,
}

impl View {
    pub(crate) fn group_of(&self, key: &[u8]) -> Result<GroupId, Error> {
        self.groups
            .iter()
            .find(|g| g.contains(key))
            .map(|g| g.id)
            .ok_or_else(|| Error::Unavailable {
                detail: format!("no group's range holds key {}", crate::show_bytes(key)),
            })
    }

    /// The generation the client knows of `id`'s range.
    pub(crate) fn generation(&self, id: GroupId) -> u64 {
        self.generations
            .get(&id)
            .copied()
            .unwrap_or(INITIAL_GENERATION)
    }

    /// The first key of `[start, end)` no known range holds, if any (an
    /// empty `start`: from the first key).
    pub(crate) fn gap(&self, start: &[u8], end: Option<&[u8]>) -> Option<Bytes> {
        let mut at = Bytes::copy_from_slice(start);
        loop {
            if end.is_some_and(|e| at[..] >= *e) {
                return None;
            }
            let Some(g) = self.groups.iter().find(|g| g.contains(&at)) else {
                return Some(at);
            };
            match &g.end {
                Some(e) => at = e.clone(),
                None => return None,
            }
        }
    }

    /// Gives back its wider range (`widths`: the `Status` answer's) to
    /// each group a refusal narrowed where neither the answer nor the
    /// directory knows the group that took the keys it gave up: a hole in
    /// the map would fail requests for those keys, while the wider range
    /// only sends them to the group, whose refusal teaches the client
    /// again (docs/design.md §10, routing).
    fn widen_where_narrowing_left_a_hole(&mut self, widths: &[(GroupId, Bytes, Option<Bytes>)]) {
        for (id, start, end) in widths {
            let Some(g) = self.group(*id) else { continue };
            let after_covered = g.end.as_ref().is_none_or(|e| {
                end.as_ref() == Some(e) || self.groups.iter().any(|o| o.contains(e))
            });
            let before_covered = g.start == *start
                || self
                    .groups
                    .iter()
                    .any(|o| o.id != *id && o.end.as_ref() == Some(&g.start));
            if after_covered && before_covered {
                continue;
            }
            if let Some(g) = self.group_mut(*id) {
                g.start = start.clone();
                g.end = end.clone();
            }
            self.generations.remove(id);
        }
        self.groups.sort_by(|a, b| a.start.cmp(&b.start));
    }

    /// Lays directory records over the map: a record newer than what the
    /// client knows of its group replaces it, and drops the groups whose
    /// ranges it overlaps at an older generation (they were split since).
    /// A group's range only shrinks (by splits), so of two different ranges
    /// of one group the one inside the other is the newer: a map range
    /// inside its record's (the directory lags a later split) stands.
    fn apply_records(&mut self, records: &[DirectoryRecord]) {
        for r in records {
            let d = &r.descriptor;
            if let Some(g) = self.group(d.group) {
                let map_inside =
                    span_inside(&g.start, g.end.as_deref(), &d.start, d.end.as_deref());
                let record_inside =
                    span_inside(&d.start, d.end.as_deref(), &g.start, g.end.as_deref());
                if map_inside && record_inside {
                    // The same range: only its generation is news.
                    if d.generation > self.generation(d.group) {
                        self.generations.insert(d.group, d.generation);
                    }
                    continue;
                }
                if map_inside || (!record_inside && d.generation <= self.generation(d.group)) {
                    continue;
                }
            }
            let leader = self.group(d.group).and_then(|g| g.leader);
            let info = GroupInfo {
                id: d.group,
                start: d.start.clone(),
                end: d.end.clone(),
                replicas: r.replicas.clone(),
                leader,
            };
            let older: Vec<GroupId> = self
                .groups
                .iter()
                .filter(|g| {
                    g.id == d.group
                        || (g.overlaps(&d.start, d.end.as_deref())
                            && self.generation(g.id) < d.generation)
                })
                .map(|g| g.id)
                .collect();
            self.groups.retain(|g| !older.contains(&g.id));
            for id in older {
                self.generations.remove(&id);
            }
            self.groups.push(info);
            self.generations.insert(d.group, d.generation);
        }
        self.groups.sort_by(|a, b| a.start.cmp(&b.start));
    }

    pub(crate) fn group(&self, id: GroupId) -> Option<&GroupInfo> {
        self.groups.iter().find(|g| g.id == id)
    }

    fn group_mut(&mut self, id: GroupId) -> Option<&mut GroupInfo> {
        self.groups.iter_mut().find(|g| g.id == id)
    }

    /// Whether some read's key, or part of some scan, lies in no known
    /// range.
    pub(crate) fn misses(&self, reads: &[meridian_txn::ReadOp]) -> bool {
        reads.iter().any(|r| match r {
            meridian_txn::ReadOp::Get(k) => !self.groups.iter().any(|g| g.contains(k)),
            meridian_txn::ReadOp::Scan { start, end, .. } => {
                self.gap(start, end.as_deref()).is_some()
            }
        })
    }

    /// The groups whose ranges overlap `[start, end)`, in key order.
    pub(crate) fn groups_overlapping(&self, start: &[u8], end: Option<&[u8]>) -> Vec<GroupInfo> {
        self.groups
            .iter()
            .filter(|g| g.overlaps(start, end))
            .cloned()
            .collect()
    }
}

/// Whether the range `d` lies inside `g`'s and differs from it: after
/// splits alone (ranges only shrink), the newer of the two.
fn narrower(d: &RangeDescriptor, g: &GroupInfo) -> bool {
    let inside = d.start >= g.start
        && match (&d.end, &g.end) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(de), Some(ge)) => de <= ge,
        };
    inside && (d.start != g.start || d.end != g.end)
}

/// Whether `[a_start, a_end)` lies inside `[b_start, b_end)` (`None`: no
/// upper bound).
fn span_inside(a_start: &[u8], a_end: Option<&[u8]>, b_start: &[u8], b_end: Option<&[u8]>) -> bool {
    a_start >= b_start
        && match (a_end, b_end) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(ae), Some(be)) => ae <= be,
        }
}

/// Where a call to a group goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// The group's leader, following hints.
    Leader,
    /// Exactly this node, and only it: a transaction lives at the leader
    /// that began it.
    Pinned(NodeId),
    /// Any replica, round-robin, moving on when one cannot serve.
    AnyReplica,
}

/// Whether a call may be sent again after it may have reached the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resend {
    /// Idempotent: a lost answer is retried like any other failure.
    Safe,
    /// Not idempotent (a one-shot write, which the node would begin
    /// anew): a call that may have been delivered ends the call with
    /// [`Error::OutcomeUnknown`].
    Unsafe,
}

/// How one call failed.
#[derive(Debug)]
pub(crate) enum CallError {
    /// The node answered with a typed error.
    Remote(RemoteError),
    /// No answer: unreachable, reset, or past its deadline. `sent` is
    /// false only when the connection was certainly never made;
    /// `timed_out` when the deadline passed (the node may merely be slow
    /// to answer this call, e.g. while it waits for a lock).
    Transport {
        detail: String,
        sent: bool,
        timed_out: bool,
    },
    /// The node answered with a gRPC status that is not about transport
    /// (unimplemented, bad argument, ...).
    Rpc(String),
    /// The client could not make a connection as configured (TLS).
    Config(String),
}

impl CallError {
    pub(crate) fn into_error(self) -> Error {
        match self {
            CallError::Remote(e) => e.into(),
            CallError::Transport { detail, .. } => Error::Unavailable { detail },
            CallError::Rpc(m) => Error::Invalid(m),
            CallError::Config(m) => Error::Config(m),
        }
    }
}

/// The shared state behind every clone of a [`crate::Client`].
pub(crate) struct Inner {
    pub(crate) opts: ClientOptions,
    /// The TLS configuration, read from its files once at connect.
    tls: Option<ClientTlsConfig>,
    /// The endpoints given to `connect`, as URIs.
    pub(crate) seeds: Vec<String>,
    pub(crate) view: RwLock<View>,
    channels: Mutex<HashMap<String, Channel>>,
    /// The `Calls` stream to each node, by URI.
    pipes: Mutex<HashMap<String, Pipe>>,
    down: Mutex<HashMap<NodeId, Instant>>,
    rr: AtomicUsize,
    rng: Mutex<SmallRng>,
    /// The newest `TT.now()` reading: when its request was sent, by this
    /// process's monotonic clock, and the `latest` it answered.
    pub(crate) clock: Mutex<Option<(RawInstant, meridian_truetime::Timestamp)>>,
    /// Transaction ids reserved for this client, by group.
    spares: Mutex<HashMap<GroupId, Spares>>,
    /// The newest range directory record of each group the client has
    /// read or written, laid over every `Status` it installs.
    directory: Mutex<BTreeMap<GroupId, DirectoryRecord>>,
    /// Descriptors learned from `OutsideRange` refusals, by group: newer
    /// than what a lagging node's `Status` may say, so they override it.
    learned: Mutex<HashMap<GroupId, RangeDescriptor>>,
}

/// Transaction ids a group's leader reserved for this client at a `Begin`
/// (docs/design.md §5.1): each begins a later transaction at that group
/// with the transaction's first read there, without a `Begin`.
#[derive(Clone, Debug)]
pub(crate) struct Spares {
    /// The leader that reserved them: only it can begin them.
    pub(crate) node: NodeId,
    /// Their origin (that leader's term).
    pub(crate) origin: u64,
    /// The next sequence number to hand out, and the end of the range.
    pub(crate) next: u64,
    pub(crate) end: u64,
    /// The reserving `Begin`'s priority (`TT.now().latest` at the leader)
    /// and when its answer came: a spare's priority is that plus the time
    /// since, standing for its start time.
    pub(crate) priority: meridian_truetime::Timestamp,
    pub(crate) at: RawInstant,
}

/// A reserved id handed to a transaction: the id, the leader that begins
/// it, and the transaction's priority.
pub(crate) struct Spare {
    pub(crate) txn: meridian_participant::TxnId,
    pub(crate) node: NodeId,
    pub(crate) priority: meridian_truetime::Timestamp,
}

/// Turns `host:port`, `http://host:port` or `https://host:port` into a URI
/// for tonic; `https` when TLS is configured.
pub(crate) fn endpoint_uri(endpoint: &str, tls: bool) -> Result<String, Error> {
    let e = endpoint.trim();
    let bad = |why: &str| Error::Config(format!("bad endpoint {endpoint:?}: {why}"));
    let (scheme, rest) = match e.split_once("://") {
        Some(("http", rest)) => (if tls { "https" } else { "http" }, rest),
        Some(("https", rest)) => ("https", rest),
        Some((s, _)) => return Err(bad(&format!("unknown scheme {s:?}"))),
        None => (if tls { "https" } else { "http" }, e),
    };
    let rest = rest.trim_end_matches('/');
    let Some((host, port)) = rest.rsplit_once(':') else {
        return Err(bad("expected host:port"));
    };
    if host.is_empty() || host.contains('/') {
        return Err(bad("expected host:port"));
    }
    if port.parse::<u16>().is_err() {
        return Err(bad("the port is not a number from 0 to 65535"));
    }
    let uri = format!("{scheme}://{rest}");
    Endpoint::from_shared(uri.clone()).map_err(|e| bad(&e.to_string()))?;
    Ok(uri)
}

/// Mutual TLS from its PEM files (docs/design.md §6): the CA the nodes'
/// certificates chain to, and the client's certificate and key.
fn tls_config(tls: &crate::TlsOptions) -> Result<ClientTlsConfig, Error> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| Error::Config(format!("TLS file {}: {e}", p.display())))
    };
    let mut cfg = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(&tls.ca_cert)?));
    match (&tls.client_cert, &tls.client_key) {
        (Some(cert), Some(key)) => {
            cfg = cfg.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        (None, None) => {}
        _ => {
            return Err(Error::Config(
                "TLS needs both a client certificate and its key, or neither".into(),
            ));
        }
    }
    if let Some(d) = &tls.domain {
        cfg = cfg.domain_name(d.clone());
    }
    Ok(cfg)
}

/// Whether the call ended at its deadline: the server's `DeadlineExceeded`,
/// or the channel's own timeout (which tonic reports as `Cancelled`).
fn past_deadline(status: &tonic::Status) -> bool {
    match status.code() {
        tonic::Code::DeadlineExceeded => true,
        tonic::Code::Cancelled => status.message() == tonic::TimeoutExpired(()).to_string(),
        _ => false,
    }
}

/// A node's answer to one call: its typed error, or the gRPC status it
/// ended with sorted into transport failures and refusals.
fn answered<Resp: Answer>(
    uri: &str,
    answer: Result<Resp, tonic::Status>,
) -> Result<Resp, CallError> {
    use tonic::Code;
    match answer {
        Ok(mut r) => match error_from_pb(r.take_error()) {
            Some(e) => Err(CallError::Remote(e)),
            None => Ok(r),
        },
        Err(status) => match status.code() {
            Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Cancelled
            | Code::Unknown
            | Code::Aborted
            | Code::ResourceExhausted
            | Code::Internal => Err(CallError::Transport {
                detail: format!("{uri}: {}", tls_refusal_hint(uri, status_words(&status))),
                sent: !never_sent(&status),
                timed_out: past_deadline(&status),
            }),
            code => Err(CallError::Rpc(format!(
                "{uri} answered {code:?}: {}",
                status.message()
            ))),
        },
    }
}

/// A failed call's status in words: its message, with the deepest cause
/// of its source chain when that says more. A TLS failure names the TLS
/// error (`TLS: invalid peer certificate: UnknownIssuer`), not the HTTP/2
/// or transport layer it surfaced through.
pub(crate) fn status_words(status: &tonic::Status) -> String {
    use std::error::Error as _;
    let mut tls: Option<String> = None;
    let mut root: Option<String> = None;
    let mut source: Option<&(dyn std::error::Error + 'static)> = status.source();
    while let Some(e) = source {
        // An I/O error hides the error it wraps from `source()`.
        let inner = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|i| i.downcast_ref::<rustls::Error>());
        if let Some(r) = inner.or_else(|| e.downcast_ref::<rustls::Error>()) {
            tls = Some(r.to_string());
        }
        root = Some(e.to_string());
        source = e.source();
    }
    let msg = status.message();
    match (tls, root) {
        (Some(t), _) => format!("TLS: {t}{}", tls_hint(&t)),
        (None, Some(r)) if looks_like_tls(&r) => format!("TLS: {r}{}", tls_hint(&r)),
        (None, Some(r)) if !msg.contains(&r) => format!("{msg}: {r}"),
        _ if looks_like_tls(msg) => format!("TLS: {msg}{}", tls_hint(msg)),
        _ => msg.to_string(),
    }
}

/// `words` of a failure at `uri`, with a hint when a TLS connection was
/// closed under the client: with TLS 1.3 a node that refuses the client's
/// certificate does so after the client's side of the handshake, and the
/// client often sees only the connection close, not the node's alert.
pub(crate) fn tls_refusal_hint(uri: &str, words: String) -> String {
    let closed = [
        "connection closed",
        "broken pipe",
        "connection reset",
        "stream closed",
    ]
    .iter()
    .any(|w| words.contains(w));
    if uri.starts_with("https://") && closed && !words.starts_with("TLS") {
        format!(
            "{words} (TLS: a node closes the connection when it refuses the client's \
             certificate; check --tls-cert and --tls-key against the CA, and the node's log)"
        )
    } else {
        words
    }
}

/// Whether a message is a rustls error's, by its words.
fn looks_like_tls(m: &str) -> bool {
    [
        "certificate",
        "fatal alert",
        "handshake",
        "peer sent no certificates",
    ]
    .iter()
    .any(|w| m.contains(w))
}

/// What to do about a TLS failure, when its cause is a common one.
fn tls_hint(m: &str) -> &'static str {
    if m.contains("CertificateRequired") {
        " (the node requires a client certificate: pass --tls-cert and --tls-key)"
    } else if [
        "UnknownIssuer",
        "BadCertificate",
        "BadSignature",
        "DecryptError",
    ]
    .iter()
    .any(|w| m.contains(w))
    {
        " (the certificates are not signed by the same CA)"
    } else if m.contains("NotValidForName") {
        " (the node's certificate does not name the endpoint's host)"
    } else if m.contains("Expired") {
        " (a certificate has expired)"
    } else {
        ""
    }
}

/// Whether a gRPC failure certainly happened before the request left: the
/// connection was refused or could not be made.
pub(crate) fn never_sent(status: &tonic::Status) -> bool {
    use std::error::Error as _;
    let mut source: Option<&(dyn std::error::Error + 'static)> = status.source();
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::AddrNotAvailable
            ) {
                return true;
            }
        }
        let text = e.to_string();
        if text.contains("tcp connect error") || text.contains("error trying to connect") {
            return true;
        }
        source = e.source();
    }
    false
}

impl Inner {
    pub(crate) fn new(opts: ClientOptions, seeds: Vec<String>) -> Result<Inner, Error> {
        let tls = opts.tls.as_ref().map(tls_config).transpose()?;
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Ok(Inner {
            opts,
            tls,
            seeds,
            view: RwLock::new(View::default()),
            channels: Mutex::new(HashMap::new()),
            pipes: Mutex::new(HashMap::new()),
            down: Mutex::new(HashMap::new()),
            rr: AtomicUsize::new(0),
            rng: Mutex::new(SmallRng::seed_from_u64(seed)),
            clock: Mutex::new(None),
            spares: Mutex::new(HashMap::new()),
            directory: Mutex::new(BTreeMap::new()),
            learned: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a reserved id for a transaction at `group`, if one is held.
    pub(crate) fn take_spare(&self, group: GroupId) -> Option<Spare> {
        let mut spares = self.spares.lock().expect("spares lock poisoned");
        let s = spares.get_mut(&group)?;
        let txn = meridian_participant::TxnId::new(s.origin, s.next);
        let elapsed = u64::try_from(s.at.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let spare = Spare {
            txn,
            node: s.node,
            priority: s.priority.saturating_add(elapsed),
        };
        s.next += 1;
        if s.next >= s.end {
            spares.remove(&group);
        }
        Some(spare)
    }

    /// How many ids a `Begin` at `group` should reserve: none while some
    /// are held there.
    pub(crate) fn ids_to_reserve(&self, group: GroupId) -> u32 {
        let spares = self.spares.lock().expect("spares lock poisoned");
        if spares.contains_key(&group) {
            0
        } else {
            self.opts.reserve_ids
        }
    }

    /// Keeps the ids a `Begin` at `group` reserved, in place of any held
    /// (none kept if it reserved none).
    pub(crate) fn keep_spares(&self, group: GroupId, spares: Spares) {
        if spares.next < spares.end {
            let mut held = self.spares.lock().expect("spares lock poisoned");
            held.insert(group, spares);
        }
    }

    /// Drops the ids held for `group` (one was refused: its leader has
    /// most likely changed, and the rest would be refused too).
    pub(crate) fn drop_spares(&self, group: GroupId) {
        let mut held = self.spares.lock().expect("spares lock poisoned");
        held.remove(&group);
    }

    pub(crate) fn view(&self) -> View {
        self.view.read().expect("view lock poisoned").clone()
    }

    pub(crate) fn header(&self) -> pb::Header {
        let v = self.view.read().expect("view lock poisoned");
        pb::Header {
            cluster_id: v.cluster_id,
            epoch: v.epoch,
        }
    }

    /// The backoff before try `n` (from 0): `base · 2ⁿ`, at most `max`,
    /// scaled by a random factor in [½, 1] so retrying clients spread out.
    pub(crate) fn backoff(&self, n: u32) -> Duration {
        let exp = self
            .opts
            .backoff_base
            .saturating_mul(1u32 << n.min(16))
            .min(self.opts.backoff_max);
        let f: f64 = self
            .rng
            .lock()
            .expect("rng lock poisoned")
            .random_range(0.5..=1.0);
        exp.mul_f64(f)
    }

    pub(crate) fn channel(&self, uri: &str) -> Result<Channel, Error> {
        let mut channels = self.channels.lock().expect("channel lock poisoned");
        if let Some(c) = channels.get(uri) {
            return Ok(c.clone());
        }
        let o = &self.opts;
        let mut ep = Endpoint::from_shared(uri.to_string())
            .map_err(|e| Error::Config(format!("bad endpoint {uri}: {e}")))?
            .connect_timeout(o.connect_timeout)
            .timeout(o.request_timeout)
            .http2_keep_alive_interval(o.keepalive_interval)
            .keep_alive_timeout(o.keepalive_timeout)
            .keep_alive_while_idle(true)
            .tcp_nodelay(true)
            .initial_stream_window_size(meridian_proto::calls::STREAM_WINDOW_BYTES)
            .initial_connection_window_size(meridian_proto::calls::CONNECTION_WINDOW_BYTES);
        if let Some(tls) = &self.tls {
            ep = ep
                .tls_config(tls.clone())
                .map_err(|e| Error::Config(format!("TLS: {e}")))?;
        }
        let ch = ep.connect_lazy();
        channels.insert(uri.to_string(), ch.clone());
        Ok(ch)
    }

    /// [`Inner::channel`] for a call: a channel that cannot be made fails
    /// the call unsent.
    fn channel_for_call(&self, uri: &str) -> Result<Channel, CallError> {
        self.channel(uri).map_err(|e| match e {
            Error::Config(m) => CallError::Config(m),
            e => CallError::Transport {
                detail: e.to_string(),
                sent: false,
                timed_out: false,
            },
        })
    }

    /// The `Calls` stream to the node at `uri`, opened anew if it broke.
    fn pipe(&self, uri: &str) -> Result<Pipe, CallError> {
        let mut pipes = self.pipes.lock().expect("pipe lock poisoned");
        if let Some(p) = pipes.get(uri).filter(|p| !p.is_closed()) {
            return Ok(p.clone());
        }
        let ch = self.channel_for_call(uri)?;
        let p = Pipe::open(ch);
        pipes.insert(uri.to_string(), p.clone());
        Ok(p)
    }

    /// One call to the node at `uri`, on its `Calls` stream, with the
    /// per-call deadline.
    pub(crate) async fn rpc_at<Req: CallRequest>(
        &self,
        uri: &str,
        req: Req,
    ) -> Result<Req::Response, CallError> {
        let pipe = self.pipe(uri)?;
        let deadline = self.opts.request_timeout;
        match tokio::time::timeout(deadline, pipe.call(req, deadline)).await {
            Err(_) => Err(CallError::Transport {
                detail: format!("{uri}: no answer within {deadline:?}"),
                sent: true,
                timed_out: true,
            }),
            Ok(Err(failed)) => Err(CallError::Transport {
                detail: format!(
                    "{uri}: {}",
                    tls_refusal_hint(uri, failed.status.message().to_string())
                ),
                sent: failed.sent,
                timed_out: past_deadline(&failed.status),
            }),
            Ok(Ok(answer)) => answered(uri, answer),
        }
    }

    /// `Status` of the node at `uri`: a unary call (it is not one of the
    /// calls a `Calls` stream carries), with the per-call deadline.
    async fn status_at(
        &self,
        uri: &str,
        req: pb::StatusRequest,
    ) -> Result<pb::StatusResponse, CallError> {
        let ch = self.channel_for_call(uri)?;
        let mut client = MeridianClient::new(ch)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let mut request = tonic::Request::new(req);
        let deadline = self.opts.request_timeout;
        request.set_timeout(deadline);
        match tokio::time::timeout(deadline, client.status(request)).await {
            Err(_) => Err(CallError::Transport {
                detail: format!("{uri}: no answer within {deadline:?}"),
                sent: true,
                timed_out: true,
            }),
            Ok(answer) => answered(uri, answer.map(tonic::Response::into_inner)),
        }
    }

    /// Whether the node at `uri` answers a trivial call within
    /// [`PROBE_TIMEOUT`]: tells a slow call from a dead, paused or cut-off
    /// node.
    async fn answers(&self, uri: &str) -> bool {
        let Ok(ch) = self.channel(uri) else {
            return false;
        };
        let mut client = MeridianClient::new(ch);
        let mut request = tonic::Request::new(pb::NowRequest {
            header: Some(self.header()),
        });
        request.set_timeout(PROBE_TIMEOUT);
        matches!(
            tokio::time::timeout(PROBE_TIMEOUT, client.now(request)).await,
            Ok(Ok(_))
        )
    }

    fn is_down(&self, node: NodeId) -> bool {
        let down = self.down.lock().expect("down lock poisoned");
        down.get(&node).is_some_and(|t| t.elapsed() < DOWN_FOR)
    }

    fn mark_down(&self, node: NodeId) {
        self.down
            .lock()
            .expect("down lock poisoned")
            .insert(node, Instant::now());
    }

    fn mark_up(&self, node: NodeId) {
        self.down.lock().expect("down lock poisoned").remove(&node);
    }

    pub(crate) fn set_leader(&self, group: GroupId, leader: Option<NodeId>) {
        let mut v = self.view.write().expect("view lock poisoned");
        if let Some(g) = v.group_mut(group) {
            g.leader = leader;
        }
    }

    /// The replicas of `group`, those not recently unreachable first,
    /// starting at `first` if it is one of them.
    fn candidates(&self, group: &GroupInfo, first: Option<NodeId>) -> Vec<NodeId> {
        let mut order: Vec<NodeId> = Vec::with_capacity(group.replicas.len());
        if let Some(f) = first.filter(|f| group.replicas.contains(f)) {
            order.push(f);
        }
        order.extend(group.replicas.iter().copied().filter(|r| Some(*r) != first));
        let (up, down): (Vec<NodeId>, Vec<NodeId>) =
            order.into_iter().partition(|n| !self.is_down(*n));
        up.into_iter().chain(down).collect()
    }

    /// The node to try for `group` by `route` on try `n`, or `None` if the
    /// client knows no such group.
    fn pick(&self, group: GroupId, route: Route, n: u32) -> Option<(NodeId, String)> {
        let v = self.view.read().expect("view lock poisoned");
        let g = v.group(group)?;
        let node = match route {
            Route::Pinned(node) => node,
            Route::Leader => *self.candidates(g, g.leader).first()?,
            Route::AnyReplica => {
                let c = self.candidates(g, None);
                if c.is_empty() {
                    return None;
                }
                let up = match c.iter().filter(|n| !self.is_down(**n)).count() {
                    0 => c.len(),
                    k => k,
                };
                let i = self.rr.fetch_add(1, Ordering::Relaxed) + n as usize;
                c[i % up]
            }
        };
        let uri = v.nodes.get(&node)?.clone();
        Some((node, uri))
    }

    /// The leader hint after `node` refused as not the leader: its hint,
    /// or the next replica after it.
    fn follow_hint(&self, group: GroupId, node: NodeId, hint: Option<NodeId>) {
        let mut v = self.view.write().expect("view lock poisoned");
        let Some(g) = v.group_mut(group) else { return };
        if g.replicas.is_empty() {
            return;
        }
        let next = match hint.filter(|h| *h != node && g.replicas.contains(h)) {
            Some(h) => h,
            None => {
                let i = g.replicas.iter().position(|r| *r == node).unwrap_or(0);
                g.replicas[(i + 1) % g.replicas.len().max(1)]
            }
        };
        g.leader = Some(next);
    }

    /// Learns the cluster from the first node (known nodes first, then the
    /// endpoints given to `connect`) that answers `Status`.
    pub(crate) async fn refresh(&self) -> Result<pb::StatusResponse, Error> {
        let (known, cluster_id): (Vec<String>, u64) = {
            let v = self.view.read().expect("view lock poisoned");
            (v.nodes.values().cloned().collect(), v.cluster_id)
        };
        let mut tried: Vec<String> = Vec::new();
        let mut failures: Vec<String> = Vec::new();
        for uri in known.into_iter().chain(self.seeds.iter().cloned()) {
            if tried.contains(&uri) {
                continue;
            }
            tried.push(uri.clone());
            // Discovery: cluster id 0 and epoch 0 ask any node of any
            // cluster; the answer's id is then checked.
            let req = pb::StatusRequest {
                header: Some(pb::Header {
                    cluster_id: 0,
                    epoch: 0,
                }),
            };
            match self.status_at(&uri, req).await {
                Ok(s) => {
                    if cluster_id != 0 && s.cluster_id != cluster_id {
                        failures.push(format!(
                            "{uri} belongs to cluster {}, not {cluster_id}",
                            s.cluster_id
                        ));
                        continue;
                    }
                    self.install(&s)?;
                    return Ok(s);
                }
                Err(CallError::Remote(RemoteError::ClusterMismatch { expected, got })) => {
                    return Err(Error::ClusterMismatch {
                        expected: got,
                        got: expected,
                    });
                }
                Err(CallError::Remote(e)) => failures.push(format!("{uri}: {e}")),
                Err(CallError::Config(m)) => return Err(Error::Config(m)),
                Err(CallError::Transport { detail, .. }) | Err(CallError::Rpc(detail)) => {
                    failures.push(detail)
                }
            }
        }
        if failures.len() == 1 && cluster_id == 0 {
            // One endpoint and it failed: its own words are clearer.
            return Err(Error::Unavailable {
                detail: failures.remove(0),
            });
        }
        Err(Error::Unavailable {
            detail: format!("no endpoint answered: {}", failures.join("; ")),
        })
    }

    /// The `Status` of node `node` at `address` (`host:port`), asked
    /// with the cluster's header.
    pub(crate) async fn status_of(
        &self,
        node: NodeId,
        address: &str,
    ) -> Result<pb::StatusResponse, Error> {
        let uri = endpoint_uri(address, self.opts.tls.is_some())?;
        let req = pb::StatusRequest {
            header: Some(self.header()),
        };
        match self.status_at(&uri, req).await {
            Ok(s) => Ok(s),
            Err(CallError::Remote(e)) => Err(Error::from(e)),
            Err(CallError::Config(m)) => Err(Error::Config(m)),
            Err(CallError::Transport { detail, .. }) | Err(CallError::Rpc(detail)) => {
                Err(Error::Unavailable {
                    detail: format!("node {node} did not answer: {detail}"),
                })
            }
        }
    }

    /// Replaces the view with a node's `Status`, keeping leader hints the
    /// answer does not know, and the ranges learned from refusals where the
    /// answer is older: a range only shrinks (splits), so a learned range
    /// strictly inside the answer's is the newer.
    fn install(&self, s: &pb::StatusResponse) -> Result<(), Error> {
        let tls = self.opts.tls.is_some();
        let mut nodes = BTreeMap::new();
        for n in &s.nodes {
            nodes.insert(n.id, endpoint_uri(&n.address, tls)?);
        }
        let mut learned = self.learned.lock().expect("learned lock poisoned");
        let mut v = self.view.write().expect("view lock poisoned");
        // Generations of the ranges taken from refusals: a directory record
        // replaces them only when newer still.
        let mut generations = BTreeMap::new();
        // The answer's ranges of the groups a refusal narrowed.
        let mut widths: Vec<(GroupId, Bytes, Option<Bytes>)> = Vec::new();
        let mut groups: Vec<GroupInfo> = s
            .groups
            .iter()
            .map(|g| {
                let mut info = GroupInfo {
                    id: g.id,
                    start: g.start.clone(),
                    end: g.end.clone(),
                    replicas: g.replicas.clone(),
                    leader: g
                        .leader
                        .or_else(|| v.group(g.id).and_then(|old| old.leader)),
                };
                if let Some(d) = learned.get(&g.id) {
                    if narrower(d, &info) {
                        widths.push((g.id, info.start.clone(), info.end.clone()));
                        info.start = d.start.clone();
                        info.end = d.end.clone();
                        generations.insert(g.id, d.generation);
                    } else {
                        learned.remove(&g.id);
                    }
                }
                info
            })
            .collect();
        // What the client learned before from other nodes stays: a range
        // the answer has wider (a node that does not host the group knows
        // only its bootstrap range) keeps the narrower one learned, and a
        // group the answer does not list (created at run time on nodes
        // other than the one answering) is kept. Within an epoch a range
        // only shrinks, so the narrower is the newer; a stale range costs
        // one refusal, while a forgotten group would leave a hole in the
        // map. A new epoch (the layout re-laid) replaces the map, and so
        // does an answer the merge would leave with a hole it has not.
        if v.epoch == s.epoch {
            let plain = groups.clone();
            let plain_generations = generations.clone();
            for g in &mut groups {
                if let Some(old) = v.group(g.id) {
                    if narrower(
                        &RangeDescriptor {
                            group: old.id,
                            start: old.start.clone(),
                            end: old.end.clone(),
                            generation: v.generation(old.id),
                        },
                        g,
                    ) {
                        g.start = old.start.clone();
                        g.end = old.end.clone();
                        generations
                            .entry(g.id)
                            .or_insert_with(|| v.generation(g.id));
                    }
                }
            }
            for old in &v.groups {
                if !groups.iter().any(|g| g.id == old.id) {
                    groups.push(old.clone());
                    if let Some(gen_) = v.generations.get(&old.id) {
                        generations.insert(old.id, *gen_);
                    }
                }
            }
            let holed = |gs: &[GroupInfo]| {
                let mut sorted = gs.to_vec();
                sorted.sort_by(|a, b| a.start.cmp(&b.start));
                View {
                    groups: sorted,
                    ..View::default()
                }
                .gap(b"", None)
                .is_some()
            };
            if holed(&groups) && !holed(&plain) {
                groups = plain;
                generations = plain_generations;
            }
        }
        groups.sort_by(|a, b| a.start.cmp(&b.start));
        *v = View {
            cluster_id: s.cluster_id,
            epoch: s.epoch,
            nodes,
            groups,
            generations,
        };
        let records: Vec<DirectoryRecord> = self
            .directory
            .lock()
            .expect("directory lock poisoned")
            .values()
            .cloned()
            .collect();
        v.apply_records(&records);
        v.widen_where_narrowing_left_a_hole(&widths);
        Ok(())
    }

    /// Keeps the range directory's `records` (each where newer than the
    /// one the client holds) and lays them over the range map.
    pub(crate) fn install_records(&self, records: &[DirectoryRecord]) {
        let mut held = self.directory.lock().expect("directory lock poisoned");
        for r in records {
            let d = &r.descriptor;
            if held
                .get(&d.group)
                .is_none_or(|h| h.descriptor.generation < d.generation)
            {
                held.insert(d.group, r.clone());
            }
        }
        let all: Vec<DirectoryRecord> = held.values().cloned().collect();
        drop(held);
        self.view
            .write()
            .expect("view lock poisoned")
            .apply_records(&all);
    }

    /// Takes in what a group said it serves (an `OutsideRange` refusal):
    /// its range, kept over a lagging node's `Status`, and the group that
    /// took the keys it gave up, from the `Status` of the node that
    /// refused, else of any node. A leader refuses the keys of a split it
    /// has proposed before the split applied and the new group exists, so
    /// the `Status` is asked again (with backoff, [`LEARN_TRIES`] times)
    /// until a group holds those keys; if none does by then, the view keeps
    /// the wider range (the next request is refused again), never a hole.
    pub(crate) async fn learn(&self, d: &RangeDescriptor, from: &str) -> Result<(), Error> {
        {
            let mut learned = self.learned.lock().expect("learned lock poisoned");
            let newer = learned
                .get(&d.group)
                .is_none_or(|old| old.generation < d.generation);
            if newer {
                learned.insert(d.group, d.clone());
            }
        }
        for n in 0..LEARN_TRIES {
            if n > 0 {
                tokio::time::sleep(self.backoff(n - 1)).await;
            }
            let req = pb::StatusRequest {
                header: Some(self.header()),
            };
            match self.status_at(from, req).await {
                Ok(s) => self.install(&s)?,
                Err(_) => {
                    self.refresh().await?;
                }
            }
            if self.covers_around(d) {
                return Ok(());
            }
        }
        self.learned
            .lock()
            .expect("learned lock poisoned")
            .remove(&d.group);
        self.refresh().await.map(|_| ())
    }

    /// Whether the view has a group for the keys just outside `d` (those
    /// it gave up): one starting at its end, and one ending at its start.
    fn covers_around(&self, d: &RangeDescriptor) -> bool {
        let v = self.view.read().expect("view lock poisoned");
        let after = d
            .end
            .as_ref()
            .is_none_or(|e| v.groups.iter().any(|g| g.start == *e));
        let before =
            d.start.is_empty() || v.groups.iter().any(|g| g.end.as_ref() == Some(&d.start));
        after && before
    }

    /// Sends a request to `group` by `route`, following the routing rules
    /// of the module doc, until it is answered, refused for good, or the
    /// tries or the retry budget run out. Answers the response and the node
    /// that gave it.
    ///
    /// `WrongGroup` refreshes the range map and is returned: the caller
    /// decides again which group holds its keys. So does `OutsideRange`,
    /// returned as `WrongGroup` once the view took in its descriptor.
    pub(crate) async fn call_group<Req, M>(
        &self,
        group: GroupId,
        route: Route,
        resend: Resend,
        make: M,
    ) -> Result<(Req::Response, NodeId), Error>
    where
        Req: CallRequest,
        M: Fn(pb::Header) -> Req,
    {
        let started = Instant::now();
        let tries = self.opts.max_request_tries.max(1);
        let mut last: Option<Error> = None;
        let mut backoffs = 0u32;
        for n in 0..tries {
            if n > 0 && started.elapsed() > self.opts.retry_budget {
                break;
            }
            let Some((node, uri)) = self.pick(group, route, n) else {
                // A group or node the view does not know: refresh once.
                if n == 0 {
                    self.refresh().await?;
                    continue;
                }
                return Err(last.unwrap_or_else(|| Error::Unavailable {
                    detail: format!("no known replica of group {group}"),
                }));
            };
            let mut pause = false;
            match self.rpc_at(&uri, make(self.header())).await {
                Ok(r) => {
                    self.mark_up(node);
                    if route == Route::Leader {
                        self.set_leader(group, Some(node));
                    }
                    return Ok((r, node));
                }
                Err(CallError::Transport {
                    detail,
                    sent,
                    timed_out,
                }) => {
                    if timed_out && self.answers(&uri).await {
                        // The node is up and answers at once: this call is
                        // slow, not the node (a locking read waits its
                        // turn). Ask it again: the leader joins a repeated
                        // read to the one in progress, and a lock already
                        // granted answers at once.
                        if sent && resend == Resend::Unsafe {
                            return Err(Error::OutcomeUnknown { txn: None });
                        }
                        last = Some(Error::Timeout(format!(
                            "node {node} answers, but not this call: {detail}"
                        )));
                        continue;
                    }
                    self.mark_down(node);
                    if sent && resend == Resend::Unsafe {
                        return Err(Error::OutcomeUnknown { txn: None });
                    }
                    let e = Error::Unavailable {
                        detail: format!("node {node}: {detail}"),
                    };
                    if let Route::Pinned(_) = route {
                        return Err(e);
                    }
                    if route == Route::Leader {
                        self.follow_hint(group, node, None);
                    }
                    // Every replica tried once: pause before the next round.
                    pause = n > 0 && self.group_size(group) <= (n as usize + 1);
                    last = Some(e);
                }
                Err(CallError::Rpc(m)) => return Err(Error::Invalid(m)),
                Err(CallError::Config(m)) => return Err(Error::Config(m)),
                Err(CallError::Remote(e)) => {
                    match &e {
                        RemoteError::Txn(TxnError::NotLeader { leader }) => {
                            if let Route::Pinned(_) = route {
                                return Err(e.into());
                            }
                            self.follow_hint(group, node, *leader);
                            // A hint to itself or none: the group is
                            // electing; wait a little.
                            pause = leader.is_none_or(|l| l == node) || n > 1;
                        }
                        RemoteError::StaleEpoch { .. } => {
                            self.refresh().await?;
                        }
                        RemoteError::WrongGroup { .. } => {
                            self.refresh().await?;
                            return Err(e.into());
                        }
                        RemoteError::Txn(TxnError::OutsideRange { descriptor }) => {
                            self.learn(descriptor, &uri).await?;
                            return Err(Error::Remote(RemoteError::WrongGroup {
                                group: descriptor.group,
                            }));
                        }
                        RemoteError::NoReplica { .. } => {
                            if let Route::Pinned(_) = route {
                                return Err(e.into());
                            }
                            self.refresh().await?;
                        }
                        RemoteError::Txn(TxnError::NotYetSafe { .. })
                        | RemoteError::ClockUnhealthy(_)
                        | RemoteError::Draining => {
                            // Another replica may serve now.
                            if route == Route::Leader {
                                self.follow_hint(group, node, None);
                            }
                            if !matches!(e, RemoteError::Txn(TxnError::NotYetSafe { .. })) {
                                self.mark_down(node);
                            }
                            pause = true;
                        }
                        RemoteError::Txn(
                            TxnError::LeaderNotReady
                            | TxnError::Overloaded
                            | TxnError::LockQueueFull { .. },
                        ) => pause = true,
                        _ => return Err(e.into()),
                    }
                    last = Some(e.into());
                }
            }
            if pause {
                tokio::time::sleep(self.backoff(backoffs)).await;
                backoffs += 1;
            }
        }
        Err(match last {
            Some(Error::Unavailable { detail }) => Error::Unavailable {
                detail: format!("gave up on group {group}: {detail}"),
            },
            Some(e) => e,
            None => Error::Timeout(format!("retry budget for group {group} spent")),
        })
    }

    fn group_size(&self, group: GroupId) -> usize {
        let v = self.view.read().expect("view lock poisoned");
        v.group(group).map_or(1, |g| g.replicas.len().max(1))
    }

    /// One call to any node (for `Now` and `Status`), trying each known
    /// node in turn.
    pub(crate) async fn call_any<Req, M>(&self, make: M) -> Result<Req::Response, Error>
    where
        Req: CallRequest,
        M: Fn(pb::Header) -> Req,
    {
        let nodes: Vec<(NodeId, String)> = {
            let v = self.view.read().expect("view lock poisoned");
            v.nodes.iter().map(|(n, u)| (*n, u.clone())).collect()
        };
        let start = self.rr.fetch_add(1, Ordering::Relaxed);
        let mut order: Vec<(NodeId, String)> = (0..nodes.len())
            .map(|i| nodes[(start + i) % nodes.len()].clone())
            .collect();
        order.sort_by_key(|(n, _)| self.is_down(*n));
        let mut failures = Vec::new();
        for (node, uri) in order {
            match self.rpc_at(&uri, make(self.header())).await {
                Ok(r) => return Ok(r),
                Err(CallError::Transport { detail, .. }) => {
                    self.mark_down(node);
                    failures.push(detail);
                }
                Err(CallError::Remote(RemoteError::StaleEpoch { .. })) => {
                    self.refresh().await?;
                    return match self.rpc_at(&uri, make(self.header())).await {
                        Ok(r) => Ok(r),
                        Err(e) => Err(e.into_error()),
                    };
                }
                Err(e) => failures.push(e.into_error().to_string()),
            }
        }
        Err(Error::Unavailable {
            detail: format!("no node answered: {}", failures.join("; ")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ginfo(id: GroupId, start: &str, end: Option<&str>) -> GroupInfo {
        GroupInfo {
            id,
            start: Bytes::copy_from_slice(start.as_bytes()),
            end: end.map(|e| Bytes::copy_from_slice(e.as_bytes())),
            replicas: vec![1, 2, 3],
            leader: Some(1),
        }
    }

    fn record(id: GroupId, start: &str, end: Option<&str>, generation: u64) -> DirectoryRecord {
        DirectoryRecord {
            descriptor: RangeDescriptor {
                group: id,
                start: Bytes::copy_from_slice(start.as_bytes()),
                end: end.map(|e| Bytes::copy_from_slice(e.as_bytes())),
                generation,
            },
            replicas: vec![1, 2, 3],
        }
    }

    fn ranges(v: &View) -> Vec<(GroupId, Bytes, Option<Bytes>)> {
        v.groups
            .iter()
            .map(|g| (g.id, g.start.clone(), g.end.clone()))
            .collect()
    }

    #[test]
    fn a_refusal_narrowing_a_range_never_leaves_a_hole_in_the_map() {
        // The answer (from a node that hosts neither half) still has the
        // parent's whole range; a refusal narrowed it to ["", "m"); no
        // one knows the child yet: the group keeps the wider range.
        let mut v = View {
            groups: vec![ginfo(1, "", Some("m"))],
            ..View::default()
        };
        v.widen_where_narrowing_left_a_hole(&[(1, Bytes::new(), None)]);
        assert_eq!(v.gap(b"", None), None);
        assert_eq!(v.group_of(b"peach").expect("routed"), 1);
        // Once the child is known (here from the directory), the narrower
        // range stands.
        let mut v = View {
            groups: vec![ginfo(1, "", Some("m")), ginfo(7, "m", None)],
            ..View::default()
        };
        v.widen_where_narrowing_left_a_hole(&[(1, Bytes::new(), None)]);
        assert_eq!(v.group_of(b"peach").expect("routed"), 7);
        assert_eq!(v.group_of(b"apple").expect("routed"), 1);
    }

    #[test]
    fn directory_records_newer_than_the_map_replace_it_and_fill_its_gaps() {
        // A map from a node that knows the parent's new range but not the
        // child: a gap the directory fills.
        let mut v = View {
            groups: vec![ginfo(1, "", Some("m"))],
            ..View::default()
        };
        assert_eq!(v.gap(b"", None).as_deref(), Some(&b"m"[..]));
        assert!(v.misses(&[meridian_txn::ReadOp::Get(Bytes::from_static(b"peach"))]));
        v.apply_records(&[record(1, "", Some("m"), 2), record(7, "m", None, 2)]);
        assert_eq!(v.gap(b"", None), None);
        assert_eq!(v.group_of(b"peach").expect("routed"), 7);
        assert_eq!(v.group(1).and_then(|g| g.leader), Some(1), "hint kept");

        // A map from a node that still has the parent's whole range: the
        // newer records replace it, whichever comes first.
        let mut v = View {
            groups: vec![ginfo(1, "", None)],
            ..View::default()
        };
        v.apply_records(&[record(7, "m", None, 2), record(1, "", Some("m"), 2)]);
        assert_eq!(
            ranges(&v),
            vec![
                (1, Bytes::new(), Some(Bytes::from_static(b"m"))),
                (7, Bytes::from_static(b"m"), None)
            ]
        );

        // A directory that lags a later split (group 1 split again at "f",
        // into group 9, not yet recorded) changes nothing: the map's range
        // of group 1 lies inside the record's, so it is the newer.
        let mut v = View {
            groups: vec![
                ginfo(1, "", Some("f")),
                ginfo(9, "f", Some("m")),
                ginfo(7, "m", None),
            ],
            ..View::default()
        };
        let before = ranges(&v);
        v.apply_records(&[record(1, "", Some("m"), 2), record(7, "m", None, 2)]);
        assert_eq!(ranges(&v), before);
        assert_eq!(v.generation(7), 2);
    }

    fn info(start: &'static str, end: Option<&'static str>) -> GroupInfo {
        GroupInfo {
            id: 1,
            start: Bytes::from_static(start.as_bytes()),
            end: end.map(|e| Bytes::from_static(e.as_bytes())),
            replicas: vec![1],
            leader: None,
        }
    }

    fn desc(start: &'static str, end: Option<&'static str>) -> RangeDescriptor {
        RangeDescriptor {
            group: 1,
            start: Bytes::from_static(start.as_bytes()),
            end: end.map(|e| Bytes::from_static(e.as_bytes())),
            generation: 2,
        }
    }

    /// Splits only shrink a range: of a learned descriptor and a node's
    /// `Status`, the narrower is the newer, and a lagging node's wider
    /// range never undoes what a refusal taught.
    #[test]
    fn a_learned_range_overrides_a_wider_status_and_yields_to_a_narrower_one() {
        assert!(narrower(&desc("", Some("m")), &info("", None)));
        assert!(narrower(&desc("m", Some("t")), &info("m", None)));
        assert!(!narrower(&desc("", None), &info("", Some("m"))));
        assert!(
            !narrower(&desc("", Some("m")), &info("", Some("m"))),
            "equal is not newer"
        );
        assert!(!narrower(&desc("a", Some("z")), &info("b", Some("y"))));
    }
}
