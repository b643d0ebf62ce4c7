//! Mutual TLS of a node (docs/operations.md, "Certificates"): the check of
//! the node's own certificate at start-up, the server's rustls
//! configuration, and the accept loop that logs every failed handshake.
//!
//! A node's certificate serves twice: as its server certificate, and as its
//! client certificate when it dials its peers, which verify it as a client.
//! So it must carry both the serverAuth and the clientAuth extended key
//! usages (or no extended key usage at all), chain to the configured CA,
//! be valid now, and name the address its peers dial.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_rustls::server::TlsStream;
use tokio_stream::StreamExt as _;

use crate::config::TlsConfig;

/// Longest a TLS handshake may take before the connection is dropped.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshaken connections waiting for the gRPC server to take them.
const ACCEPTED_QUEUE: usize = 64;

/// The protocol the nodes speak over TLS (ALPN).
const ALPN_H2: &[u8] = b"h2";

/// A node's TLS files, read and parsed.
pub struct TlsFiles {
    /// The CA's certificates.
    pub ca: Vec<CertificateDer<'static>>,
    /// The node's certificate, then any intermediates.
    pub chain: Vec<CertificateDer<'static>>,
    /// The node's private key.
    pub key: PrivateKeyDer<'static>,
}

impl TlsFiles {
    /// Reads and parses the files of `t`.
    pub fn load(t: &TlsConfig) -> Result<TlsFiles, String> {
        let certs = |p: &std::path::Path, what: &str| {
            let bytes =
                std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
            let certs = CertificateDer::pem_slice_iter(&bytes)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{} ({what}) is not PEM: {e}", p.display()))?;
            if certs.is_empty() {
                return Err(format!("{} ({what}) holds no certificate", p.display()));
            }
            Ok(certs)
        };
        let ca = certs(&t.ca, "ca")?;
        let chain = certs(&t.cert, "cert")?;
        let bytes =
            std::fs::read(&t.key).map_err(|e| format!("cannot read {}: {e}", t.key.display()))?;
        let key = PrivateKeyDer::from_pem_slice(&bytes)
            .map_err(|e| format!("{} (key) holds no private key: {e}", t.key.display()))?;
        Ok(TlsFiles { ca, chain, key })
    }
}

/// Why a node's own certificate cannot serve it.
fn describe(e: &webpki::Error, t: &TlsConfig, usage: &str) -> String {
    use webpki::Error as E;
    match e {
        E::RequiredEkuNotFoundContext(_) => format!(
            "it lacks the {usage} extended key usage: a node's certificate must allow both \
             serverAuth and clientAuth, because its peers see it as a client \
             (`meridian cert create-node` makes such certificates)"
        ),
        E::CertExpired { .. } => "it has expired".to_string(),
        E::CertNotValidYet { .. } => "it is not valid yet".to_string(),
        E::UnknownIssuer => format!("it is not signed by the configured CA {}", t.ca.display()),
        // An issuer of the CA's name with another key: another CA of the
        // same name (every `meridian cert create-ca` CA is "Meridian CA").
        E::InvalidSignatureForPublicKey => format!(
            "it is not signed by the configured CA {} (its issuer has the CA's name but \
             another key: a different CA)",
            t.ca.display()
        ),
        E::CaUsedAsEndEntity => "it is a CA certificate, not a node's".to_string(),
        other => format!("{other:?}"),
    }
}

/// Checks that the node's certificate can authenticate it to its peers and
/// to clients at `now`: it chains to the configured CA, is valid, allows
/// clientAuth and serverAuth, names `address` (the `host:port` its peers
/// dial, when the configuration lists it), and matches its key. The error says which file is wrong and why.
pub fn check_own_certificate(
    t: &TlsConfig,
    files: &TlsFiles,
    address: Option<&str>,
    now: UnixTime,
) -> Result<(), String> {
    let bad = |why: String| {
        format!(
            "the node certificate {} is unusable: {why}",
            t.cert.display()
        )
    };
    let ee = webpki::EndEntityCert::try_from(&files.chain[0])
        .map_err(|e| bad(format!("it cannot be parsed: {e:?}")))?;
    let anchors: Vec<_> = files
        .ca
        .iter()
        .filter_map(|c| webpki::anchor_from_trusted_cert(c).ok())
        .collect();
    if anchors.is_empty() {
        return Err(format!(
            "the CA file {} holds no usable CA certificate",
            t.ca.display()
        ));
    }
    for (usage, name) in [
        (webpki::KeyUsage::client_auth(), "clientAuth"),
        (webpki::KeyUsage::server_auth(), "serverAuth"),
    ] {
        ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &files.chain[1..],
            now,
            usage,
            None,
            None,
        )
        .map_err(|e| bad(describe(&e, t, name)))?;
    }
    if let Some(address) = address {
        let host = host_of(address);
        let server_name = ServerName::try_from(host.to_string())
            .map_err(|e| format!("the node's address {address:?} has no usable host: {e}"))?;
        ee.verify_is_valid_for_subject_name(&server_name)
            .map_err(|_| {
                bad(format!(
                    "it does not name {host}, the host its peers dial ({address}); \
                     make one with `meridian cert create-node --host {host}`"
                ))
            })?;
    }
    server_config(files).map(|_| ())
}

/// The host of `host:port` (an IPv6 address without its brackets).
fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// The server side of mutual TLS: the node's identity, and every client
/// (peer or user) must present a certificate the CA signed.
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for c in &files.ca {
        roots
            .add(c.clone())
            .map_err(|e| format!("the CA certificate cannot be used: {e}"))?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| format!("cannot verify clients with this CA: {e}"))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(files.chain.clone(), files.key.clone_key())
        .map_err(|e| format!("the certificate and key do not make an identity: {e}"))?;
    cfg.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(cfg))
}

