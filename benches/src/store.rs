//! The system under test, as the runner sees it: one method per kind of
//! operation, each returning its outcome and the attempts it took beyond
//! the first. [`MeridianStore`] runs them as Meridian transactions; the
//! `etcd` feature adds `crate::etcd::EtcdStore`, which runs the same
//! operations against etcd, so both systems do the same work.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use meridian_client::{CcMode, Client, Error, ReadOp, ReadResult, TxnOptions};

use crate::keys::record_key;
use crate::retries::classify;
use crate::workload::{parse_balance, update_field};

/// Reads per request of an audit (the client's per-transaction limit).
const AUDIT_CHUNK: usize = 1000;

/// Attempts of an audit before its last error is returned.
const AUDIT_ATTEMPTS: u32 = 5;

/// An operation's outcome: `Ok`, or the short reason it failed; and the
/// attempts it took beyond the first.
pub type Outcome = (Result<(), String>, u64);

/// The total of every account at one point in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Audit {
    /// Sum of the balances.
    pub total: i64,
    /// Accounts found holding a balance.
    pub accounts: u64,
}

/// A key-value system the benchmark can drive. Every method is one
/// operation of a workload, done the way that system does it best while
/// keeping the workload's guarantees: strong (linearizable) reads, and
/// read-modify-writes and transfers that are atomic and isolated.
pub trait Store: Clone + Send + Sync + 'static {
    /// Which of the system's shards `key` lives in (load batches hold
    /// keys of one shard); 0 for an unsharded system.
    fn shard_of(&self, key: &str) -> Result<u64, String>;

    /// Writes one batch of records of one shard atomically.
    fn load_batch(
        &self,
        batch: Vec<(Bytes, Bytes)>,
    ) -> impl Future<Output = Result<(), String>> + Send;

    /// A strong read of one key; `not_found` if it holds nothing.
    fn read(&self, key: Bytes) -> impl Future<Output = Outcome> + Send;

    /// A blind write of one key.
    fn write(&self, key: Bytes, value: Bytes) -> impl Future<Output = Outcome> + Send;

    /// A strong scan of up to `limit` keys from `start` (below `end`).
    fn scan(&self, start: Bytes, end: Bytes, limit: usize) -> impl Future<Output = Outcome> + Send;

    /// Reads `key`, replaces field `field` of its record by `fresh` and
    /// writes it back, atomically.
    fn read_modify_write(
        &self,
        key: Bytes,
        field: usize,
        fresh: Vec<u8>,
    ) -> impl Future<Output = Outcome> + Send;

    /// Moves `amount` from account `from` to account `to`, atomically.
    fn transfer(&self, from: Bytes, to: Bytes, amount: i64)
    -> impl Future<Output = Outcome> + Send;

    /// Reads `keys` in one strong read-only transaction and returns the
    /// sum of their balances (`None` if one holds no balance).
    fn read_sum(
        &self,
        keys: Vec<Bytes>,
    ) -> impl Future<Output = Result<Option<i64>, String>> + Send;

    /// Sums accounts `0..records` at one point in time.
    fn audit(&self, records: u64) -> impl Future<Output = Result<Audit, String>> + Send;
}

/// The failure reason of a Meridian error.
fn failed(e: &Error) -> Result<(), String> {
    Err(classify(&e.to_string()).to_string())
}

/// Meridian through its client library: reads are strong read-only
/// transactions, writes one-shot transactions, read-modify-writes and
/// transfers read-write transactions under the configured concurrency
/// control, retried by [`Client::transaction_with`] with the first
/// attempt's priority.
#[derive(Clone)]
pub struct MeridianStore {
    client: Client,
    opts: TxnOptions,
}

impl MeridianStore {
    /// Drives `client`, running read-write transactions under `mode`.
    pub fn new(client: Client, mode: CcMode) -> MeridianStore {
        MeridianStore {
            client,
            opts: TxnOptions { mode },
        }
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    async fn audit_once(&self, records: u64) -> Result<Audit, Error> {
        let ts = self.client.now().await?.latest;
        let mut total = 0i64;
        let mut accounts = 0u64;
        let keys: Vec<u64> = (0..records).collect();
        for chunk in keys.chunks(AUDIT_CHUNK) {
            let reads = chunk
                .iter()
                .map(|n| ReadOp::Get(Bytes::from(record_key(*n))))
                .collect();
            let r = self.client.snapshot_read(ts, reads).await?;
            for res in r.results {
                if let ReadResult::Value(Some(v)) = res {
                    if let Some(b) = parse_balance(&v) {
                        total += b;
                        accounts += 1;
                    }
                }
            }
        }
        Ok(Audit { total, accounts })
    }
}

impl Store for MeridianStore {
    fn shard_of(&self, key: &str) -> Result<u64, String> {
        self.client.group_of(key).map_err(|e| e.to_string())
    }

