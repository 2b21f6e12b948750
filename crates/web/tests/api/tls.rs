//! `serve` terminating TLS itself: a self-signed certificate made with the
//! system's openssl, a request with the system's curl. Both are on every
//! Debian machine; without them the test says so and passes.

use std::process::Command;

use epigrid_service::{FieldCipher, SecretKey, Service, Settings};

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success())
        || Command::new(tool).arg("version").output().is_ok_and(|o| o.status.success())
}

#[tokio::test]
async fn serve_speaks_https_and_marks_cookies_secure() {
    if !have("openssl") || !have("curl") {
        eprintln!("skipped: openssl or curl not found");
        return;
    }
    let (store, guard) = epigrid_testkit::fresh_sqlite().await;
    let (cert, key) = (guard.dir().join("cert.pem"), guard.dir().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
        ])
        .args(["-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"])
        // Not a CA: rustls, the client below, refuses a CA as a server.
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));

    let key_hex = SecretKey::generate_hex();
    let service = Service::new(
        store,
        FieldCipher::new(&SecretKey::from_hex(&key_hex).unwrap()),
        Settings::default(),
    );
    let system = epigrid_service::Actor::system();
    let root = service
        .create_area(
            &system,
            epigrid_service::registry::NewArea {
                kind: epigrid_domain::AreaKind::SubDistrict,
                parent_id: None,
                code: Some("371602001".into()),
                name: "市中街道".into(),
                grid_kind: None,
                boundary: None,
                address: None,
            },
        )
        .await
        .unwrap();
    let new_admin = epigrid_service::accounts::NewUser {
        username: "admin".into(),
        display_name: "管理员".into(),
        phone: None,
        password: "tls-test-pass-1".into(),
        role: epigrid_domain::Role::SubDistrictAdmin,
        scope_area_id: root.id,
    };
    service.create_user(&system, new_admin).await.unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let state = epigrid_web::AppState { service, secure_cookies: false, metrics_token: None };
    let (cert_path, key_path) = (cert.clone(), key.clone());
    let capped_state = state.clone();
    tokio::spawn(async move {
        epigrid_web::serve_tls(
            listener,
            state,
            &cert_path,
            &key_path,
            epigrid_web::connection_cap::DEFAULT_MAX_CONNECTIONS,
            std::future::pending(),
        )
        .await
        .unwrap();
    });

    let curl = |args: &[&str]| {
        let mut command = Command::new("curl");
        command.args(["-s", "--max-time", "10", "--cacert"]).arg(&cert).args(args);
        async move { tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap() }
    };
    let mut health = curl(&[&format!("https://127.0.0.1:{port}/healthz")]).await;
    for _ in 0..50 {
        if health.status.success() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        health = curl(&[&format!("https://127.0.0.1:{port}/healthz")]).await;
    }
    assert_eq!(
        String::from_utf8_lossy(&health.stdout),
        "ok",
        "{}",
        String::from_utf8_lossy(&health.stderr)
    );

    // Plain HTTP on the TLS port is not served.
    let plain = curl(&[&format!("http://127.0.0.1:{port}/healthz")]).await;
    assert_ne!(String::from_utf8_lossy(&plain.stdout), "ok");

    // Served over TLS, the session cookie is Secure even though the state
    // asked for plain cookies.
    let login = curl(&[
        "-i",
        "-H",
        "content-type: application/json",
        "-d",
        r#"{"username":"admin","password":"tls-test-pass-1"}"#,
        &format!("https://127.0.0.1:{port}/api/v1/login"),
    ])
    .await;
    let text = String::from_utf8_lossy(&login.stdout).to_lowercase();
    let cookie =
        text.lines().find(|l| l.starts_with("set-cookie: epigrid_session=")).unwrap_or_default();
    assert!(cookie.contains("; secure") && cookie.contains("httponly"), "{text}");

    // The connection cap holds over TLS too: with one connection allowed
    // and a client holding it (connected, no handshake yet), the next one
    // is held: answered 503 with Retry-After over TLS, and kept open.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (cert_path, key_path) = (cert.clone(), key.clone());
    tokio::spawn(async move {
        epigrid_web::serve_tls(
            listener,
            capped_state,
            &cert_path,
            &key_path,
            1,
            std::future::pending(),
        )
        .await
        .unwrap();
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let holder = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let url = format!("https://127.0.0.1:{port}/healthz");
    let refused = curl(&["-i", "--http1.1", "-H", "accept-language: en", &url]).await;
    let text = String::from_utf8_lossy(&refused.stdout).to_lowercase();
    assert!(text.starts_with("http/1.1 503"), "{text}");
    assert!(text.contains("retry-after: 5"), "{text}");
    assert!(!text.contains("connection: close"), "a held connection stays open: {text}");
    assert!(text.contains("x-frame-options: deny"), "{text}");
    // The API's own refusal, in the language asked for.
    assert!(text.contains("\"code\":\"unavailable\""), "{text}");
    assert!(text.contains("the system is busy"), "{text}");
    // A held connection speaks HTTP/1.1 even to a client that would pick
    // HTTP/2 (as curl and browsers do): the same refusal.
    let refused = curl(&["-i", &url]).await;
    let text = String::from_utf8_lossy(&refused.stdout).to_lowercase();
    assert!(text.starts_with("http/1.1 503"), "{text}");
    assert!(text.contains("retry-after: 5"), "{text}");

    // A held connection is served once a place is free, without a new
    // handshake: its second request, looked at a pause after its first
    // refusal, finds the holder gone.
    let (first_refused, refusal_seen) = tokio::sync::oneshot::channel();
    let mut two = std::process::Command::new("curl");
    two.args(["-s", "-v", "--http1.1", "--max-time", "10", "--cacert"])
        .arg(&cert)
        .args(["-w", "\n== %{http_code} %{num_connects} %{time_total}\n", &url, &url])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let two = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut child = two.spawn().unwrap();
        // curl's trace (stderr, unbuffered) tells when the first answer came.
        let mut trace = child.stderr.take().unwrap();
        let (mut seen, mut chunk, mut first_refused) =
            (Vec::new(), [0u8; 1024], Some(first_refused));
        loop {
            let n = trace.read(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&chunk[..n]);
            if String::from_utf8_lossy(&seen).contains("< HTTP/1.1 503")
                && let Some(refused) = first_refused.take()
            {
                let _ = refused.send(());
            }
        }
        let mut out = String::new();
        child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        child.wait().unwrap();
        out
    });
    refusal_seen.await.expect("the first request refused");
    drop(holder);
    let text = two.await.unwrap();
    let transfers: Vec<&str> = text.lines().filter(|l| l.starts_with("== ")).collect();
    assert_eq!(transfers.len(), 2, "{text}");
    assert!(transfers[0].starts_with("== 503 1 "), "refused on a new connection: {text}");
    assert!(transfers[1].starts_with("== 200 0 "), "served on the same one: {text}");
    assert!(text.contains("ok\n== 200"), "{text}");
    let waited: f64 = transfers[1].rsplit(' ').next().unwrap().parse().unwrap();
    assert!(waited >= 0.2, "looked at only after the pause: {text}");

    // A held connection waits for its first request as long as an idle one
    // may (a browser connects ahead of its requests): asked after three
    // seconds, it is refused and kept open, then served once a place is free.
    let holder = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let mut held = tls_client(&cert, port).await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let answer = get_healthz(&mut held).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(!answer.to_lowercase().contains("connection: close"), "{answer}");
    drop(holder);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let answer = get_healthz(&mut held).await;
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok"), "{answer}");
    drop(held);

    // Beyond `HELD_PER_SERVED` held connections for each one served, a
    // connection is refused and closed. The holder takes the place again
    // and that many connections are held (connected, no handshake yet).
    let holder = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let mut held = Vec::new();
    for _ in 0..epigrid_web::connection_cap::HELD_PER_SERVED {
        held.push(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let refused = curl(&["-i", "--http1.1", &url]).await;
    let text = String::from_utf8_lossy(&refused.stdout).to_lowercase();
    assert!(text.starts_with("http/1.1 503"), "{text}");
    assert!(text.contains("connection: close"), "closed beyond the held: {text}");
    drop(held);
    drop(holder);
    let mut served = curl(&[&url]).await;
    for _ in 0..50 {
        if String::from_utf8_lossy(&served.stdout) == "ok" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        served = curl(&[&url]).await;
    }
    assert_eq!(String::from_utf8_lossy(&served.stdout), "ok");
}

/// A TLS connection to the test server, trusting its certificate only.
async fn tls_client(
    cert: &std::path::Path,
    port: u16,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(cert).unwrap()).unwrap();
    let config =
        rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let name = rustls::pki_types::ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)).connect(name, tcp).await.unwrap()
}

/// `GET /healthz` on a kept-open connection: the answer's head and body.
async fn get_healthz(
    stream: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    loop {
        let text = String::from_utf8_lossy(&answer).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
                })
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if body.len() >= length {
                return text;
            }
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .expect("an answer within five seconds")
            .unwrap();
        assert!(n > 0, "closed before answering: {text}");
        answer.extend_from_slice(&chunk[..n]);
    }
}
