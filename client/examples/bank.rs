//! A small bank on Meridian: accounts spread over every group, concurrent
//! transfers between them, and an audit that the money is all there.
//!
//! ```sh
//! cargo run -p meridian-client --example bank                       # on an embedded 3-node cluster
//! cargo run -p meridian-client --example bank -- --endpoints 127.0.0.1:PORT1,127.0.0.1:PORT2
//! ```
//!
//! Each transfer is one [`Client::transact`]: it reads both balances,
//! refuses with the bank's own error when the source holds too little
//! ([`BankError::InsufficientFunds`], never retried), and otherwise writes
//! both. Wounds and optimistic conflicts between the concurrent transfers
//! are Meridian's retryable errors: the closure simply runs again.

use std::time::{Duration, Instant};

use meridian_client::{Client, Error, ReadOp, ReadResult, TransactError};
use meridian_node::local::{LocalCluster, LocalOptions};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Accounts; their names start with `0`, `A` and `a` in turn, one first
/// byte per group of the default three-group layout, so that most
/// transfers are two-phase commits across groups.
const ACCOUNTS: usize = 9;
/// Every account's opening balance.
const OPENING_BALANCE: u64 = 100;
/// Concurrent tellers.
const TELLERS: u64 = 4;
/// Transfers per teller.
const TRANSFERS_PER_TELLER: usize = 25;
/// The largest transfer: large enough that some are refused.
const MAX_AMOUNT: u64 = 80;
/// How long the embedded cluster may take to elect its leaders.
const LEADER_WAIT: Duration = Duration::from_secs(30);

/// What can go wrong with a transfer: the bank's own refusals, or Meridian.
#[derive(Debug, thiserror::Error)]
enum BankError {
    /// The source account holds less than the amount.
    #[error("account {account} holds {balance}, less than {amount}")]
    InsufficientFunds {
        account: String,
        balance: u64,
        amount: u64,
    },
    /// An account that was never opened (or holds no number).
    #[error("no account {0}")]
    NoSuchAccount(String),
    /// The database failed (after the retries of the retryable errors).
    #[error(transparent)]
    Meridian(#[from] Error),
}

/// Tells the retry loop which failures are Meridian's: only those may be
/// retried; the bank's own are final.
impl TransactError for BankError {
    fn meridian_error(&self) -> Option<&Error> {
        match self {
            BankError::Meridian(e) => Some(e),
            BankError::InsufficientFunds { .. } | BankError::NoSuchAccount(_) => None,
        }
    }
}

fn account(i: usize) -> String {
    let prefix = ['0', 'A', 'a'][i % 3];
    format!("{prefix}/bank/acct{i}")
}

fn balance(name: &str, value: Option<&[u8]>) -> Result<u64, BankError> {
    value
        .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
        .ok_or_else(|| BankError::NoSuchAccount(name.to_owned()))
}

/// Moves `amount` from `from` to `to`, atomically, or refuses.
async fn transfer(client: &Client, from: String, to: String, amount: u64) -> Result<(), BankError> {
    client
        .transact(async move |txn| {
            let v = txn.get_many([&from, &to]).await?;
            let a = balance(&from, v[0].as_deref())?;
            let b = balance(&to, v[1].as_deref())?;
            if a < amount {
                return Err(BankError::InsufficientFunds {
                    account: from.clone(),
                    balance: a,
                    amount,
                });
            }
            txn.put(&from, (a - amount).to_string())?;
            txn.put(&to, (b + amount).to_string())?;
            Ok(())
        })
        .await?;
    Ok(())
}

/// The sum of every balance, by one strong read-only transaction (no
/// locks, one timestamp for all groups).
async fn audit(client: &Client) -> Result<u64, BankError> {
    let reads = (0..ACCOUNTS)
        .map(|i| ReadOp::Get(account(i).into()))
        .collect();
    let r = client.read_only(reads).await?;
    let mut total = 0;
    for (i, res) in r.results.iter().enumerate() {
        let ReadResult::Value(v) = res else {
            return Err(BankError::NoSuchAccount(account(i)));
        };
        total += balance(&account(i), v.as_deref())?;
    }
    Ok(total)
}

/// `--endpoints A,B,C` from the command line, if given.
fn endpoints_arg() -> Result<Option<Vec<String>>, String> {
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next()) {
        (None, _) => Ok(None),
        (Some("--endpoints"), Some(list)) => Ok(Some(list.split(',').map(str::to_owned).collect())),
        _ => Err("usage: bank [--endpoints HOST:PORT,...]".into()),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (client, cluster) = match endpoints_arg()? {
        Some(endpoints) => (Client::connect(endpoints).await?, None),
        None => {
            let cluster = LocalCluster::start(LocalOptions::default()).await?;
            cluster.wait_for_leaders(LEADER_WAIT).await?;
            (Client::connect(cluster.endpoints()).await?, Some(cluster))
        }
    };

    // Open the accounts, all in one transaction.
    client
        .transaction(async |txn| {
            for i in 0..ACCOUNTS {
                txn.put(account(i), OPENING_BALANCE.to_string())?;
            }
            Ok(())
        })
        .await?;

    let started = Instant::now();
    let tellers: Vec<_> = (0..TELLERS)
        .map(|teller| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut rng = SmallRng::seed_from_u64(teller);
                let (mut done, mut refused) = (0, 0);
                for _ in 0..TRANSFERS_PER_TELLER {
                    let from = rng.random_range(0..ACCOUNTS);
                    let to = (from + rng.random_range(1..ACCOUNTS)) % ACCOUNTS;
                    let amount = rng.random_range(1..=MAX_AMOUNT);
                    match transfer(&client, account(from), account(to), amount).await {
                        Ok(()) => done += 1,
                        Err(BankError::InsufficientFunds { .. }) => refused += 1,
                        Err(e) => return Err(e),
                    }
                }
                Ok::<_, BankError>((done, refused))
            })
        })
        .collect();
    let (mut done, mut refused) = (0, 0);
    for teller in tellers {
        let (d, r) = teller.await??;
        done += d;
        refused += r;
    }
    println!(
        "{done} transfers committed, {refused} refused for insufficient funds, in {:?}",
        started.elapsed()
    );

    let total = audit(&client).await?;
    let expected = OPENING_BALANCE * ACCOUNTS as u64;
    println!("total {total}, expected {expected}");
    if let Some(cluster) = cluster {
        cluster.shutdown().await;
    }
    if total != expected {
        return Err(format!("the bank lost money: {total} != {expected}").into());
    }
    Ok(())
}
