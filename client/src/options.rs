//! Options of a [`crate::Client`] and of one transaction.

use std::path::PathBuf;
use std::time::Duration;

use meridian_txn::CcMode;

/// How a [`crate::Client`] talks to the cluster. `Default` gives sensible
/// values for a local network; every field is public.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// The deadline of every single call (sent as `grpc-timeout` and
    /// enforced by the client too).
    pub request_timeout: Duration,
    /// How long to wait for a TCP (and TLS) connection to a node.
    pub connect_timeout: Duration,
    /// HTTP/2 keepalive ping interval on every connection, so a connection
    /// to a partitioned node is noticed (docs/design.md §6).
    pub keepalive_interval: Duration,
    /// How long a keepalive ping may go unanswered before the connection
    /// is dropped.
    pub keepalive_timeout: Duration,
    /// Most tries of one request (following leader hints, refreshing the
    /// range map, backing off) before its last error is returned.
    pub max_request_tries: u32,
    /// Most attempts of a transaction run by [`crate::Client::transaction`].
    pub max_txn_attempts: u32,
    /// The total time a request or transaction may spend retrying.
    pub retry_budget: Duration,
    /// First backoff after a retryable error; doubled each time, with
    /// jitter.
    pub backoff_base: Duration,
    /// Largest backoff.
    pub backoff_max: Duration,
    /// How long a begun transaction may idle before the client sends a
    /// `Heartbeat` to its home group's leader, which would otherwise abort
    /// it after its inactivity timeout (docs/design.md §5.1; 10 s by
    /// default). `None`: never (see [`crate::Txn::heartbeat`]).
    pub heartbeat_interval: Option<Duration>,
    /// Mutual TLS, when the cluster is configured with certificates.
    pub tls: Option<TlsOptions>,
    /// The concurrency control of transactions that do not choose.
    pub default_mode: CcMode,
    /// How old a `TT.now()` reading may be for a read across groups to
    /// take its timestamp from it instead of asking a node again: the
    /// reading's `latest` plus the time since its request was sent, as
    /// measured on `CLOCK_MONOTONIC_RAW` (which no clock daemon slews) and
    /// widened by [`ClientOptions::clock_drift_ppm`], still bounds the
    /// present from above, so the read stays strong; it only reads up to
    /// this much further in the future, and later writes to the groups it
    /// read commit above it. Zero asks every time.
    pub clock_reuse: Duration,
    /// The most this host's oscillator may drift, in parts per million,
    /// when a reused clock reading is aged by elapsed time
    /// ([`ClientOptions::clock_reuse`]; docs/design.md §2). Defaults to
    /// [`meridian_truetime::MAX_CLOCK_DRIFT_PPM`], the bound the nodes'
    /// clocks assume; at most [`meridian_truetime::DRIFT_PPM_LIMIT`].
    pub clock_drift_ppm: u64,
    /// How many transaction ids a `Begin` asks its leader to reserve for
    /// this client's later transactions at the same group, when it holds
    /// none there (docs/design.md §5.1, reserved transaction ids). A
    /// transaction whose first read includes its home group then begins
    /// with that read: one round trip fewer. Zero: every transaction sends
    /// `Begin`. Nodes grant at most 64.
    pub reserve_ids: u32,
}

/// [`ClientOptions::reserve_ids`] by default.
pub const DEFAULT_RESERVE_IDS: u32 = 16;

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            keepalive_interval: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(5),
            max_request_tries: 10,
            max_txn_attempts: 10,
            retry_budget: Duration::from_secs(30),
            backoff_base: Duration::from_millis(10),
            backoff_max: Duration::from_secs(1),
            heartbeat_interval: Some(Duration::from_secs(3)),
            tls: None,
            default_mode: CcMode::Locking,
            clock_reuse: Duration::from_millis(1),
            clock_drift_ppm: meridian_truetime::MAX_CLOCK_DRIFT_PPM,
            reserve_ids: DEFAULT_RESERVE_IDS,
        }
    }
}

