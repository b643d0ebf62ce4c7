//! etcd as the peer system (cargo feature `etcd`): the same workloads
//! through the etcd v3 client, each operation done the way etcd users do
//! it with the same guarantees as Meridian's:
//!
//! - reads and scans are linearizable `Range` requests (etcd's default);
//! - updates and inserts are plain `Put`s;
//! - a read-modify-write reads the record, then commits a `Txn` that
//!   writes it only if its `mod_revision` is unchanged, and starts again
//!   on a conflict;
//! - a transfer reads both accounts in one `Txn`, then commits a `Txn`
//!   comparing both `mod_revision`s and writing both balances, retried on
//!   conflict;
//! - `ro-sum` reads its accounts in one read-only `Txn` (linearizable, at
//!   one revision);
//! - the audit reads every account at one revision.
//!
//! Requests are spread over [`CONNECTIONS`] client connections, each
//! balancing over all endpoints, as etcd's own benchmark tool does with
//! `--conns`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, KvClient, Txn, TxnOp, TxnOpResponse,
};

use crate::keys::record_key;
use crate::retries::{self, classify};
use crate::store::{Audit, Outcome, Store, retries as beyond_first};
use crate::workload::{parse_balance, update_field};

/// Client connections the workers share.
pub const CONNECTIONS: usize = 8;

/// Deadline of one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Attempts of a read-modify-write or transfer whose compare keeps
/// failing before it is given up as a conflict.
const MAX_ATTEMPTS: u64 = 100;

/// Operations per audit `Txn` (etcd refuses more than `--max-txn-ops`,
/// 128 by default).
const AUDIT_CHUNK: usize = 100;

/// The reason recorded for a retried compare.
const CONFLICT: &str = "etcd_conflict";

/// etcd, through [`CONNECTIONS`] connections.
#[derive(Clone)]
pub struct EtcdStore {
    clients: Arc<Vec<KvClient>>,
    next: Arc<AtomicUsize>,
}

type EtcdResult<T> = Result<T, etcd_client::Error>;

fn reason(e: &etcd_client::Error) -> String {
    classify(&e.to_string()).to_string()
}

/// The first key-value of the `i`th response of a read `Txn`.
fn nth_value(responses: &[TxnOpResponse], i: usize) -> Option<(&[u8], i64)> {
    match responses.get(i)? {
        TxnOpResponse::Get(g) => g.kvs().first().map(|kv| (kv.value(), kv.mod_revision())),
        _ => None,
    }
}

impl EtcdStore {
    /// Connects to the cluster at `endpoints` (`host:port`).
    pub async fn connect(endpoints: &[String]) -> EtcdResult<EtcdStore> {
        let mut clients = Vec::with_capacity(CONNECTIONS);
        for _ in 0..CONNECTIONS {
            let options = ConnectOptions::new()
                .with_timeout(REQUEST_TIMEOUT)
                .with_connect_timeout(CONNECT_TIMEOUT);
            let client = Client::connect(endpoints, Some(options)).await?;
            clients.push(client.kv_client());
        }
        let store = EtcdStore {
            clients: Arc::new(clients),
            next: Arc::new(AtomicUsize::new(0)),
        };
        // Connecting is lazy: one read proves the cluster answers.
        store.kv().get("meridian-ycsb-probe", None).await?;
        Ok(store)
    }

    /// The next connection, round robin.
    fn kv(&self) -> KvClient {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.clients.len();
        self.clients[i].clone()
    }

    /// Reads `keys` in one `Txn` (at one revision, or the newest when
    /// `revision` is 0): each key's value and `mod_revision`.
    async fn read_all(
        &self,
        keys: &[Bytes],
        revision: i64,
    ) -> EtcdResult<(Vec<Option<(Vec<u8>, i64)>>, i64)> {
        let options = (revision > 0).then(|| GetOptions::new().with_revision(revision));
        let ops: Vec<TxnOp> = keys
            .iter()
            .map(|k| TxnOp::get(k.to_vec(), options.clone()))
            .collect();
        let r = self.kv().txn(Txn::new().and_then(ops)).await?;
        let at = r.header().map_or(0, |h| h.revision());
        let responses = r.op_responses();
        let values = (0..keys.len())
            .map(|i| nth_value(&responses, i).map(|(v, rev)| (v.to_vec(), rev)))
            .collect();
        Ok((values, at))
    }

    /// Runs `attempt` until it commits (`Ok(true)`), fails, or conflicts
    /// [`MAX_ATTEMPTS`] times.
    async fn retried<F, Fut>(&self, mut attempt: F) -> Outcome
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<bool, String>>,
    {
        let mut attempts = 0u64;
        loop {
            attempts += 1;
            match attempt().await {
                Ok(true) => return (Ok(()), beyond_first(attempts)),
                Ok(false) if attempts < MAX_ATTEMPTS => retries::note(CONFLICT),
                Ok(false) => return (Err(CONFLICT.into()), beyond_first(attempts)),
                Err(e) => return (Err(e), beyond_first(attempts)),
            }
        }
    }
}

