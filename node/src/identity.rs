//! The identity of a data directory (docs/operations.md "Data directories"):
//! the cluster and the node its data belongs to.
//!
//! On its first start a node records its cluster id and node id in
//! `DATA_DIR/identity.toml`, written atomically (a temporary file, fsync,
//! rename, fsync of the directory). Every later start compares the file with
//! the configuration and refuses, naming both, when either id differs: a
//! log of another cluster, or another node's replicas, must never be
//! replayed as this node's (a node would vote twice in one ballot, or a
//! cluster would take another's committed writes as its own). A node that
//! joins later records the id it was allocated the same way.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Name of the identity file in the data directory.
pub const IDENTITY_FILE: &str = "identity.toml";

/// Version of the identity file's format.
pub const IDENTITY_FORMAT: u32 = 1;

/// The file's contents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataIdentity {
    /// The file's format ([`IDENTITY_FORMAT`]).
    pub format: u32,
    /// The cluster whose data this is.
    pub cluster_id: u64,
    /// The node whose data this is.
    pub node_id: u64,
}

/// Why a data directory cannot be used as configured.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The directory holds the data of another cluster or another node.
    #[error(
        "data directory {dir} belongs to cluster {recorded_cluster:#x} node {recorded_node}, \
         but this node is configured as cluster {configured_cluster:#x} node {configured_node} \
         (recorded in {file}); point data_dir at this node's own directory"
    )]
    Mismatch {
        /// The data directory.
        dir: PathBuf,
        /// The identity file.
        file: PathBuf,
        /// The cluster the directory belongs to.
        recorded_cluster: u64,
        /// The node the directory belongs to.
        recorded_node: u64,
        /// The configured cluster.
        configured_cluster: u64,
        /// The configured node.
        configured_node: u64,
    },
    /// The identity file is unreadable or malformed.
    #[error("cannot read the identity of data directory {file}: {why}")]
    Unreadable {
        /// The identity file.
        file: PathBuf,
        /// Why.
        why: String,
    },
    /// The identity file could not be written.
    #[error("cannot record the identity of data directory in {file}: {source}")]
    Write {
        /// The identity file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The identity recorded in `dir`, if any.
pub fn read(dir: &Path) -> Result<Option<DataIdentity>, IdentityError> {
    let file = dir.join(IDENTITY_FILE);
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(IdentityError::Unreadable {
                file,
                why: e.to_string(),
            });
        }
    };
    let id: DataIdentity = toml::from_str(&text).map_err(|e| IdentityError::Unreadable {
        file: file.clone(),
        why: e.to_string(),
    })?;
    if id.format != IDENTITY_FORMAT {
        return Err(IdentityError::Unreadable {
            file,
            why: format!(
                "format {} is not {IDENTITY_FORMAT}, the one this version reads",
                id.format
            ),
        });
    }
    Ok(Some(id))
}

/// Checks that `dir` belongs to `cluster_id`'s node `node_id`: `Ok(true)`
/// if it says so, `Ok(false)` if it records no identity yet.
pub fn check(dir: &Path, cluster_id: u64, node_id: u64) -> Result<bool, IdentityError> {
    match read(dir)? {
        None => Ok(false),
        Some(id) if id.cluster_id == cluster_id && id.node_id == node_id => Ok(true),
        Some(id) => Err(IdentityError::Mismatch {
            dir: dir.to_path_buf(),
            file: dir.join(IDENTITY_FILE),
            recorded_cluster: id.cluster_id,
            recorded_node: id.node_id,
            configured_cluster: cluster_id,
            configured_node: node_id,
        }),
    }
}

/// Checks `dir`'s identity and records it if the directory has none yet.
/// The caller holds the directory's lock, so two starts cannot both record.
pub fn bind(dir: &Path, cluster_id: u64, node_id: u64) -> Result<(), IdentityError> {
    if check(dir, cluster_id, node_id)? {
        return Ok(());
    }
    let file = dir.join(IDENTITY_FILE);
    write_atomically(
        &file,
        &DataIdentity {
            format: IDENTITY_FORMAT,
            cluster_id,
            node_id,
        },
    )
    .map_err(|source| IdentityError::Write { file, source })?;
    tracing::info!(
        dir = %dir.display(),
        cluster_id,
        node_id,
        "recorded the data directory's identity"
    );
    Ok(())
}

/// Writes the file so that a crash leaves no file or the whole one: a
/// temporary file, synced, renamed over, the directory synced.
fn write_atomically(path: &Path, id: &DataIdentity) -> std::io::Result<()> {
    let text = format!(
        "# The cluster and node this data directory belongs to, recorded at the node's\n\
         # first start. A node configured otherwise refuses to start here.\n{}",
        toml::to_string_pretty(id).map_err(std::io::Error::other)?
    );
    crate::durable::write_file_atomically(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_directory_records_its_identity_once_and_refuses_another() {
        let d = tempfile::tempdir().expect("tempdir");
        assert_eq!(read(d.path()).expect("read"), None);
        bind(d.path(), 7, 1).expect("first start records");
        assert_eq!(
            read(d.path()).expect("read"),
            Some(DataIdentity {
                format: IDENTITY_FORMAT,
                cluster_id: 7,
                node_id: 1
            })
        );
        bind(d.path(), 7, 1).expect("same identity again");
        let e = bind(d.path(), 8, 1).unwrap_err().to_string();
        assert!(
            e.contains("cluster 0x7 node 1") && e.contains("cluster 0x8 node 1"),
            "{e}"
        );
        let e = bind(d.path(), 7, 2).unwrap_err().to_string();
        assert!(e.contains("node 1") && e.contains("node 2"), "{e}");
        assert!(!d.path().join("identity.toml.tmp").exists());
        std::fs::write(d.path().join(IDENTITY_FILE), "cluster_id = \"x\"").expect("write");
        assert!(matches!(
            bind(d.path(), 7, 1),
            Err(IdentityError::Unreadable { .. })
        ));
    }
}