/// Accepts TCP connections from `listener` and handshakes TLS on each (up
/// to [`TLS_HANDSHAKE_TIMEOUT`]); answers the stream of handshaken
/// connections for the gRPC server. A failed handshake is logged at WARN
/// with the peer's address and the reason. Accepting stops when `stop`
/// turns true.
pub fn accept_tls(
    listener: tonic::transport::server::TcpIncoming,
    config: Arc<rustls::ServerConfig>,
    mut stop: watch::Receiver<bool>,
) -> (
    tokio_stream::wrappers::ReceiverStream<Result<TlsStream<TcpStream>, std::io::Error>>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = mpsc::channel(ACCEPTED_QUEUE);
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let task = tokio::spawn(async move {
        let mut listener = listener;
        loop {
            let conn = tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                c = listener.next() => c,
            };
            let tcp = match conn {
                Some(Ok(tcp)) => tcp,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "cannot accept a connection");
                    continue;
                }
                None => return,
            };
            let peer: Option<SocketAddr> = tcp.peer_addr().ok();
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let peer = peer.map_or_else(|| "?".to_string(), |p| p.to_string());
                match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Ok(tls)).await;
                    }
                    // A connection closed before it said anything is a
                    // port probe (`cluster run`'s, a load balancer's),
                    // not a failed client.
                    Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        tracing::debug!(%peer, "connection closed before a TLS handshake");
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(%peer, reason = %handshake_reason(&e), "TLS handshake failed");
                    }
                    Err(_) => {
                        tracing::warn!(%peer, reason = "no handshake within the timeout", "TLS handshake failed");
                    }
                }
            });
        }
    });
    (tokio_stream::wrappers::ReceiverStream::new(rx), task)
}

/// The reason of a failed handshake in words: the rustls error inside the
/// I/O error when there is one.
fn handshake_reason(e: &std::io::Error) -> String {
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::NoCertificatesPresented) => {
            "the client presented no certificate".to_string()
        }
        Some(r) => r.to_string(),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose as Eku, IsCa, KeyPair,
    };
    use rustls::pki_types::PrivatePkcs8KeyDer;

    struct Ca(rcgen::Certificate, KeyPair);

    fn ca() -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Ca(p.self_signed(&key).unwrap(), key)
    }

    /// Files of a node certificate for `names` with `ekus`, signed by
    /// `signer`, with `trusted` as the configured CA.
    fn files(
        trusted: &Ca,
        signer: &Ca,
        names: &[&str],
        ekus: Vec<Eku>,
        edit: impl FnOnce(&mut CertificateParams),
    ) -> TlsFiles {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
        p.extended_key_usages = ekus;
        edit(&mut p);
        let cert = p.signed_by(&key, &signer.0, &signer.1).unwrap();
        TlsFiles {
            ca: vec![trusted.0.der().clone()],
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }

    fn cfg() -> TlsConfig {
        TlsConfig {
            ca: "certs/ca.crt".into(),
            cert: "certs/node.crt".into(),
            key: "certs/node.key".into(),
        }
    }

    fn check(f: &TlsFiles) -> Result<(), String> {
        check_own_certificate(&cfg(), f, Some("127.0.0.1:7101"), UnixTime::now())
    }

    const BOTH: fn() -> Vec<Eku> = || vec![Eku::ServerAuth, Eku::ClientAuth];

    #[test]
    fn a_node_certificate_for_both_usages_naming_its_address_is_accepted() {
        let ca = ca();
        check(&files(&ca, &ca, &["127.0.0.1"], BOTH(), |_| {})).unwrap();
        // No extended key usage at all allows every usage.
        check(&files(&ca, &ca, &["127.0.0.1"], vec![], |_| {})).unwrap();
    }

    #[test]
    fn a_node_certificate_its_peers_would_refuse_is_refused_with_the_reason() {
        let ca = ca();
        let other = ca_other();
        let cases: Vec<(TlsFiles, &str)> = vec![
            (
                files(&ca, &ca, &["127.0.0.1"], vec![Eku::ServerAuth], |_| {}),
                "clientAuth",
            ),
            (
                files(&ca, &ca, &["127.0.0.1"], vec![Eku::ClientAuth], |_| {}),
                "serverAuth",
            ),
            (
                files(&ca, &other, &["127.0.0.1"], BOTH(), |_| {}),
                "not signed by the configured CA certs/ca.crt",
            ),
            (
                files(&ca, &ca, &["127.0.0.1"], BOTH(), |p| {
                    p.not_before = rcgen::date_time_ymd(2019, 1, 1);
                    p.not_after = rcgen::date_time_ymd(2020, 1, 1);
                }),
                "expired",
            ),
            (
                files(&ca, &ca, &["localhost"], BOTH(), |_| {}),
                "does not name 127.0.0.1",
            ),
        ];
        for (f, why) in cases {
            let e = check(&f).unwrap_err();
            assert!(e.contains(why), "want {why:?}: {e}");
            assert!(e.contains("certs/node.crt"), "{e}");
        }
    }

    fn ca_other() -> Ca {
        ca()
    }

    #[test]
    fn hosts_come_out_of_addresses() {
        assert_eq!(host_of("127.0.0.1:7101"), "127.0.0.1");
        assert_eq!(host_of("[::1]:7101"), "::1");
        assert_eq!(host_of("node1.example:7101"), "node1.example");
    }
}
