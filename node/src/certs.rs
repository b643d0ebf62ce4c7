//! `meridian cert`: the certificates of a cluster's mutual TLS
//! (docs/operations.md, "Certificates"), as `cockroach cert` makes them.
//!
//! - `create-ca` writes `ca.crt` and `ca.key`: the authority every node and
//!   client trusts;
//! - `create-node --host H...` writes `node.crt` and `node.key`, signed by
//!   the CA, allowing both serverAuth and clientAuth (a node is a client of
//!   its peers), naming every host given as an IP or DNS subject
//!   alternative name;
//! - `create-client` writes `client.crt` and `client.key`, allowing
//!   clientAuth.
//!
//! Private keys are written readable by their owner only (0600). Existing
//! files are kept unless `--overwrite` is given.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// Days a CA certificate is valid by default.
pub const DEFAULT_CA_DAYS: u32 = 3650;
/// Days a node or client certificate is valid by default.
pub const DEFAULT_LEAF_DAYS: u32 = 730;
/// The CA's common name.
const CA_COMMON_NAME: &str = "Meridian CA";
/// Days back a new certificate's validity starts, for clocks a little
/// behind this one.
const BACKDATE_DAYS: i64 = 1;
/// Seconds in a day.
const DAY_SECS: i64 = 86_400;

/// `meridian cert ...`.
#[derive(Debug, clap::Subcommand)]
pub enum CertCommand {
    /// Creates the certificate authority: DIR/ca.crt and DIR/ca.key.
    CreateCa(CaArgs),
    /// Creates a node's certificate and key, signed by the CA. The
    /// certificate serves the node both as server and as client of its
    /// peers.
    CreateNode(NodeCertArgs),
    /// Creates a client's certificate and key, signed by the CA, for the
    /// `meridian` client commands (`--tls-cert`, `--tls-key`).
    CreateClient(ClientCertArgs),
}

/// Options every `cert` subcommand takes.
#[derive(Debug, clap::Args)]
pub struct CertDirArgs {
    /// Directory of the certificates: ca.crt is read from it, new files are
    /// written into it.
    #[arg(long, value_name = "DIR", env = "MERIDIAN_CERTS_DIR")]
    pub certs_dir: PathBuf,
    /// The CA's private key (default: DIR/ca.key).
    #[arg(long, value_name = "FILE")]
    pub ca_key: Option<PathBuf>,
    /// Replace files that already exist.
    #[arg(long)]
    pub overwrite: bool,
}

/// Arguments of `meridian cert create-ca`.
#[derive(Debug, clap::Args)]
pub struct CaArgs {
    #[command(flatten)]
    dir: CertDirArgs,
    /// Days the CA is valid.
    #[arg(long, default_value_t = DEFAULT_CA_DAYS)]
    days: u32,
}

/// Arguments of `meridian cert create-node`.
#[derive(Debug, clap::Args)]
pub struct NodeCertArgs {
    #[command(flatten)]
    dir: CertDirArgs,
    /// A name or IP address the node is reached at (repeat for each: the
    /// address in the cluster's configuration, and any others clients use).
    #[arg(long = "host", value_name = "HOST", required = true)]
    hosts: Vec<String>,
    /// Base name of the files written: NAME.crt and NAME.key.
    #[arg(long, default_value = "node")]
    name: String,
    /// Days the certificate is valid.
    #[arg(long, default_value_t = DEFAULT_LEAF_DAYS)]
    days: u32,
}

/// Arguments of `meridian cert create-client`.
#[derive(Debug, clap::Args)]
pub struct ClientCertArgs {
    #[command(flatten)]
    dir: CertDirArgs,
    /// The client's name (the certificate's common name), and the base name
    /// of the files written: NAME.crt and NAME.key.
    #[arg(long, default_value = "client")]
    name: String,
    /// Days the certificate is valid.
    #[arg(long, default_value_t = DEFAULT_LEAF_DAYS)]
    days: u32,
}

