//! The nodes this node knows (docs/design.md §6): those of its
//! configuration's `[[nodes]]`, plus those it was told of at run time by
//! the `AddNode` admin call (`meridian admin replace-node`).
//!
//! A node added at run time is connected to at once and remembered in
//! `DATA_DIR/peers.toml`, written atomically (a temporary file, fsync,
//! rename, fsync of the directory) before the call is answered. At start the
//! file is read and merged with the configuration; where both name the same
//! id, the configuration wins (and a differing address is logged), so an
//! operator can always correct an address by editing the configuration.
//!
//! Refused: this node's own id, an id outside `1..=MAX_NODE_ID`, an address
//! that is not `host:port`, an id already known at another address, and an
//! address another known node already has (two ids at one address would
//! deliver one node's messages to the other).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use meridian_paxos::NodeId;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tonic::transport::{Channel, ClientTlsConfig};

use crate::config::NodeEntry;
use crate::peer;

/// Name of the file, in the data directory, of the nodes added at run time.
pub const PEERS_FILE: &str = "peers.toml";

/// The file's contents.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PeersFile {
    #[serde(default)]
    nodes: Vec<NodeEntry>,
}

/// Why a node was not added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddNodeError {
    /// The id is this node's own.
    #[error("node {0} is this node")]
    Own(NodeId),
    /// The id is outside `1..=MAX_NODE_ID`.
    #[error("node id {0} is outside 1..={max}", max = meridian_txn::MAX_NODE_ID)]
    BadId(NodeId),
    /// The address is not `host:port`.
    #[error("bad address {address:?}: {why}")]
    BadAddress {
        /// The address given.
        address: String,
        /// What is wrong with it.
        why: String,
    },
    /// The id is known at another address.
    #[error(
        "node {id} is already known at {known}, not {given}; a node's address is not changed at run time"
    )]
    Conflict {
        /// The node.
        id: NodeId,
        /// The address this node knows.
        known: String,
        /// The address given.
        given: String,
    },
    /// Another node has this address.
    #[error("address {address} belongs to node {owner}")]
    AddressTaken {
        /// The address given.
        address: String,
        /// The node known at it.
        owner: NodeId,
    },
    /// The peers file could not be written.
    #[error("cannot record node {id} in {path}: {why}")]
    Persist {
        /// The node.
        id: NodeId,
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
}

/// What [`Members::add`] did.
#[derive(Debug)]
pub enum Added {
    /// The node is new: here is a channel to it, for its outbound stream.
    New(Channel),
    /// The node was already known at this address; nothing changed.
    AlreadyKnown,
}

/// Checks that `address` is `host:port` with a non-empty host and a port in
/// 1..=65535.
pub fn check_address(address: &str) -> Result<(), String> {
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err("expected host:port".into());
    };
    if host.is_empty() || host.contains(['/', ' ', '\t']) || address.contains("://") {
        return Err("expected host:port".into());
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => {}
        _ => return Err("the port is not a number from 1 to 65535".into()),
    }
    // An IPv6 literal must be bracketed; tonic checks the rest.
    tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

struct Known {
    address: String,
    chan: Option<Channel>,
}

struct State {
    nodes: BTreeMap<NodeId, Known>,
    /// The nodes recorded in the peers file (added at run time and not in
    /// the configuration).
    recorded: Vec<NodeEntry>,
}

/// The nodes this node knows, with a channel to each peer.
pub struct Members {
    me: NodeId,
    file: PathBuf,
    tls: Option<ClientTlsConfig>,
    state: Mutex<State>,
}

