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

/// Runs `meridian cert ARGS` and asserts it succeeds.
fn meridian_cert(args: &[&str]) {
    assert_cmd::Command::cargo_bin("meridian")
        .unwrap()
        .arg("cert")
        .args(args)
        .assert()
        .success();
}

/// A CA, node and client certificates made by `meridian cert` in `dir`.
fn certs_by_meridian(dir: &Path) -> meridian_node::config::TlsConfig {
    let d = dir.to_str().unwrap();
    meridian_cert(&["create-ca", "--certs-dir", d]);
    meridian_cert(&[
        "create-node",
        "--certs-dir",
        d,
        "--host",
        "127.0.0.1",
        "--host",
        "localhost",
    ]);
    meridian_cert(&["create-client", "--certs-dir", d]);
    meridian_node::config::TlsConfig {
        ca: dir.join("ca.crt"),
        cert: dir.join("node.crt"),
        key: dir.join("node.key"),
    }
}

#[test]
fn meridian_cert_writes_private_keys_owner_only_and_keeps_existing_files() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    certs_by_meridian(dir.path());
    for key in ["ca.key", "node.key", "client.key"] {
        let mode = std::fs::metadata(dir.path().join(key))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
    // A second CA over the first is refused: it would orphan every
    // certificate the first signed.
    assert_cmd::Command::cargo_bin("meridian")
        .unwrap()
        .args(["cert", "create-ca", "--certs-dir"])
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--overwrite"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_made_by_meridian_cert_work_end_to_end() {
    use meridian_node::local::{LocalCluster, LocalOptions};
    let dir = tempfile::tempdir().unwrap();
    let tls = certs_by_meridian(dir.path());
    let cluster = LocalCluster::start(LocalOptions {
        tls: Some(tls.clone()),
        ..LocalOptions::default()
    })
    .await
    .unwrap();
    // Leaders are elected: the nodes authenticate to each other as
    // clients with their node certificates.
    cluster
        .wait_for_leaders(std::time::Duration::from_secs(30))
        .await
        .unwrap();
    let client_tls = TlsOptions::mutual(
        &tls.ca,
        dir.path().join("client.crt"),
        dir.path().join("client.key"),
    );
    let client = Client::connect_with(
        cluster.endpoints(),
        ClientOptions::default().with_tls(client_tls),
    )
    .await
    .unwrap();
    client.put("apple", "1").await.unwrap();

    // The CLI, its TLS options from the environment.
    let endpoints = cluster.endpoints().join(",");
    let (ca, d) = (tls.ca.clone(), dir.path().to_path_buf());
    let cli = move || {
        let mut c = assert_cmd::Command::cargo_bin("meridian").unwrap();
        c.env("MERIDIAN_ENDPOINTS", &endpoints)
            .env("MERIDIAN_TLS_CA", &ca)
            .env("MERIDIAN_TLS_CERT", d.join("client.crt"))
            .env("MERIDIAN_TLS_KEY", d.join("client.key"))
            .env("MERIDIAN_TIMEOUT", "10s");
        c
    };
    let out = tokio::task::spawn_blocking(move || {
        cli().args(["put", "pear", "2"]).assert().success();
        cli()
            .args(["get", "apple"])
            .assert()
            .success()
            .stdout("1\n");
        // A client without a certificate of this CA is refused, and told
        // why in words of TLS.
        let other = tempfile::tempdir().unwrap();
        let o = other.path().to_str().unwrap();
        meridian_cert(&["create-ca", "--certs-dir", o]);
        meridian_cert(&["create-client", "--certs-dir", o]);
        let mut c = cli();
        c.env("MERIDIAN_TLS_CERT", other.path().join("client.crt"))
            .env("MERIDIAN_TLS_KEY", other.path().join("client.key"))
            .env("MERIDIAN_TIMEOUT", "3s")
            .args(["get", "apple"]);
        let out = c.assert().code(4);
        String::from_utf8_lossy(&out.get_output().stderr).to_string()
    })
    .await
    .unwrap();
    assert!(out.contains("TLS"), "{out}");
    assert!(!out.contains("h2 protocol error"), "{out}");
    assert_eq!(
        client.get("pear").await.unwrap().as_deref(),
        Some(&b"2"[..])
    );
    cluster.shutdown().await;
}