/// Why a certificate could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file would be replaced.
    #[error("{0} exists; pass --overwrite to replace it")]
    Exists(PathBuf),
    /// The CA's files are missing or do not belong together.
    #[error("{0}")]
    Ca(String),
    /// An argument is unusable.
    #[error("{0}")]
    Invalid(String),
    /// rcgen refused.
    #[error("cannot make the certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
}

impl CertError {
    /// The exit code: 2 for bad arguments, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            CertError::Invalid(_) | CertError::Exists(_) => 2,
            _ => 1,
        }
    }
}

/// Runs a `meridian cert` subcommand; prints the files written.
pub fn run(cmd: &CertCommand) -> ExitCode {
    let written = match cmd {
        CertCommand::CreateCa(a) => create_ca(&a.dir, a.days),
        CertCommand::CreateNode(a) => create_node(&a.dir, &a.hosts, &a.name, a.days),
        CertCommand::CreateClient(a) => create_client(&a.dir, &a.name, a.days),
    };
    match written {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("meridian: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// The validity of a certificate made now for `days` days.
fn validity(params: &mut CertificateParams, days: u32) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let today = now.div_euclid(DAY_SECS);
    let (y, m, d) = civil_from_days(today - BACKDATE_DAYS);
    params.not_before = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = civil_from_days(today + i64::from(days));
    params.not_after = rcgen::date_time_ymd(y, m, d);
}

/// The proleptic Gregorian date of `days` since 1970-01-01 (H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y as i32, m, d)
}

fn ca_params(days: Option<u32>) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_COMMON_NAME);
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    if let Some(days) = days {
        validity(&mut p, days);
    }
    p
}

fn ca_key_path(a: &CertDirArgs) -> PathBuf {
    a.ca_key
        .clone()
        .unwrap_or_else(|| a.certs_dir.join("ca.key"))
}

/// Writes `contents` to `path`, readable by its owner only if `private`.
fn write_file(
    path: &Path,
    contents: &str,
    private: bool,
    overwrite: bool,
) -> Result<(), CertError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let io = |source| CertError::Io {
        path: path.to_path_buf(),
        source,
    };
    if path.exists() && !overwrite {
        return Err(CertError::Exists(path.to_path_buf()));
    }
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    o.mode(if private { 0o600 } else { 0o644 });
    let mut f = o.open(path).map_err(io)?;
    if private {
        // `mode` only applies to a new file: an overwritten key is narrowed too.
        use std::os::unix::fs::PermissionsExt as _;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io)?;
    }
    f.write_all(contents.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)
}

fn prepare_dir(a: &CertDirArgs, files: &[&Path]) -> Result<(), CertError> {
    std::fs::create_dir_all(&a.certs_dir).map_err(|source| CertError::Io {
        path: a.certs_dir.clone(),
        source,
    })?;
    if !a.overwrite {
        if let Some(f) = files.iter().find(|f| f.exists()) {
            return Err(CertError::Exists(f.to_path_buf()));
        }
    }
    Ok(())
}

/// `create-ca`: answers the files written.
pub fn create_ca(a: &CertDirArgs, days: u32) -> Result<Vec<PathBuf>, CertError> {
    let crt = a.certs_dir.join("ca.crt");
    let key_path = ca_key_path(a);
    prepare_dir(a, &[&crt, &key_path])?;
    let key = KeyPair::generate()?;
    let cert = ca_params(Some(days)).self_signed(&key)?;
    write_file(&key_path, &key.serialize_pem(), true, a.overwrite)?;
    write_file(&crt, &cert.pem(), false, a.overwrite)?;
    Ok(vec![crt, key_path])
}

