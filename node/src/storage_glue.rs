//! Opens a node's write-ahead log and adapts it to the loop's [`Log`].

use std::collections::BTreeMap;

use meridian_paxos::{PersistRequest, Recovered};
use meridian_txn::GroupId;

use crate::config::NodeConfig;
use crate::runtime::Log;
use crate::server::StartError;
use crate::storage::{Wal, WalOptions};

impl Log for Wal {
    fn write(&mut self, group: GroupId, req: &PersistRequest) -> Result<(), String> {
        Wal::write(self, group, req).map_err(|e| e.to_string())
    }

    fn drop_group(&mut self, group: GroupId) -> Result<(), String> {
        Wal::drop_group(self, group).map_err(|e| e.to_string())
    }

    fn is_dropped(&self, group: GroupId) -> bool {
        Wal::is_dropped(self, group)
    }

    fn sync(&mut self) -> Result<(), String> {
        Wal::sync(self).map(|_| ()).map_err(|e| e.to_string())
    }
}

/// The log and what each group recovers from it.
pub type Opened = (Box<dyn Log>, BTreeMap<u64, Recovered>);

/// Opens the log in the configured data directory (locking it, and
/// checking or recording the directory's identity, [`crate::identity`]) and
/// returns what each group recovers.
pub fn open(cfg: &NodeConfig) -> Result<Opened, StartError> {
    // Refuse another cluster's or node's data before the log touches it
    // (recovery may cut a torn tail); record the identity once the
    // directory is locked.
    crate::identity::check(&cfg.data_dir, cfg.cluster_id, cfg.node_id)?;
    let (wal, recovered) = Wal::open(&cfg.data_dir, WalOptions::default())
        .map_err(|e| StartError::Storage(e.to_string()))?;
    crate::identity::bind(&cfg.data_dir, cfg.cluster_id, cfg.node_id)?;
    if let Some(t) = &wal.recovery().torn_tail {
        tracing::warn!(?t, "cut a torn tail from the write-ahead log");
    }
    Ok((Box::new(wal), recovered))
}
