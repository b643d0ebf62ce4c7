//! The client API as Rust applications use it: borrowed keys and values,
//! async closures, the application's own error type in the retry loop,
//! transactions spawned on the multi-thread runtime, a dropped transaction
//! aborted in the background, and transaction ids printed one way.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use meridian_client::testing::{FakeCluster, FaultAction, Rpc};
use meridian_client::{
    AbortReason, Client, ClientOptions, Committed, Error, RemoteError, TransactError, Txn, TxnId,
    TxnOptions, parse_txn_id,
};
use meridian_node::local::{LocalCluster, LocalOptions};
use meridian_txn::TxnError;

fn fast() -> ClientOptions {
    ClientOptions::default()
        .with_request_timeout(Duration::from_secs(2))
        .with_backoff(Duration::from_millis(1), Duration::from_millis(20))
}

async fn connect(c: &FakeCluster) -> Client {
    Client::connect_with(c.endpoints(), fast())
        .await
        .expect("connect to the fake cluster")
}

fn wounded() -> RemoteError {
    RemoteError::Txn(TxnError::Aborted {
        txn: TxnId::new(0, 0),
        reason: AbortReason::Wounded,
    })
}

/// An application's error: its own failure, or a Meridian one.
#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error("account {account} has {balance}, less than {wanted}")]
    InsufficientFunds {
        account: String,
        balance: i64,
        wanted: i64,
    },
    #[error(transparent)]
    Meridian(#[from] Error),
}

impl TransactError for AppError {
    fn meridian_error(&self) -> Option<&Error> {
        match self {
            AppError::Meridian(e) => Some(e),
            AppError::InsufficientFunds { .. } => None,
        }
    }
}

