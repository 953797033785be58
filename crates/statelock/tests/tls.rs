//! TLS end to end: certificates made with the `openssl` command line, Terraform 1.0.3 over
//! HTTPS with `skip_cert_verification = true` (and refusing the self-signed certificate
//! without it), and client certificates required by `--tls-client-ca`, checked with curl
//! (Terraform 1.0.3 cannot send one; that came in 1.4).

mod harness;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use harness::auth::{create_token, workdir_as};
use harness::{Server, text};

/// Runs `openssl` with `args` in `dir`.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", text(&out));
}

/// A P-256 key and a certificate for 127.0.0.1: self-signed, or signed by `ca` (name of a
/// `<ca>.pem`/`<ca>.key` pair in `dir`). Returns the certificate and key paths.
fn certificate(dir: &Path, name: &str, ca: Option<&str>) -> (PathBuf, PathBuf) {
    let (key, cert) = (format!("{name}.key"), format!("{name}.pem"));
    openssl(
        dir,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            &key,
        ],
    );
    let subject = format!("/CN={name}");
    match ca {
        None => openssl(
            dir,
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                &key,
                "-out",
                &cert,
                "-days",
                "2",
                "-subj",
                &subject,
                "-addext",
                "subjectAltName=IP:127.0.0.1",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
            ],
        ),
        Some(ca) => {
            let csr = format!("{name}.csr");
            openssl(
                dir,
                &["req", "-new", "-key", &key, "-out", &csr, "-subj", &subject],
            );
            std::fs::write(dir.join("ext.cnf"), "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth,serverAuth\nsubjectAltName=IP:127.0.0.1\n").unwrap();
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
                    "-CAcreateserial",
                    "-out",
                    &cert,
                    "-days",
                    "2",
                    "-extfile",
                    "ext.cnf",
                ],
            );
        }
    }
    (dir.join(cert), dir.join(key))
}

fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn terraform_over_tls_with_skip_cert_verification() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path(), "server", None);
    let principals = dir.path().join("principals.toml");
    let token = create_token(&principals, "ci", &["write:**"]);
    let server = Server::start_with(
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--principals",
            principals.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(server.scheme, "https");
    let state = "team-a/tls.tfstate";

    // Terraform checks the certificate unless told not to.
    let strict = workdir_as(&server, state, "ci", &token, "    retry_max = 0\n");
    let refused = strict.fails(&["init", "-input=false"]);
    println!("terraform init against a self-signed certificate printed:\n{refused}");
    assert!(
        refused.contains("x509: certificate signed by unknown authority"),
        "{refused}"
    );

    let w = workdir_as(
        &server,
        state,
        "ci",
        &token,
        "    skip_cert_verification = true\n",
    );
    w.ok(&["init", "-input=false"]);
    w.ok(&["apply", "-input=false", "-auto-approve", "-var", "n=7"]);
    assert_eq!(w.ok(&["output", "-raw", "n"]), "7");

    // The same state over HTTPS with curl, trusting the certificate this time.
    let url = server.url(state);
    let got = curl(&[
        "--cacert",
        cert.to_str().unwrap(),
        "-u",
        &format!("ci:{token}"),
        &url,
    ]);
    assert!(got.status.success(), "{}", text(&got));
    let body: serde_json::Value = serde_json::from_slice(&got.stdout).unwrap();
    assert_eq!(body["outputs"]["n"]["value"], "7");
    // Plain HTTP to the TLS port gets no answer from the application.
    let plain = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &url.replace("https://", "http://"),
    ]);
    assert_ne!(String::from_utf8_lossy(&plain.stdout), "200");
}

#[test]
fn client_certificates_are_required_with_tls_client_ca() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    certificate(d, "ca", None);
    let (cert, key) = certificate(d, "server", Some("ca"));
    let (client, client_key) = certificate(d, "client", Some("ca"));
    certificate(d, "stranger-ca", None);
    let (stranger, stranger_key) = certificate(d, "stranger", Some("stranger-ca"));
    let server = Server::start_with(
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--tls-client-ca",
            d.join("ca.pem").to_str().unwrap(),
        ],
        &[],
    );
    let url = format!("https://{}/v1/api/states", server.addr);
    let ca = d.join("ca.pem");
    let ca = ca.to_str().unwrap();

    let ok = curl(&[
        "--cacert",
        ca,
        "--cert",
        client.to_str().unwrap(),
        "--key",
        client_key.to_str().unwrap(),
        &url,
    ]);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(
        String::from_utf8_lossy(&ok.stdout).contains("\"states\""),
        "{}",
        text(&ok)
    );

    let none = curl(&["--cacert", ca, &url]);
    assert!(
        !none.status.success(),
        "served without a client certificate: {}",
        text(&none)
    );
    let foreign = curl(&[
        "--cacert",
        ca,
        "--cert",
        stranger.to_str().unwrap(),
        "--key",
        stranger_key.to_str().unwrap(),
        &url,
    ]);
    assert!(
        !foreign.status.success(),
        "served a certificate of another CA: {}",
        text(&foreign)
    );
    println!(
        "curl without a client certificate: {}",
        String::from_utf8_lossy(&none.stderr)
    );
    println!(
        "curl with another CA's certificate: {}",
        String::from_utf8_lossy(&foreign.stderr)
    );
    assert!(
        server.log().contains("TLS handshake refused"),
        "{}",
        server.log()
    );
}
