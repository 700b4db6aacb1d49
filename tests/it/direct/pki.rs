//! Test certificates made by the `openssl` CLI in a temporary directory: a root CA, an
//! intermediate, RSA-2048 sender (under the intermediate) and recipient, a second recipient, a
//! 1024-bit signer and an EC P-256 signer, each with an rfc822Name SAN.

use std::path::{Path, PathBuf};
use std::process::Command;

use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

pub struct Party {
    pub cert: X509,
    pub key: PKey<Private>,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
}

pub struct Pki {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub intermediate: X509,
    pub intermediate_path: PathBuf,
    pub sender: Party,
    pub recipient: Party,
    pub other: Party,
    pub weak: Party,
    pub ec: Party,
}

/// Runs `openssl` with `args` in `dir` and returns stdout; panics with stderr on failure.
pub fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI runs");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Like [`openssl`] but returns whether it succeeded (for commands expected to fail).
pub fn openssl_ok(dir: &Path, args: &[&str]) -> bool {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI runs")
        .status
        .success()
}

fn issue(dir: &Path, name: &str, newkey: &[&str], email: &str, ca: &str, ca_ext: bool) -> PathBuf {
    let ext = dir.join(format!("{name}.ext"));
    let body = if ca_ext {
        "basicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign\n".to_owned()
    } else {
        format!(
            "basicConstraints=CA:false\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=emailProtection\nsubjectAltName=email:{email}\n"
        )
    };
    std::fs::write(&ext, body).unwrap();
    let key = format!("{name}.key");
    let csr = format!("{name}.csr");
    let mut req = vec!["req", "-new", "-nodes", "-keyout", &key, "-out", &csr];
    req.extend_from_slice(newkey);
    let subj = format!("/CN={email}");
    req.extend_from_slice(&["-subj", &subj]);
    openssl(dir, &req);
    let pem = format!("{name}.pem");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-set_serial",
            &format!("{}", rand_serial()),
            "-days",
            "30",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &pem,
        ],
    );
    dir.join(pem)
}

fn rand_serial() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    n % 1_000_000_000_000 + 1000
}

fn party(dir: &Path, name: &str) -> Party {
    let cert_path = dir.join(format!("{name}.pem"));
    let key_path = dir.join(format!("{name}.key"));
    Party {
        cert: X509::from_pem(&std::fs::read(&cert_path).unwrap()).unwrap(),
        key: PKey::private_key_from_pem(&std::fs::read(&key_path).unwrap()).unwrap(),
        cert_path,
        key_path,
    }
}

pub fn make() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("root.ext"),
        "basicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign\n",
    )
    .unwrap();
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "root.key",
            "-out",
            "root.pem",
            "-subj",
            "/CN=Test Direct Root",
            "-days",
            "30",
            "-addext",
            "basicConstraints=critical,CA:true",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    let rsa = ["-newkey", "rsa:2048"];
    issue(d, "inter", &rsa, "Test Intermediate", "root", true);
    issue(d, "sender", &rsa, "sender@a.example", "inter", false);
    issue(d, "recipient", &rsa, "recipient@b.example", "root", false);
    issue(d, "other", &rsa, "other@b.example", "root", false);
    issue(
        d,
        "weak",
        &["-newkey", "rsa:1024"],
        "weak@a.example",
        "root",
        false,
    );
    issue(
        d,
        "ec",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "ec@a.example",
        "root",
        false,
    );
    let intermediate_path = d.join("inter.pem");
    Pki {
        root: d.join("root.pem"),
        intermediate: X509::from_pem(&std::fs::read(&intermediate_path).unwrap()).unwrap(),
        intermediate_path,
        sender: party(d, "sender"),
        recipient: party(d, "recipient"),
        other: party(d, "other"),
        weak: party(d, "weak"),
        ec: party(d, "ec"),
        dir,
    }
}
