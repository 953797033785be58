//! TLS end to end: certificates made with the `openssl` command line; Terraform 1.0.3 and
//! 1.15.5 over HTTPS, refusing a certificate of an unknown CA and trusting a test CA named by
//! `SSL_CERT_FILE` in the Terraform process's environment (or `skip_cert_verification`);
//! client certificates required by `--tls-client-ca` and standing for a principal, checked
//! with curl and presented by Terraform 1.15.5 (`client_certificate_pem`, which 1.0.3 lacks:
//! it came in 1.4); Terraform 1.15.5's `backend "s3"` through the S3 front over HTTPS, where
//! its uploads are aws-chunked with trailing checksums.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::harness::auth::{create_token, workdir_as};
use crate::harness::{S3Locking, Server, Workdir, text};
use statelock_test_support::Terraform;

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

/// A test CA in `dir` and a server certificate for 127.0.0.1 signed by it; returns the CA's
/// certificate and the server's certificate and key.
fn test_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    certificate(dir, "ca", None);
    let (cert, key) = certificate(dir, "server", Some("ca"));
    (dir.join("ca.pem"), cert, key)
}

#[test]
fn terraform_over_tls_trusting_a_test_ca_1_0_3() {
    terraform_over_tls(Terraform::V1_0_3);
}

#[test]
fn terraform_over_tls_trusting_a_test_ca_1_15_5() {
    terraform_over_tls(Terraform::V1_15_5);
}