fn balance(v: Option<Bytes>) -> i64 {
    v.and_then(|b| std::str::from_utf8(&b).ok()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn keys_and_values_may_be_borrowed_or_owned() {
    let c = FakeCluster::start(2, &["m"]).await;
    let client = connect(&c).await;
    let name = String::from("alice");
    let key: String = format!("acct/{name}");
    let value: Vec<u8> = b"10".to_vec();
    // Borrowed on the client's one-shot operations.
    client.put(&key, &value).await.unwrap();
    client.put(key.as_str(), value.as_slice()).await.unwrap();
    assert_eq!(client.get(&key).await.unwrap().as_deref(), Some(&b"10"[..]));
    client.put(*b"zz", [b'1']).await.unwrap();
    assert_eq!(client.get(b"zz").await.unwrap().as_deref(), Some(&b"1"[..]));
    client.delete(&*key).await.unwrap();
    assert_eq!(client.get(key.clone()).await.unwrap(), None);

    // And in a transaction, scan bounds too.
    let prefix = String::from("acct/");
    let end = String::from("acct0");
    let ((rows, to_end, all, inclusive, got), _) = client
        .transaction(async |txn| {
            txn.put(&key, "1")?;
            txn.put(format!("{prefix}bob"), String::from("2"))?;
            txn.put(&b"zz"[..], Bytes::from_static(b"3"))?;
            let carol: Vec<u8> = b"acct/carol".to_vec();
            txn.delete(&carol)?;
            let rows = txn.scan(prefix.as_str()..end.as_str(), 10).await?;
            let to_end = txn.scan(&prefix.., 10).await?;
            let all = txn.scan(.., 10).await?;
            let inclusive = txn.scan(&prefix..=&key, 10).await?;
            let got = txn.get_many([key.as_str(), "zz"]).await?;
            Ok((rows, to_end, all, inclusive, got))
        })
        .await
        .unwrap();
    let keys =
        |rows: &[(Bytes, Bytes)]| -> Vec<Bytes> { rows.iter().map(|r| r.0.clone()).collect() };
    let (alice, bob, zz) = (
        Bytes::from_static(b"acct/alice"),
        Bytes::from_static(b"acct/bob"),
        Bytes::from_static(b"zz"),
    );
    assert_eq!(keys(&rows), vec![alice.clone(), bob.clone()]);
    assert_eq!(keys(&to_end), vec![alice.clone(), bob.clone(), zz.clone()]);
    assert_eq!(keys(&all), vec![alice.clone(), bob, zz]);
    assert_eq!(keys(&inclusive), vec![alice]);
    assert_eq!(
        got,
        vec![
            Some(Bytes::from_static(b"1")),
            Some(Bytes::from_static(b"3"))
        ]
    );
}

#[tokio::test]
async fn the_applications_own_error_ends_the_transaction_after_one_run_and_is_answered_as_is() {
    let c = FakeCluster::start(1, &[]).await;
    c.insert("acct/a", "5");
    let client = connect(&c).await;
    let mut runs = 0;
    let wanted = 10;
    let e = client
        .transact(async |txn| -> Result<(), AppError> {
            runs += 1;
            let a = balance(txn.get("acct/a").await?);
            if a < wanted {
                return Err(AppError::InsufficientFunds {
                    account: "acct/a".into(),
                    balance: a,
                    wanted,
                });
            }
            txn.put("acct/a", (a - wanted).to_string())?;
            Ok(())
        })
        .await
        .unwrap_err();
    assert_eq!(runs, 1);
    assert!(
        matches!(e, AppError::InsufficientFunds { balance: 5, .. }),
        "{e:?}"
    );
    assert_eq!(c.value("acct/a").as_deref(), Some("5"), "nothing written");
    // The attempt was aborted where its read went.
    assert_eq!(c.count(Rpc::Abort), 1);
    assert_eq!(c.count(Rpc::Commit), 0);
}

#[tokio::test]
async fn a_retryable_meridian_error_inside_the_applications_error_is_retried() {
    let c = FakeCluster::start(1, &[]).await;
    c.insert("acct/a", "50");
    let client = connect(&c).await;
    // The first read is wounded: `?` turns it into `AppError::Meridian`,
    // which the retry loop recognizes and runs again.
    c.fault(Rpc::Read, None, FaultAction::Error(wounded()), 1);
    let mut runs = 0;
    let (left, committed) = client
        .transact_with(TxnOptions::default(), async |txn| {
            runs += 1;
            let a = balance(txn.get("acct/a").await?);
            if a < 10 {
                return Err(AppError::InsufficientFunds {
                    account: "acct/a".into(),
                    balance: a,
                    wanted: 10,
                });
            }
            txn.put("acct/a", (a - 10).to_string())?;
            Ok(a - 10)
        })
        .await
        .unwrap();
    assert_eq!(runs, 2);
    assert_eq!(left, 40);
    assert!(committed.txn.is_some());
    assert_eq!(c.value("acct/a").as_deref(), Some("40"));

    // A Meridian error that is not retryable, inside the application's
    // type, is answered after one run.
    let mut runs = 0;
    let e = client
        .transact(async |txn| -> Result<(), AppError> {
            runs += 1;
            txn.put("", "empty key")?;
            Ok(())
        })
        .await
        .unwrap_err();
    assert_eq!(runs, 1);
    assert!(matches!(e, AppError::Meridian(Error::Invalid(_))), "{e:?}");
}

/// A transaction whose future is `Send`: this only compiles if the future
/// of `Client::transaction` over an `async move` closure that owns `Send`
/// data can be spawned on the multi-thread runtime. (A closure that
/// borrows from the spawned block, `async |txn|`, is refused by rustc's
/// "`Send` is not general enough": its future holds a reference whose
/// lifetime the auto-trait check cannot see through.)
fn spawn_transfer(
    client: Client,
    from: String,
    to: String,
) -> tokio::task::JoinHandle<Result<((), Committed), Error>> {
    tokio::spawn(async move {
        client
            .transaction(async move |txn| {
                let a = balance(txn.get(&from).await?);
                let b = balance(txn.get(&to).await?);
                txn.put(&from, (a - 1).to_string())?;
                txn.put(&to, (b + 1).to_string())?;
                Ok(())
            })
            .await
    })
}

/// The same with the application's own error type, through `transact`.
fn spawn_withdrawal(
    client: Client,
    account: String,
) -> tokio::task::JoinHandle<Result<(i64, Committed), AppError>> {
    let counter = Arc::new(AtomicU32::new(0));
    tokio::spawn(async move {
        client
            .transact(async move |txn| {
                counter.fetch_add(1, Ordering::Relaxed);
                let a = balance(txn.get(&account).await?);
                if a < 1 {
                    return Err(AppError::InsufficientFunds {
                        account: account.clone(),
                        balance: a,
                        wanted: 1,
                    });
                }
                txn.put(&account, (a - 1).to_string())?;
                Ok(a - 1)
            })
            .await
    })
}

fn assert_send<T: Send>(t: T) -> T {
    t
}

/// The futures of the one-shot operations (which run a transaction of
/// their own) and of the range directory's transactions are `Send` too,
/// with borrowed arguments: this only has to compile.
#[allow(dead_code)]
fn one_shot_and_directory_futures_are_send(client: &Client, key: &String, value: &[u8]) {
    drop(assert_send(client.put(key, value)));
    drop(assert_send(client.delete(key.as_str())));
    drop(assert_send(client.get(key)));
    drop(assert_send(client.allocate_group_id()));
    drop(assert_send(client.record_ranges(&[])));
    let mut progress = |_: &meridian_client::directory::SplitStep| {};
    drop(assert_send(client.split(key.clone(), &mut progress)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transactions_future_can_be_spawned_on_the_multi_thread_runtime() {
    let c = FakeCluster::start(2, &["m"]).await;
    c.insert("a", "10");
    c.insert("z", "10");
    let client = connect(&c).await;
    // One after another: the fake cluster takes no locks.
    for _ in 0..4 {
        spawn_transfer(client.clone(), "a".into(), "z".into())
            .await
            .expect("the task ran")
            .expect("the transfer commits");
    }
    assert_eq!(c.value("a").as_deref(), Some("6"));
    assert_eq!(c.value("z").as_deref(), Some("14"));
    let (left, _) = spawn_withdrawal(client.clone(), "a".into())
        .await
        .expect("the task ran")
        .expect("the withdrawal commits");
    assert_eq!(left, 5);
    // A one-shot write with borrowed arguments, spawned.
    let (c2, key) = (client.clone(), String::from("k"));
    tokio::spawn(async move { c2.put(&key, key.as_bytes()).await })
        .await
        .expect("the task ran")
        .expect("the write commits");
    assert_eq!(c.value("k").as_deref(), Some("k"));
    // A hand-driven transaction is `Send` too.
    let mut txn: Txn = client.begin();
    let read = tokio::spawn(async move {
        let v = txn.get("a").await;
        txn.abort().await;
        v
    });
    assert_eq!(
        read.await.expect("the task ran").expect("read"),
        Some(Bytes::from_static(b"5"))
    );
}

#[test]
fn a_txn_id_prints_the_same_in_debug_display_and_as_the_cli_takes_it() {
    for id in [TxnId::new(0x1_0003_0002, 17), TxnId::local(42)] {
        let shown = id.to_string();
        assert_eq!(format!("{id:?}"), shown);
        assert_eq!(parse_txn_id(&shown).expect("parses"), id);
        // Inside a struct's Debug (a `Committed`, an error) too.
        let c = Committed {
            commit_ts: meridian_client::Timestamp::from_nanos(1),
            txn: Some(id),
        };
        assert!(
            format!("{c:?}").contains(&format!("Some({shown})")),
            "{c:?}"
        );
        let e = Error::OutcomeUnknown { txn: Some(id) };
        assert!(e.to_string().contains(&shown), "{e}");
        assert!(format!("{e:?}").contains(&shown), "{e:?}");
    }
    assert_eq!(TxnId::new(0x1_0003_0002, 17).to_string(), "100030002.17");
}

/// The longest a write may wait behind a dropped transaction's read lock:
/// well under the participants' inactivity timeout (10 s), after which a
/// transaction nobody aborted would be aborted anyway.
const PROMPT: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_txn_dropped_without_commit_or_abort_is_aborted_in_the_background() {
    let cluster = LocalCluster::start(LocalOptions::default())
        .await
        .expect("cluster starts");
    cluster
        .wait_for_leaders(Duration::from_secs(30))
        .await
        .expect("leaders");
    let client = Client::connect_with(cluster.endpoints(), ClientOptions::default())
        .await
        .expect("connects");
    client.put("Apple", "1").await.expect("seeded");
    client.put("apple", "1").await.expect("seeded");

    // An older transaction reads both keys (two groups) under shared locks
    // and is dropped without commit or abort.
    let mut txn = client.begin();
    assert_eq!(
        txn.get("Apple").await.expect("read").as_deref(),
        Some(&b"1"[..])
    );
    assert_eq!(
        txn.get("apple").await.expect("read").as_deref(),
        Some(&b"1"[..])
    );
    drop(txn);

    // A younger writer of both keys would wait behind those locks (wound-
    // wait: younger waits for older) until the inactivity timeout if
    // nothing aborted the dropped transaction.
    let started = Instant::now();
    let ((), _) = tokio::time::timeout(
        PROMPT,
        client.transaction(async |txn| {
            txn.put("Apple", "2")?;
            txn.put("apple", "2")?;
            Ok(())
        }),
    )
    .await
    .expect("the writer is not held up by the dropped transaction's locks")
    .expect("the writer commits");
    println!("the writer committed after {:?}", started.elapsed());

    // The same when the transaction's future is cancelled mid-closure.
    let reader = client.clone();
    let cancelled = tokio::time::timeout(
        Duration::from_millis(200),
        reader.transaction(async |txn| {
            txn.get("Apple").await?;
            txn.get("apple").await?;
            std::future::pending::<()>().await;
            Ok(())
        }),
    )
    .await;
    assert!(cancelled.is_err(), "the closure never finishes");
    let ((), _) = tokio::time::timeout(
        PROMPT,
        client.transaction(async |txn| {
            txn.put("Apple", "3")?;
            txn.put("apple", "3")?;
            Ok(())
        }),
    )
    .await
    .expect("the writer is not held up by the cancelled transaction's locks")
    .expect("the writer commits");
    assert_eq!(
        client.get("apple").await.expect("read").as_deref(),
        Some(&b"3"[..])
    );
    cluster.shutdown().await;
}