/// A CA and a certificate it signed for 127.0.0.1 with only the
/// serverAuth extended key usage.
fn server_only_certificate(dir: &Path) -> meridian_node::config::TlsConfig {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    meridian_node::config::TlsConfig {
        ca: write(dir, "ca.crt", &ca.pem()),
        cert: write(dir, "node.crt", &cert.pem()),
        key: write(dir, "node.key", &key.serialize_pem()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_certificate_without_client_auth_is_refused_at_start_up() {
    use meridian_node::local::{LocalCluster, LocalOptions};
    let dir = tempfile::tempdir().unwrap();
    let tls = server_only_certificate(dir.path());
    let e = LocalCluster::start(LocalOptions {
        nodes: 1,
        groups: 1,
        tls: Some(tls.clone()),
        ..LocalOptions::default()
    })
    .await
    .err()
    .expect("a node whose peers would refuse its certificate must not start");
    let msg = e.to_string();
    assert!(msg.contains("clientAuth"), "{msg}");
    assert!(msg.contains("node.crt"), "{msg}");

    // So does `meridian node`, with the reason on stderr and exit 1.
    let cluster_dir = dir.path().join("cluster");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    assert_cmd::Command::cargo_bin("meridian")
        .unwrap()
        .args(["cluster", "init", "--nodes", "1", "--groups", "1"])
        .arg("--base-port")
        .arg(port.to_string())
        .arg("--dir")
        .arg(&cluster_dir)
        .assert()
        .success();
    let config = cluster_dir.join("node-1").join("meridian.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[tls]\nca = {:?}\ncert = {:?}\nkey = {:?}\n",
        tls.ca, tls.cert, tls.key
    ));
    std::fs::write(&config, text).unwrap();
    tokio::task::spawn_blocking(move || {
        assert_cmd::Command::cargo_bin("meridian")
            .unwrap()
            .arg("node")
            .arg("--config")
            .arg(&config)
            .timeout(std::time::Duration::from_secs(30))
            .assert()
            .code(1)
            .stderr(predicates::str::contains("clientAuth"));
    })
    .await
    .unwrap();
}

/// A child process killed when the test ends, even by a panic.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_failed_handshake_is_logged_with_the_peer_and_the_reason() {
    use std::io::Read as _;
    let dir = tempfile::tempdir().unwrap();
    let tls = certs_by_meridian(dir.path());
    let cluster_dir = dir.path().join("cluster");
    let ports = meridian_node::local::free_ports(2).unwrap();
    assert_cmd::Command::cargo_bin("meridian")
        .unwrap()
        .args(["cluster", "init", "--nodes", "1", "--groups", "1"])
        .arg("--base-port")
        .arg(ports[0].to_string())
        .arg("--dir")
        .arg(&cluster_dir)
        .assert()
        .success();
    let config = cluster_dir.join("node-1").join("meridian.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[tls]\nca = {:?}\ncert = {:?}\nkey = {:?}\n",
        tls.ca, tls.cert, tls.key
    ));
    std::fs::write(&config, text).unwrap();
    let mut node = Reaped(
        std::process::Command::new(assert_cmd::cargo::cargo_bin("meridian"))
            .arg("node")
            .arg("--config")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let addr = format!("127.0.0.1:{}", ports[0]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(std::time::Instant::now() < deadline, "node did not listen");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // `--tls-ca` alone is a usage error: the nodes require a client
    // certificate.
    assert_cmd::Command::cargo_bin("meridian")
        .unwrap()
        .args(["--endpoints", &format!("https://{addr}"), "status"])
        .args(["--tls-ca"])
        .arg(&tls.ca)
        .args(["--timeout", "3s"])
        .assert()
        .code(2);
    // A client with no certificate at all.
    let no_cert = TlsOptions {
        ca_cert: tls.ca.clone(),
        client_cert: None,
        client_key: None,
        domain: None,
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let e = rt
        .block_on(Client::connect_with(
            vec![addr.clone()],
            ClientOptions::default().with_tls(no_cert),
        ))
        .unwrap_err();
    assert!(matches!(e, Error::Unavailable { .. }), "{e:?}");
    // SAFETY: kill(2) on our child's pid.
    unsafe {
        libc::kill(node.0.id() as libc::pid_t, libc::SIGTERM);
    }
    let mut log = String::new();
    node.0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    node.0.wait().unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("TLS handshake failed"))
        .unwrap_or_else(|| panic!("no handshake failure logged:\n{log}"));
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("peer=127.0.0.1:"), "{line}");
    assert!(line.contains("certificate"), "{line}");
}