/// Terraform over HTTPS to a server whose certificate a test CA signed: refused until the
/// Terraform process trusts that CA (`SSL_CERT_FILE` in its environment, which Go's
/// crypto/x509 reads on Linux, so the machine's trust store is never touched), then init,
/// apply and output work. `skip_cert_verification` also works, as the README says.
fn terraform_over_tls(tf: Terraform) {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_ca(dir.path());
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
    let state = format!("team-a/tls-{}.tfstate", tf.version());

    // Terraform checks the certificate: without the CA it refuses.
    let strict = workdir_as(tf, &server, &state, "ci", &token, "    retry_max = 0\n");
    let refused = strict.fails(&["init", "-input=false"]);
    println!("{tf} init against an unknown CA printed:\n{refused}");
    assert!(
        refused.contains("x509: certificate signed by unknown authority"),
        "{refused}"
    );

    let mut w = workdir_as(tf, &server, &state, "ci", &token, "");
    w.env
        .push(("SSL_CERT_FILE".to_owned(), ca.display().to_string()));
    w.ok(&["init", "-input=false"]);
    w.ok(&["apply", "-input=false", "-auto-approve", "-var", "n=7"]);
    assert_eq!(w.ok(&["output", "-raw", "n"]), "7");

    let skip = workdir_as(
        tf,
        &server,
        &state,
        "ci",
        &token,
        "    skip_cert_verification = true\n",
    );
    skip.ok(&["init", "-input=false"]);
    assert_eq!(skip.ok(&["output", "-raw", "n"]), "7");

    // The same state over HTTPS with curl, trusting the CA.
    let url = server.url(&state);
    let got = curl(&[
        "--cacert",
        ca.to_str().unwrap(),
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

/// Terraform 1.15.5's `backend "s3"` through the S3 front over HTTPS: there its SDK sends
/// every PutObject as an unsigned aws-chunked body with a trailing SHA-256 checksum (the wire
/// spec's HTTPS form), which the front decodes and checks; locks, states and workspaces work
/// as over plain HTTP.
#[test]
fn terraform_through_the_s3_front_over_tls_1_15_5() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_ca(dir.path());
    let server = Server::start_with(
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[],
    );
    let endpoint = server.s3_endpoint.clone().expect("the S3 front");
    assert!(endpoint.starts_with("https://"), "{endpoint}");
    let key_name = "team-a/s3-over-tls.tfstate";
    let mut w = Workdir::s3_front_uninitialised(
        Terraform::V1_15_5,
        &server,
        "data",
        key_name,
        &S3Locking::lockfile(),
    );
    w.env
        .push(("SSL_CERT_FILE".to_owned(), ca.display().to_string()));
    w.ok(&["init", "-input=false"]);
    w.ok(&["apply", "-input=false", "-auto-approve", "-var", "n=7"]);
    w.ok(&["workspace", "new", "dev"]);
    w.ok(&["apply", "-input=false", "-auto-approve", "-var", "n=8"]);
    assert_eq!(w.ok(&["output", "-raw", "n"]), "8");
    let log = server.log();
    let chunked = log
        .lines()
        .filter(|l| l.contains("aws-chunked body decoded") && l.contains("x-amz-checksum-sha256"))
        .count();
    assert!(
        chunked >= 4,
        "the lock and state uploads came aws-chunked with trailers:\n{log}"
    );
    // The same states over the http front (plain curl, trusting the CA).
    for (key, n) in [
        (key_name.to_owned(), "7"),
        (format!("env:/dev/{key_name}"), "8"),
    ] {
        let got = curl(&["--cacert", ca.to_str().unwrap(), &server.url(&key)]);
        assert!(got.status.success(), "{}", text(&got));
        let body: serde_json::Value = serde_json::from_slice(&got.stdout).unwrap();
        assert_eq!(body["outputs"]["n"]["value"], n, "{key}");
    }
}

#[test]
fn client_certificates_are_required_with_tls_client_ca() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    certificate(d, "ca", None);
    let (cert, key) = certificate(d, "server", Some("ca"));
    let client = certificate(d, "client", Some("ca"));
    let unlisted = certificate(d, "unlisted", Some("ca"));
    certificate(d, "stranger-ca", None);
    let stranger = certificate(d, "stranger", Some("stranger-ca"));
    let terraform_client = certificate(d, "terraform", Some("ca"));
    // The client's certificate stands for a read-only principal, Terraform's for a writer;
    // "ops" has a token.
    let principals = d.join("principals.toml");
    let token = create_token(&principals, "ops", &["admin:**"]);
    let mut file = std::fs::read_to_string(&principals).unwrap();
    file.push_str(&format!(
        "\n[[principal]]\nname = \"deploy-bot\"\ngrants = [\"read:**\"]\n\n\
         [[certificate]]\nprincipal = \"deploy-bot\"\nsha256 = \"{}\"\n\n\
         [[principal]]\nname = \"tf-bot\"\ngrants = [\"write:team-a/**\"]\n\n\
         [[certificate]]\nprincipal = \"tf-bot\"\nsha256 = \"{}\"\n",
        fingerprint(&client.0),
        fingerprint(&terraform_client.0)
    ));
    std::fs::write(&principals, file).unwrap();
    let server = Server::start_with(
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--tls-client-ca",
            d.join("ca.pem").to_str().unwrap(),
            "--principals",
            principals.to_str().unwrap(),
        ],
        &[],
    );
    let ca = d.join("ca.pem");
    let list = format!("https://{}/v1/api/states", server.addr);
    let state = format!("https://{}/v1/states/x.tfstate", server.addr);
    let body = r#"{"version":4,"serial":1,"lineage":"l","outputs":{},"resources":[]}"#;
    // curl with `identity` (certificate, key) and `extra` arguments; returns the HTTP status
    // ("000" when the handshake failed) and stderr.
    let call = |identity: Option<&(PathBuf, PathBuf)>, extra: &[&str]| {
        let mut args = vec!["--cacert".to_owned(), ca.display().to_string()];
        if let Some((cert, key)) = identity {
            args.extend(["--cert".to_owned(), cert.display().to_string()]);
            args.extend(["--key".to_owned(), key.display().to_string()]);
        }
        args.extend(["-o", "/dev/null", "-w", "%{http_code}"].map(str::to_owned));
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = curl(&args);
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    assert_eq!(call(Some(&client), &[&list]).0, "200");
    // The certificate's principal may read, not write; a token on the same connection wins.
    let post = ["-X", "POST", "--data", body, &state];
    assert_eq!(call(Some(&client), &post).0, "403");
    let as_ops = format!("ops:{token}");
    assert_eq!(
        call(Some(&client), &[&["-u", &as_ops][..], &post].concat()).0,
        "200"
    );
    // Signed by the CA but not listed: the handshake passes, the request is not authenticated.
    assert_eq!(call(Some(&unlisted), &[&list]).0, "401");

    let none = call(None, &[&list]);
    assert_eq!(
        none.0, "000",
        "served without a client certificate: {none:?}"
    );
    let foreign = call(Some(&stranger), &[&list]);
    assert_eq!(
        foreign.0, "000",
        "served a certificate of another CA: {foreign:?}"
    );
    println!("curl without a client certificate: {}", none.1);
    println!("curl with another CA's certificate: {}", foreign.1);
    assert!(
        server.log().contains("TLS handshake refused"),
        "{}",
        server.log()
    );

    // Terraform 1.15.5 (the http backend's client certificates came in 1.4) applies as the
    // principal its certificate stands for, with no token; the CA, certificate and key go
    // in through the backend's environment variables, so no PEM is written into main.tf.
    let pem = |path: &Path| std::fs::read_to_string(path).unwrap();
    let tf_state = "team-a/mtls.tfstate";
    let mut w = Workdir::uninitialised(
        Terraform::V1_15_5,
        &server.url(tf_state),
        "",
        "",
        vec![("TF_HTTP_CLIENT_CA_CERTIFICATE_PEM".to_owned(), pem(&ca))],
    );
    let refused = w.fails(&["init", "-input=false"]);
    println!("Terraform 1.15.5 without a client certificate printed:\n{refused}");
    assert!(
        refused.contains("Failed to get state") && refused.contains("tls: certificate required"),
        "{refused}"
    );
    w.env.extend([
        (
            "TF_HTTP_CLIENT_CERTIFICATE_PEM".to_owned(),
            pem(&terraform_client.0),
        ),
        (
            "TF_HTTP_CLIENT_PRIVATE_KEY_PEM".to_owned(),
            pem(&terraform_client.1),
        ),
    ]);
    w.ok(&["init", "-input=false"]);
    w.ok(&["apply", "-input=false", "-auto-approve", "-var", "n=5"]);
    assert_eq!(w.ok(&["output", "-raw", "n"]), "5");
    // Its certificate's grant ends at team-a.
    let elsewhere = Workdir::uninitialised(
        Terraform::V1_15_5,
        &server.url("team-b/mtls.tfstate"),
        "",
        "",
        w.env.clone(),
    );
    let denied = elsewhere.fails(&["init", "-input=false"]);
    assert!(denied.contains("invalid auth"), "{denied}");
}

/// The SHA-256 fingerprint as `openssl x509 -fingerprint` prints it (`AB:CD:…`).
fn fingerprint(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(cert)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.trim().rsplit_once('=').unwrap().1.to_owned()
}