impl Store for EtcdStore {
    fn shard_of(&self, _key: &str) -> Result<u64, String> {
        Ok(0)
    }

    async fn load_batch(&self, batch: Vec<(Bytes, Bytes)>) -> Result<(), String> {
        let ops: Vec<TxnOp> = batch
            .into_iter()
            .map(|(k, v)| TxnOp::put(k.to_vec(), v.to_vec(), None))
            .collect();
        self.kv()
            .txn(Txn::new().and_then(ops))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn read(&self, key: Bytes) -> Outcome {
        match self.kv().get(key.to_vec(), None).await {
            Ok(r) if r.kvs().is_empty() => (Err("not_found".into()), 0),
            Ok(_) => (Ok(()), 0),
            Err(e) => (Err(reason(&e)), 0),
        }
    }

    async fn write(&self, key: Bytes, value: Bytes) -> Outcome {
        match self.kv().put(key.to_vec(), value.to_vec(), None).await {
            Ok(_) => (Ok(()), 0),
            Err(e) => (Err(reason(&e)), 0),
        }
    }

    async fn scan(&self, start: Bytes, end: Bytes, limit: usize) -> Outcome {
        let options = GetOptions::new()
            .with_range(end.to_vec())
            .with_limit(limit as i64);
        match self.kv().get(start.to_vec(), Some(options)).await {
            Ok(_) => (Ok(()), 0),
            Err(e) => (Err(reason(&e)), 0),
        }
    }

    async fn read_modify_write(&self, key: Bytes, field: usize, fresh: Vec<u8>) -> Outcome {
        let (key, fresh) = (&key, &fresh);
        self.retried(|| async move {
            let r = self
                .kv()
                .get(key.to_vec(), None)
                .await
                .map_err(|e| reason(&e))?;
            let (old, rev) = r
                .kvs()
                .first()
                .map_or((None, 0), |kv| (Some(kv.value()), kv.mod_revision()));
            let new = update_field(old, field, fresh);
            let txn = Txn::new()
                .when([Compare::mod_revision(key.to_vec(), CompareOp::Equal, rev)])
                .and_then([TxnOp::put(key.to_vec(), new, None)]);
            let r = self.kv().txn(txn).await.map_err(|e| reason(&e))?;
            Ok(r.succeeded())
        })
        .await
    }

    async fn transfer(&self, from: Bytes, to: Bytes, amount: i64) -> Outcome {
        let (from, to) = (&from, &to);
        self.retried(|| async move {
            let keys = [from.clone(), to.clone()];
            let (values, _) = self.read_all(&keys, 0).await.map_err(|e| reason(&e))?;
            let balance = |i: usize| {
                values[i]
                    .as_ref()
                    .and_then(|(v, rev)| Some((parse_balance(v)?, *rev)))
                    .ok_or_else(|| "missing_account".to_string())
            };
            let ((a, ra), (b, rb)) = (balance(0)?, balance(1)?);
            let txn = Txn::new()
                .when([
                    Compare::mod_revision(from.to_vec(), CompareOp::Equal, ra),
                    Compare::mod_revision(to.to_vec(), CompareOp::Equal, rb),
                ])
                .and_then([
                    TxnOp::put(from.to_vec(), (a - amount).to_string(), None),
                    TxnOp::put(to.to_vec(), (b + amount).to_string(), None),
                ]);
            let r = self.kv().txn(txn).await.map_err(|e| reason(&e))?;
            Ok(r.succeeded())
        })
        .await
    }

    async fn read_sum(&self, keys: Vec<Bytes>) -> Result<Option<i64>, String> {
        let (values, _) = self.read_all(&keys, 0).await.map_err(|e| reason(&e))?;
        Ok(values
            .iter()
            .map(|v| v.as_ref().and_then(|(v, _)| parse_balance(v)))
            .sum())
    }

    async fn audit(&self, records: u64) -> Result<Audit, String> {
        let keys: Vec<Bytes> = (0..records).map(|n| Bytes::from(record_key(n))).collect();
        let mut revision = 0;
        let (mut total, mut accounts) = (0i64, 0u64);
        for chunk in keys.chunks(AUDIT_CHUNK) {
            let (values, at) = self
                .read_all(chunk, revision)
                .await
                .map_err(|e| e.to_string())?;
            if revision == 0 {
                // Every later chunk reads at the first one's revision.
                revision = at;
            }
            for (v, _) in values.iter().flatten() {
                if let Some(b) = parse_balance(v) {
                    total += b;
                    accounts += 1;
                }
            }
        }
        Ok(Audit { total, accounts })
    }
}
