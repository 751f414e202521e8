//! HTTPS on the listener, through curl and certificates openssl makes for the test: the server's
//! certificate checked by the client, client certificates (verified against a CA) that
//! authenticate ingestion as the API server's audit webhook does, tokens beside them, and the
//! certificate reloaded when its files change. Without curl or openssl the tests skip loudly
//! (and fail under `ZEN_REQUIRE_EXTERNAL=1`).

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{KillOnDrop, external, start_with};

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`NAME-ca.crt`) and a certificate it signs (`NAME.crt`, `NAME.key`) for `subject`.
fn issue(dir: &Path, ca: &str, name: &str, subject: &str, san: Option<&str>) {
    if !dir.join(format!("{ca}.crt")).exists() {
        openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN={ca}"),
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.crt"),
            ],
            dir,
        );
    }
    let mut req = vec![
        "req".to_owned(),
        "-newkey".into(),
        "rsa:2048".into(),
        "-nodes".into(),
        "-subj".into(),
        subject.into(),
        "-keyout".into(),
        format!("{name}.key"),
        "-out".into(),
        format!("{name}.csr"),
    ];
    // Extensions make it a version 3 certificate, which webpki requires: a server's names, or
    // a client's purpose.
    let ext = match san {
        Some(san) => format!("subjectAltName={san}"),
        None => "extendedKeyUsage=clientAuth".to_owned(),
    };
    req.extend(["-addext".into(), ext]);
    openssl(&req.iter().map(String::as_str).collect::<Vec<_>>(), dir);
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-copy_extensions",
            "copy",
            "-out",
            &format!("{name}.crt"),
        ],
        dir,
    );
}

/// curl's answer: the status (none when the connection or handshake failed) and what it said.
fn curl(dir: &Path, url: &str, extra: &[&str]) -> (Option<u16>, String) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-v",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .args(extra)
        .arg(url)
        .current_dir(dir)
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .ok()
        .filter(|&s| s != 0);
    (status, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn tools() -> bool {
    external("curl").is_some() && external("openssl").is_some()
}

#[test]
fn https_with_client_certificates_tokens_and_a_reloaded_certificate() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    issue(
        d,
        "server-ca",
        "server",
        "/CN=zen-watcher one",
        Some("IP:127.0.0.1,DNS:localhost"),
    );
    issue(
        d,
        "client-ca",
        "apiserver",
        "/CN=kube-apiserver/O=system:masters",
        None,
    );
    issue(d, "rogue-ca", "rogue", "/CN=kube-apiserver", None);
    std::fs::write(d.join("admin.tokens"), "ops:0123456789abcdef-admin\n").unwrap();
    let data = d.join("data");
    let path = |f: &str| d.join(f).display().to_string();
    let (cert, key, client_ca, admin) = (
        path("server.crt"),
        path("server.key"),
        path("client-ca.crt"),
        path("admin.tokens"),
    );
    let (child, addr, logs) = start_with(
        &data,
        &[
            ("ZEN_TLS_CLIENT_CA_FILE", client_ca.as_str()),
            ("ZEN_ADMIN_TOKEN_FILE", admin.as_str()),
        ],
        &["--tls-cert", &cert, "--tls-key", &key],
    );
    let _daemon = KillOnDrop(child);
    std::thread::spawn(move || logs.for_each(drop));
    let url = |p: &str| format!("https://127.0.0.1:{}{p}", addr.port());
    let trust = ["--cacert", "server-ca.crt"];
    let as_apiserver = [
        "--cacert",
        "server-ca.crt",
        "--cert",
        "apiserver.crt",
        "--key",
        "apiserver.key",
    ];

    // The server's certificate is checked: trusted through its CA, refused without.
    let (status, said) = curl(d, &url("/readyz"), &trust);
    assert_eq!(status, Some(200), "{said}");
    let (status, said) = curl(d, &url("/readyz"), &[]);
    assert_eq!(status, None, "{said}");
    // Plain HTTP on the HTTPS port is not served.
    assert_eq!(
        curl(d, &format!("http://127.0.0.1:{}/readyz", addr.port()), &[]).0,
        None
    );

    // A client certificate of the client CA ingests (scope ingest), and may do nothing more.
    let alert = r#"{"rule":"Terminal shell in container","priority":"Warning","output_fields":{"k8s.ns.name":"shop"}}"#;
    let post = |who: &[&str]| {
        let mut args = who.to_vec();
        args.extend(["-H", "Content-Type: application/json", "--data", alert]);
        curl(d, &url("/api/v1/ingest/falco?ack=commit"), &args).0
    };
    assert_eq!(post(&as_apiserver), Some(200));
    assert_eq!(curl(d, &url("/api/v1/stats"), &as_apiserver).0, Some(403));
    // Without a certificate or a token: 401; a bearer token counts beside certificates.
    assert_eq!(post(&trust), Some(401));
    let with_token = [
        "--cacert",
        "server-ca.crt",
        "-H",
        "Authorization: Bearer 0123456789abcdef-admin",
    ];
    let (status, _) = curl(d, &url("/api/v1/stats"), &with_token);
    assert_eq!(status, Some(200));
    // A certificate from another CA is refused at the handshake.
    let rogue = [
        "--cacert",
        "server-ca.crt",
        "--cert",
        "rogue.crt",
        "--key",
        "rogue.key",
    ];
    assert_eq!(post(&rogue), None);

    // A new certificate in the files is served without a restart.
    let (_, said) = curl(d, &url("/readyz"), &trust);
    assert!(said.contains("CN=zen-watcher one"), "{said}");
    issue(
        d,
        "server-ca",
        "server2",
        "/CN=zen-watcher two",
        Some("IP:127.0.0.1,DNS:localhost"),
    );
    // The key first, then the certificate: between the two, the pair does not match, the
    // reload fails, and the old certificate stays in use.
    std::fs::copy(d.join("server2.key"), d.join("server.key")).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        curl(d, &url("/readyz"), &trust).0,
        Some(200),
        "the old pair still served"
    );
    std::fs::copy(d.join("server2.crt"), d.join("server.crt")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, said) = curl(d, &url("/readyz"), &trust);
        if status == Some(200) && said.contains("CN=zen-watcher two") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was not served: {said}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn tls_settings_that_cannot_work_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let out = Command::new(env!("CARGO_BIN_EXE_zen-watcher"))
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(args)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let missing: PathBuf = dir.path().join("nope.pem");
    let missing = missing.to_str().unwrap();
    let said = run(&["--tls-cert", missing, "--tls-key", missing], &[]);
    assert!(said.contains("nope.pem"), "{said}");
    let said = run(&["--tls-cert", missing], &[]);
    assert!(said.contains("--tls-key"), "{said}");
    let said = run(&[], &[("ZEN_TLS_CLIENT_CA_FILE", missing)]);
    assert!(said.contains("cert_file and key_file"), "{said}");
}
