//! What the real-process bank tests share: the binary, the node logs'
//! tails, the accounts' markers and balances, the fault seed, the client's
//! options and connection, and the opening and reading of the balances.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use meridian_client::{Client, ClientOptions, Error, ReadOp, ReadResult, Timestamp};

/// The `meridian` binary under test.
pub fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_meridian")
}

/// Seconds since `t0`, for the tests' progress lines.
pub fn elapsed_since(t0: Instant) -> String {
    format!("{:6.1}s", t0.elapsed().as_secs_f64())
}

/// The last `lines` lines of a file.
pub fn tail(path: &Path, lines: usize) -> String {
    let Ok(mut f) = File::open(path) else {
        return "(no log)".into();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut s = String::new();
    let _ = f.read_to_string(&mut s);
    let all: Vec<&str> = s.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A transfer's marker lives in its source account's group (its home).
pub fn marker_key(from: &str, id: u64) -> String {
    format!("{}t/{id:08}", &from[..1])
}

pub fn parse_balance(key: &str, v: Option<&Bytes>) -> i64 {
    let v = v.unwrap_or_else(|| panic!("account {key} has no value"));
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("account {key} holds {v:?}"))
}

pub fn seed_from_env() -> u64 {
    std::env::var("MERIDIAN_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
}

pub fn client_options() -> ClientOptions {
    ClientOptions {
        request_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(1),
        keepalive_interval: Duration::from_secs(2),
        keepalive_timeout: Duration::from_secs(2),
        ..ClientOptions::default()
    }
    .with_retries(10, 20, Duration::from_secs(15))
    .with_backoff(Duration::from_millis(20), Duration::from_millis(500))
}

/// A client of the cluster at `endpoints`, retried until `bound` has
/// passed.
pub async fn connect(endpoints: &[String], bound: Duration) -> Client {
    let t0 = Instant::now();
    loop {
        match Client::connect_with(endpoints, client_options()).await {
            Ok(c) => return c,
            Err(e) if t0.elapsed() > bound => panic!("cannot connect: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Writes `balance` into every account in one transaction, again after a
/// failure (harmless before any transfer) until `bound` after `t0`.
pub async fn open_balances(
    client: &Client,
    accounts: &[String],
    balance: i64,
    t0: Instant,
    bound: Duration,
) {
    loop {
        let r = client
            .transaction(async |txn| {
                for a in accounts {
                    txn.put(a.as_str(), balance.to_string())?;
                }
                Ok(())
            })
            .await;
        match r {
            Ok(_) => return,
            Err(e) if t0.elapsed() > bound => panic!("cannot open the accounts: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Every account of `accounts` by one strong read: the read's timestamp
/// and the balances.
pub async fn read_balances(
    client: &Client,
    accounts: &[String],
) -> Result<(Timestamp, Vec<i64>), Error> {
    let r = client
        .read_only(
            accounts
                .iter()
                .map(|k| ReadOp::Get(k.clone().into()))
                .collect(),
        )
        .await?;
    let balances = accounts
        .iter()
        .zip(&r.results)
        .map(|(k, res)| match res {
            ReadResult::Value(v) => parse_balance(k, v.as_ref()),
            other => panic!("a get of {k} answered {other:?}"),
        })
        .collect();
    Ok((r.read_ts, balances))
}