impl Members {
    /// The configuration's nodes merged with those recorded in
    /// `data_dir`'s peers file, each peer with a channel (not yet
    /// connected).
    pub fn open(
        me: NodeId,
        configured: &[NodeEntry],
        data_dir: &Path,
        tls: Option<ClientTlsConfig>,
    ) -> Result<Members, String> {
        let file = data_dir.join(PEERS_FILE);
        let recorded_all = match std::fs::read_to_string(&file) {
            Ok(text) => {
                toml::from_str::<PeersFile>(&text)
                    .map_err(|e| format!("{} is malformed: {e}", file.display()))?
                    .nodes
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
        };
        let mut nodes = BTreeMap::new();
        for n in configured {
            let chan = if n.id == me {
                None
            } else {
                Some(peer::channel(&n.address, tls.as_ref())?)
            };
            nodes.insert(
                n.id,
                Known {
                    address: n.address.clone(),
                    chan,
                },
            );
        }
        let mut recorded = Vec::new();
        for n in recorded_all {
            match nodes.get(&n.id) {
                Some(k) if k.address != n.address => tracing::warn!(
                    node = n.id,
                    configured = %k.address,
                    recorded = %n.address,
                    file = %file.display(),
                    "the configuration and the peers file disagree on a node's address; using the configuration's"
                ),
                Some(_) => {}
                None if n.id == me => {}
                None => {
                    check_address(&n.address).map_err(|why| {
                        format!("{}: node {} has bad address: {why}", file.display(), n.id)
                    })?;
                    let chan = peer::channel(&n.address, tls.as_ref())?;
                    nodes.insert(
                        n.id,
                        Known {
                            address: n.address.clone(),
                            chan: Some(chan),
                        },
                    );
                    recorded.push(n);
                }
            }
        }
        Ok(Members {
            me,
            file,
            tls,
            state: Mutex::new(State { nodes, recorded }),
        })
    }

    /// Every known node, this one included, by id: `(id, host:port)`.
    pub fn nodes(&self) -> Vec<(NodeId, String)> {
        self.state
            .lock()
            .nodes
            .iter()
            .map(|(id, k)| (*id, k.address.clone()))
            .collect()
    }

    /// Whether `id` is a known node.
    pub fn knows(&self, id: NodeId) -> bool {
        self.state.lock().nodes.contains_key(&id)
    }

    /// A channel to every peer.
    pub fn channels(&self) -> Vec<(NodeId, Channel)> {
        self.state
            .lock()
            .nodes
            .iter()
            .filter_map(|(id, k)| k.chan.clone().map(|c| (*id, c)))
            .collect()
    }

    /// Adds node `id` at `address`: checks it, records it durably, and
    /// answers a channel to it (see the module doc for what is refused).
    pub fn add(&self, id: NodeId, address: &str) -> Result<Added, AddNodeError> {
        if id == self.me {
            return Err(AddNodeError::Own(id));
        }
        if id == 0 || id > meridian_txn::MAX_NODE_ID {
            return Err(AddNodeError::BadId(id));
        }
        check_address(address).map_err(|why| AddNodeError::BadAddress {
            address: address.to_string(),
            why,
        })?;
        let mut st = self.state.lock();
        if let Some(k) = st.nodes.get(&id) {
            if k.address == address {
                return Ok(Added::AlreadyKnown);
            }
            return Err(AddNodeError::Conflict {
                id,
                known: k.address.clone(),
                given: address.to_string(),
            });
        }
        if let Some((owner, _)) = st.nodes.iter().find(|(_, k)| k.address == address) {
            return Err(AddNodeError::AddressTaken {
                address: address.to_string(),
                owner: *owner,
            });
        }
        let chan =
            peer::channel(address, self.tls.as_ref()).map_err(|why| AddNodeError::BadAddress {
                address: address.to_string(),
                why,
            })?;
        let mut recorded = st.recorded.clone();
        recorded.push(NodeEntry {
            id,
            address: address.to_string(),
        });
        write_atomically(&self.file, &recorded).map_err(|e| AddNodeError::Persist {
            id,
            path: self.file.clone(),
            why: e.to_string(),
        })?;
        st.recorded = recorded;
        st.nodes.insert(
            id,
            Known {
                address: address.to_string(),
                chan: Some(chan.clone()),
            },
        );
        Ok(Added::New(chan))
    }
}

/// Writes the peers file so that a crash leaves the old or the new one,
/// never a mix: a temporary file, synced, renamed over, the directory
/// synced.
fn write_atomically(path: &Path, nodes: &[NodeEntry]) -> std::io::Result<()> {
    let text = format!(
        "# Nodes added at run time (meridian admin replace-node); read at start and merged\n\
         # with the configuration's [[nodes]], which wins where both name a node.\n{}",
        toml::to_string_pretty(&PeersFile {
            nodes: nodes.to_vec()
        })
        .map_err(std::io::Error::other)?
    );
    crate::durable::write_file_atomically(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: NodeId, port: u16) -> NodeEntry {
        NodeEntry {
            id,
            address: format!("127.0.0.1:{port}"),
        }
    }

    fn three() -> Vec<NodeEntry> {
        (1..=3).map(|i| entry(i, 7100 + i as u16)).collect()
    }

    // Channels are lazy but need a runtime to be made.
    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn add_node_refuses_own_id_bad_ids_bad_addresses_and_conflicts() {
        let _rt = rt();
        let _g = _rt.enter();
        let dir = tempfile::tempdir().unwrap();
        let m = Members::open(1, &three(), dir.path(), None).unwrap();
        assert_eq!(
            m.add(1, "127.0.0.1:9000").unwrap_err(),
            AddNodeError::Own(1)
        );
        assert_eq!(
            m.add(0, "127.0.0.1:9000").unwrap_err(),
            AddNodeError::BadId(0)
        );
        assert_eq!(
            m.add(70_000, "127.0.0.1:9000").unwrap_err(),
            AddNodeError::BadId(70_000)
        );
        for bad in [
            "",
            "no-port",
            ":7000",
            "host:notaport",
            "host:0",
            "host:70000",
            "http://host:7000",
            "a b:7000",
        ] {
            let e = m.add(4, bad).unwrap_err();
            assert!(
                matches!(e, AddNodeError::BadAddress { .. }),
                "{bad:?}: {e:?}"
            );
        }
        let e = m.add(2, "127.0.0.1:9000").unwrap_err();
        assert!(matches!(e, AddNodeError::Conflict { id: 2, .. }), "{e:?}");
        assert!(e.to_string().contains("127.0.0.1:7102"), "{e}");
        let e = m.add(4, "127.0.0.1:7103").unwrap_err();
        assert!(
            matches!(e, AddNodeError::AddressTaken { owner: 3, .. }),
            "{e:?}"
        );
        // Nothing refused was recorded.
        assert!(!dir.path().join(PEERS_FILE).exists());
        assert!(!m.knows(4));
    }

    #[test]
    fn an_added_node_is_known_at_once_and_after_a_restart() {
        let _rt = rt();
        let _g = _rt.enter();
        let dir = tempfile::tempdir().unwrap();
        let m = Members::open(1, &three(), dir.path(), None).unwrap();
        assert!(matches!(m.add(4, "127.0.0.1:7104"), Ok(Added::New(_))));
        assert!(m.knows(4));
        assert!(matches!(
            m.add(4, "127.0.0.1:7104"),
            Ok(Added::AlreadyKnown)
        ));
        assert_eq!(m.channels().len(), 3);
        assert!(m.nodes().contains(&(4, "127.0.0.1:7104".to_string())));
        drop(m);
        // A restart reads the file back.
        let m = Members::open(1, &three(), dir.path(), None).unwrap();
        assert!(m.knows(4));
        assert!(matches!(m.add(5, "127.0.0.1:7105"), Ok(Added::New(_))));
        let m = Members::open(2, &three(), dir.path(), None).unwrap();
        assert_eq!(
            m.nodes().iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5]
        );
        // The configuration wins over the file.
        let mut cfg = three();
        cfg.push(entry(4, 7999));
        let m = Members::open(1, &cfg, dir.path(), None).unwrap();
        assert!(m.nodes().contains(&(4, "127.0.0.1:7999".to_string())));
        // A damaged file is named.
        std::fs::write(dir.path().join(PEERS_FILE), "nodes = 3").unwrap();
        let e = Members::open(1, &three(), dir.path(), None).err().unwrap();
        assert!(e.contains(PEERS_FILE), "{e}");
    }
}