    async fn load_batch(&self, batch: Vec<(Bytes, Bytes)>) -> Result<(), String> {
        self.client
            .transaction(async move |txn| {
                for (k, v) in &batch {
                    txn.put(k, v)?;
                }
                Ok(())
            })
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn read(&self, key: Bytes) -> Outcome {
        match self.client.get(key).await {
            Ok(Some(_)) => (Ok(()), 0),
            Ok(None) => (Err("not_found".into()), 0),
            Err(e) => (failed(&e), 0),
        }
    }

    async fn write(&self, key: Bytes, value: Bytes) -> Outcome {
        let attempts = Attempts::default();
        let counter = attempts.clone();
        let r = self
            .client
            .transaction_with(self.opts, async move |txn| {
                counter.fetch_add(1, Ordering::Relaxed);
                txn.put(&key, &value)
            })
            .await;
        (
            r.map(|_| ()).or_else(|e| failed(&e)),
            retries(attempts.load(Ordering::Relaxed)),
        )
    }

    async fn scan(&self, start: Bytes, end: Bytes, limit: usize) -> Outcome {
        let read = ReadOp::Scan {
            start,
            end: Some(end),
            limit,
        };
        match self.client.read_only(vec![read]).await {
            Ok(_) => (Ok(()), 0),
            Err(e) => (failed(&e), 0),
        }
    }

    async fn read_modify_write(&self, key: Bytes, field: usize, fresh: Vec<u8>) -> Outcome {
        let fresh = Bytes::from(fresh);
        let attempts = Attempts::default();
        let counter = attempts.clone();
        let r = self
            .client
            .transaction_with(self.opts, async move |txn| {
                counter.fetch_add(1, Ordering::Relaxed);
                let old = txn.get(&key).await?;
                txn.put(&key, update_field(old.as_deref(), field, &fresh))?;
                Ok(())
            })
            .await;
        (
            r.map(|_| ()).or_else(|e| failed(&e)),
            retries(attempts.load(Ordering::Relaxed)),
        )
    }

    async fn transfer(&self, from: Bytes, to: Bytes, amount: i64) -> Outcome {
        let attempts = Attempts::default();
        let counter = attempts.clone();
        let r = self
            .client
            .transaction_with(self.opts, async move |txn| {
                counter.fetch_add(1, Ordering::Relaxed);
                let v = txn.get_many([&from, &to]).await?;
                let balance = |v: &Option<Bytes>, key: &Bytes| {
                    v.as_deref().and_then(parse_balance).ok_or_else(|| {
                        Error::Invalid(format!(
                            "account {} {MISSING_ACCOUNT}",
                            String::from_utf8_lossy(key)
                        ))
                    })
                };
                let a = balance(&v[0], &from)?;
                let b = balance(&v[1], &to)?;
                txn.put(&from, (a - amount).to_string())?;
                txn.put(&to, (b + amount).to_string())?;
                Ok(())
            })
            .await;
        let outcome = match r {
            Ok(_) => Ok(()),
            Err(Error::Invalid(m)) if m.contains(MISSING_ACCOUNT) => Err("missing_account".into()),
            Err(e) => failed(&e),
        };
        (outcome, retries(attempts.load(Ordering::Relaxed)))
    }

    async fn read_sum(&self, keys: Vec<Bytes>) -> Result<Option<i64>, String> {
        let reads = keys.into_iter().map(ReadOp::Get).collect();
        match self.client.read_only(reads).await {
            Ok(r) => Ok(r
                .results
                .iter()
                .map(|res| match res {
                    ReadResult::Value(Some(v)) => parse_balance(v),
                    _ => None,
                })
                .sum()),
            Err(e) => Err(classify(&e.to_string()).to_string()),
        }
    }

    /// A snapshot read at `TT.now().latest` at a node, in chunks, so it
    /// sees every transaction acknowledged before it began (a strong
    /// read-only transaction, split only because of the per-request
    /// limit); retried with backoff on retryable errors.
    async fn audit(&self, records: u64) -> Result<Audit, String> {
        let mut last = None;
        for attempt in 0..AUDIT_ATTEMPTS {
            match self.audit_once(records).await {
                Ok(a) => return Ok(a),
                Err(e) if e.is_retryable() => {
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        Err(last.map_or_else(|| "no attempt".into(), |e| e.to_string()))
    }
}

/// A transaction's attempts, counted by its closure (which owns a clone:
/// a closure that borrows would make the future not `Send`).
type Attempts = Arc<AtomicU64>;

/// What a transfer's error says of an account without a balance.
const MISSING_ACCOUNT: &str = "holds no balance";

/// Attempts beyond the first.
pub fn retries(attempts: u64) -> u64 {
    attempts.saturating_sub(1)
}
