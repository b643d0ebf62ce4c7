//! Mutual TLS between the client and the nodes (docs/design.md §6), with
//! certificates made for the test.

use std::path::Path;

use meridian_client::testing::FakeCluster;
use meridian_client::{Client, ClientOptions, Error, TlsOptions};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

struct Pki {
    ca: String,
    server: (String, String),
    client: (String, String),
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    Pki {
        ca: ca.pem(),
        server: leaf("node.meridian.test"),
        client: leaf("client.meridian.test"),
    }
}

fn write(dir: &Path, name: &str, pem: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, pem).unwrap();
    p
}

#[tokio::test]
async fn a_client_with_certificates_talks_mutual_tls() {
    let pki = pki();
    let server_tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(&pki.server.0, &pki.server.1))
        .client_ca_root(Certificate::from_pem(&pki.ca));
    let c = FakeCluster::start_with(1, &[], Some(server_tls)).await;
    let dir = std::env::temp_dir().join(format!("meridian-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = write(&dir, "ca.pem", &pki.ca);
    let cert = write(&dir, "client.pem", &pki.client.0);
    let key = write(&dir, "client.key", &pki.client.1);

    let mut tls = TlsOptions::mutual(&ca, &cert, &key);
    tls.domain = Some("node.meridian.test".into());
    let client = Client::connect_with(c.endpoints(), ClientOptions::default().with_tls(tls))
        .await
        .unwrap();
    client.put("k", "v").await.unwrap();
    assert_eq!(client.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));

    // Without a client certificate the node refuses the connection.
    let tls = TlsOptions {
        ca_cert: ca.clone(),
        client_cert: None,
        client_key: None,
        domain: Some("node.meridian.test".into()),
    };
    let e = Client::connect_with(c.endpoints(), ClientOptions::default().with_tls(tls))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unavailable { .. }), "{e:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A CA, and one certificate and key signed by it, naming `names`.
fn issue(names: &[&str]) -> (String, (String, String)) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let cert = CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    (ca.pem(), (cert.pem(), key.serialize_pem()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_nodes_talk_mutual_tls_and_refuse_strangers() {
    use meridian_node::config::TlsConfig;
    use meridian_node::local::{LocalCluster, LocalOptions};

    let (ca_pem, (cert_pem, key_pem)) = issue(&["127.0.0.1", "localhost"]);
    let dir = tempfile::tempdir().unwrap();
    let ca = write(dir.path(), "ca.pem", &ca_pem);
    let cert = write(dir.path(), "node.pem", &cert_pem);
    let key = write(dir.path(), "node.key", &key_pem);
    let cluster = LocalCluster::start(LocalOptions {
        tls: Some(TlsConfig {
            ca: ca.clone(),
            cert: cert.clone(),
            key: key.clone(),
        }),
        ..LocalOptions::default()
    })
    .await
    .unwrap();
    // Leaders are elected and writes replicate: the peers talk mTLS.
    cluster
        .wait_for_leaders(std::time::Duration::from_secs(30))
        .await
        .unwrap();
    let tls = TlsOptions::mutual(&ca, &cert, &key);
    let client = Client::connect_with(cluster.endpoints(), ClientOptions::default().with_tls(tls))
        .await
        .unwrap();
    client.put("apple", "1").await.unwrap();
    assert_eq!(
        client.get("apple").await.unwrap().as_deref(),
        Some(&b"1"[..])
    );

    // A client with a certificate of another CA is refused.
    let (_, (other_cert, other_key)) = issue(&["127.0.0.1"]);
    let other_cert = write(dir.path(), "other.pem", &other_cert);
    let other_key = write(dir.path(), "other.key", &other_key);
    let tls = TlsOptions::mutual(&ca, &other_cert, &other_key);
    let e = Client::connect_with(cluster.endpoints(), ClientOptions::default().with_tls(tls))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unavailable { .. }), "{e:?}");
    // So is a client without TLS.
    let e = Client::connect(cluster.endpoints()).await.unwrap_err();
    assert!(matches!(e, Error::Unavailable { .. }), "{e:?}");
    cluster.shutdown().await;
}