impl ClientOptions {
    /// Sets [`ClientOptions::request_timeout`].
    pub fn with_request_timeout(mut self, t: Duration) -> ClientOptions {
        self.request_timeout = t;
        self
    }

    /// Sets [`ClientOptions::connect_timeout`].
    pub fn with_connect_timeout(mut self, t: Duration) -> ClientOptions {
        self.connect_timeout = t;
        self
    }

    /// Sets [`ClientOptions::tls`].
    pub fn with_tls(mut self, tls: TlsOptions) -> ClientOptions {
        self.tls = Some(tls);
        self
    }

    /// Sets [`ClientOptions::clock_reuse`].
    pub fn with_clock_reuse(mut self, d: Duration) -> ClientOptions {
        self.clock_reuse = d;
        self
    }

    /// Sets [`ClientOptions::clock_drift_ppm`].
    pub fn with_clock_drift_ppm(mut self, ppm: u64) -> ClientOptions {
        self.clock_drift_ppm = ppm;
        self
    }

    /// Sets [`ClientOptions::reserve_ids`].
    pub fn with_reserve_ids(mut self, n: u32) -> ClientOptions {
        self.reserve_ids = n;
        self
    }

    /// Sets [`ClientOptions::default_mode`].
    pub fn with_default_mode(mut self, mode: CcMode) -> ClientOptions {
        self.default_mode = mode;
        self
    }

    /// Sets the retry bounds: tries per request, attempts per transaction,
    /// and the total time either may take.
    pub fn with_retries(mut self, tries: u32, attempts: u32, budget: Duration) -> ClientOptions {
        self.max_request_tries = tries.max(1);
        self.max_txn_attempts = attempts.max(1);
        self.retry_budget = budget;
        self
    }

    /// Sets the backoff bounds.
    pub fn with_backoff(mut self, base: Duration, max: Duration) -> ClientOptions {
        self.backoff_base = base;
        self.backoff_max = max.max(base);
        self
    }
}

/// Mutual TLS with the nodes (docs/design.md §6): the CA that signed the
/// nodes' certificates, and this client's certificate and key, all PEM
/// files. Endpoints are then reached over `https`.
#[derive(Clone, Debug)]
pub struct TlsOptions {
    /// PEM file of the CA certificate(s) the nodes' certificates chain to.
    pub ca_cert: PathBuf,
    /// PEM file of the client's certificate, for mutual TLS.
    pub client_cert: Option<PathBuf>,
    /// PEM file of the client's private key (with `client_cert`).
    pub client_key: Option<PathBuf>,
    /// The name the nodes' certificates are issued for; `None`: each
    /// endpoint's host name.
    pub domain: Option<String>,
}

impl TlsOptions {
    /// Mutual TLS with `ca_cert` as the trust root and the client
    /// certificate and key given.
    pub fn mutual(
        ca_cert: impl Into<PathBuf>,
        client_cert: impl Into<PathBuf>,
        client_key: impl Into<PathBuf>,
    ) -> TlsOptions {
        TlsOptions {
            ca_cert: ca_cert.into(),
            client_cert: Some(client_cert.into()),
            client_key: Some(client_key.into()),
            domain: None,
        }
    }
}

/// Options of one transaction, for [`crate::Client::transaction_with`] and
/// [`crate::Client::begin_with`]. [`crate::Client::transaction`] uses
/// [`ClientOptions::default_mode`] instead.
#[derive(Clone, Copy, Debug, Default)]
pub struct TxnOptions {
    /// Two-phase locking under wound-wait (the default) or FaRM OCC
    /// (docs/design.md §5.1, §5.4).
    pub mode: CcMode,
}

impl TxnOptions {
    /// A transaction under optimistic concurrency control (docs/design.md
    /// §5.4).
    pub fn optimistic() -> TxnOptions {
        TxnOptions {
            mode: CcMode::Optimistic,
        }
    }
}