/// The CA, to sign with: its key from the key file, its certificate
/// rebuilt from that key (only its name and key matter to what it signs);
/// `ca.crt` itself is checked to belong to that key.
fn load_ca(a: &CertDirArgs) -> Result<(rcgen::Certificate, KeyPair, String), CertError> {
    let key_path = ca_key_path(a);
    let crt = a.certs_dir.join("ca.crt");
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| {
            CertError::Ca(format!(
                "cannot read {}: {e} (create the CA first with `meridian cert create-ca`)",
                p.display()
            ))
        })
    };
    let key_pem = read(&key_path)?;
    let ca_pem = read(&crt)?;
    let key = KeyPair::from_pem(&key_pem)
        .map_err(|e| CertError::Ca(format!("{}: not a private key: {e}", key_path.display())))?;
    let cert = ca_params(None).self_signed(&key)?;
    Ok((cert, key, ca_pem))
}

/// Checks that `leaf_pem`, just signed, chains to the CA file (the CA key
/// given belongs to `ca.crt`, and the CA is one Meridian made).
fn check_chain(ca_pem: &str, leaf_pem: &str, ca_file: &Path) -> Result<(), CertError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let ca = CertificateDer::from_pem_slice(ca_pem.as_bytes())
        .map_err(|e| CertError::Ca(format!("{}: not a certificate: {e}", ca_file.display())))?;
    let leaf = CertificateDer::from_pem_slice(leaf_pem.as_bytes())
        .map_err(|e| CertError::Ca(format!("the new certificate does not parse: {e}")))?;
    let anchor = webpki::anchor_from_trusted_cert(&ca).map_err(|e| {
        CertError::Ca(format!(
            "{}: not a CA certificate: {e:?}",
            ca_file.display()
        ))
    })?;
    let ee = webpki::EndEntityCert::try_from(&leaf)
        .map_err(|e| CertError::Ca(format!("the new certificate does not parse: {e:?}")))?;
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &[anchor],
        &[],
        rustls::pki_types::UnixTime::now(),
        webpki::KeyUsage::client_auth(),
        None,
        None,
    )
    .map_err(|e| {
        CertError::Ca(format!(
            "the CA key does not belong to {} ({e:?}); give the right one with --ca-key",
            ca_file.display()
        ))
    })?;
    Ok(())
}

fn leaf(
    a: &CertDirArgs,
    name: &str,
    mut params: CertificateParams,
    days: u32,
) -> Result<Vec<PathBuf>, CertError> {
    if name.is_empty() || name.contains('/') {
        return Err(CertError::Invalid(format!(
            "--name {name:?}: a file name without '/' is needed"
        )));
    }
    let crt = a.certs_dir.join(format!("{name}.crt"));
    let key_path = a.certs_dir.join(format!("{name}.key"));
    prepare_dir(a, &[&crt, &key_path])?;
    let (ca, ca_key, ca_pem) = load_ca(a)?;
    validity(&mut params, days);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &ca, &ca_key)?;
    check_chain(&ca_pem, &cert.pem(), &a.certs_dir.join("ca.crt"))?;
    write_file(&key_path, &key.serialize_pem(), true, a.overwrite)?;
    write_file(&crt, &cert.pem(), false, a.overwrite)?;
    Ok(vec![crt, key_path])
}

/// `create-node`: a certificate for serverAuth and clientAuth naming every
/// host; answers the files written.
pub fn create_node(
    a: &CertDirArgs,
    hosts: &[String],
    name: &str,
    days: u32,
) -> Result<Vec<PathBuf>, CertError> {
    let hosts: Vec<String> = hosts
        .iter()
        .map(|h| {
            h.trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string()
        })
        .collect();
    if hosts.iter().any(String::is_empty) {
        return Err(CertError::Invalid("--host: an empty host".into()));
    }
    // rcgen makes an IP subject alternative name of each host that parses
    // as an address, a DNS name of the others.
    let mut params = CertificateParams::new(hosts.clone())
        .map_err(|e| CertError::Invalid(format!("--host: {e}")))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "node");
    params.distinguished_name = dn;
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    leaf(a, name, params, days)
}

/// `create-client`: a certificate for clientAuth; answers the files
/// written.
pub fn create_client(a: &CertDirArgs, name: &str, days: u32) -> Result<Vec<PathBuf>, CertError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    leaf(a, name, params, days)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_from_unix_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_794), (2026, 12, 7));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
