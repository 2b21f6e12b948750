//! A bounded, loopback-only HTTP/1.1 load generator: N keep-alive
//! connections, each sending one request after another (closed loop), until
//! a request count or a time limit is reached, whichever comes first.
//!
//! ```text
//! loadgen --url http://127.0.0.1:8080/api/v1/public/health-reports \
//!     --connections 256 --seconds 10 --max-requests 2000000 \
//!     --body '{"idempotency_key":"{key}",...}' --header 'Authorization: Bearer …'
//! ```
//!
//! `{key}` in the body becomes a unique key per request, so every request is
//! a new submission. Keys are time-ordered like the UUIDv7 keys epigrid's own
//! pages put in their forms (milliseconds first, then connection and
//! sequence), so they land where real ones do in the store's key index;
//! `--spread-keys` gives the older per-connection keys (`lg<run>-<conn>-<seq>`),
//! which scatter across the index like keys from a random generator.
//! `--vars FILE` puts line `i % lines` of FILE (whitespace-separated values)
//! into `{1}`, `{2}`, … of connection `i`'s body and headers: a load from
//! many households, one pass each (`bench-pass … COUNT`). Prints one line of
//! `key=value` figures: requests, rps, p50/p99/max (ms) of all answers,
//! counts by status class, and p99 of the 503 refusals alone. `ok_rps` is
//! the successes answered within the time limit over that limit (`window`);
//! `seconds` is the whole run, up to the last answer.
//!
//! The generator runs at `SCHED_BATCH`, so that its threads, woken by the
//! answers, do not preempt the server's (`yield_to_servers`); `--compete`
//! keeps the normal policy, as before session 24.
//!
//! An `https://` URL speaks TLS (rustls, as the server does), trusting the
//! certificate in `--ca FILE` (PEM) only; `connects=` then counts the
//! handshakes, each a new connection.

use std::io::{Error, ErrorKind};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_util::either::Either;

/// Hard caps, whatever the arguments say: this tool must not be usable to
/// flood anything for long.
const MAX_CONNECTIONS: usize = 10_000;
const MAX_SECONDS: u64 = 120;
const MAX_REQUESTS: u64 = 50_000_000;

struct Args {
    addr: SocketAddr,
    host: String,
    path: String,
    connections: usize,
    seconds: u64,
    max_requests: u64,
    body: Option<String>,
    headers: Vec<String>,
    /// Wait `Retry-After` seconds (with jitter) after a 503, as the
    /// self-service page's script does, instead of retrying at once.
    honour_retry_after: bool,
    /// Keys spread across the key space instead of time-ordered.
    spread_keys: bool,
    /// Keep the normal scheduling policy instead of `SCHED_BATCH` (see
    /// `yield_to_servers`).
    compete: bool,
    /// Lines of values for `{1}`, `{2}`, … in the body and headers
    /// (`--vars FILE`); connection `i` takes line `i` modulo their number,
    /// so the load comes from as many households as there are lines.
    vars: Vec<Vec<String>>,
    /// For an `https://` URL: the connector trusting `--ca`.
    tls: Option<TlsConnector>,
}

/// A connector that trusts only the certificates in the PEM file `ca`.
fn tls_connector(ca: &str) -> Result<TlsConnector, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| format!("{ca}: {e}"))? {
        let cert = cert.map_err(|e| format!("{ca}: {e}"))?;
        roots.add(cert).map_err(|e| format!("{ca}: {e}"))?;
    }
    let config =
        rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    Ok(TlsConnector::from(std::sync::Arc::new(config)))
}

fn parse_args() -> Result<Args, String> {
    let mut url = None;
    let (mut connections, mut seconds, mut max_requests) = (64usize, 10u64, 1_000_000u64);
    let (mut body, mut headers, mut honour_retry_after) = (None, Vec::new(), false);
    let mut spread_keys = false;
    let mut compete = false;
    let (mut vars, mut ca) = (Vec::new(), None);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => url = Some(value()?),
            "--connections" => connections = value()?.parse().map_err(|_| "bad --connections")?,
            "--seconds" => seconds = value()?.parse().map_err(|_| "bad --seconds")?,
            "--max-requests" => {
                max_requests = value()?.parse().map_err(|_| "bad --max-requests")?
            }
            "--body" => body = Some(value()?),
            "--header" => headers.push(value()?),
            "--honour-retry-after" => honour_retry_after = true,
            "--spread-keys" => spread_keys = true,
            "--compete" => compete = true,
            "--ca" => ca = Some(value()?),
            "--vars" => {
                let file = value()?;
                let text = std::fs::read_to_string(&file).map_err(|e| format!("{file}: {e}"))?;
                vars = text
                    .lines()
                    .filter(|line| !line.trim().is_empty())
                    .map(|line| line.split_whitespace().map(str::to_owned).collect())
                    .collect();
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let url = url.ok_or("--url is required")?;
    let (rest, tls) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
        (Some(rest), _) => (rest, None),
        (_, Some(rest)) => {
            let ca = ca.ok_or("an https:// URL needs --ca FILE")?;
            (rest, Some(tls_connector(&ca)?))
        }
        _ => return Err("only http:// and https:// URLs".into()),
    };
    let (authority, path) =
        rest.split_once('/').map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
    let addr: SocketAddr = authority
        .replace("localhost", "127.0.0.1")
        .parse()
        .map_err(|_| format!("{authority}: give an IP:port"))?;
    if !addr.ip().is_loopback() {
        return Err("loopback addresses only".into());
    }
    Ok(Args {
        addr,
        host: authority.to_owned(),
        path,
        connections: connections.clamp(1, MAX_CONNECTIONS),
        seconds: seconds.clamp(1, MAX_SECONDS),
        max_requests: max_requests.clamp(1, MAX_REQUESTS),
        body,
        headers,
        honour_retry_after,
        spread_keys,
        compete,
        vars,
        tls,
    })
}

/// A connection to the server, plain or over TLS.
type Conn = Either<TcpStream, Box<TlsStream<TcpStream>>>;

/// Connects to the server, with a TLS handshake for an `https://` URL.
async fn open(args: &Args) -> std::io::Result<Conn> {
    let tcp = TcpStream::connect(args.addr).await?;
    let _ = tcp.set_nodelay(true);
    match &args.tls {
        None => Ok(Either::Left(tcp)),
        Some(connector) => {
            let name = rustls::pki_types::ServerName::IpAddress(args.addr.ip().into());
            Ok(Either::Right(Box::new(connector.connect(name, tcp).await?)))
        }
    }
}

#[derive(Default)]
struct Tally {
    /// Latency of every answer, in microseconds.
    all: Vec<u32>,
    refused: Vec<u32>,
    ok: u64,
    /// Successes answered by the deadline: the rate's numerator, so that
    /// answers still outstanding at the end (a held connection's refusal
    /// waits up to `HELD_PAUSE`) do not stretch the time it is divided by.
    ok_in_window: u64,
    unavailable: u64,
    other: u64,
    errors: u64,
    /// Connections made (with TLS, handshakes).
    connects: u64,
}

/// One response: its status, `Retry-After` (0 if none), and whether the
/// server closes the connection after it (`Connection: close`).
struct Answer {
    status: u16,
    retry_after: u64,
    closes: bool,
}

/// A header's value as a number; 0 when it is not one.
fn header_number<T: std::str::FromStr + Default>(value: &[u8]) -> T {
    std::str::from_utf8(value).ok().and_then(|v| v.trim().parse().ok()).unwrap_or_default()
}

/// Reads one response. Handles `Content-Length` bodies (what axum sends for
/// JSON and text). The load generator shares the machine's cores with the
/// server it measures, so it reads into the buffer's spare room (no buffer
/// zeroed per response) and parses the head in one pass: a head of 400
/// bytes (epigrid's security headers) cost it 9,000 more instructions a
/// response than hello-world's 100 when it scanned the lines three times
/// (docs/PERFORMANCE.md, session 24).
async fn read_response(stream: &mut Conn, buf: &mut Vec<u8>) -> std::io::Result<Answer> {
    buf.clear();
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 24];
        let mut response = httparse::Response::new(&mut headers);
        let parsed = response.parse(buf).map_err(|e| Error::new(ErrorKind::InvalidData, e))?;
        if let httparse::Status::Complete(head_len) = parsed {
            let status =
                response.code.ok_or_else(|| Error::new(ErrorKind::InvalidData, "status"))?;
            let (mut length, mut retry_after, mut closes) = (0usize, 0u64, false);
            for header in response.headers.iter() {
                if header.name.eq_ignore_ascii_case("content-length") {
                    length = header_number(header.value);
                } else if header.name.eq_ignore_ascii_case("retry-after") {
                    retry_after = header_number(header.value);
                } else if header.name.eq_ignore_ascii_case("connection") {
                    closes = header.value.trim_ascii().eq_ignore_ascii_case(b"close");
                }
            }
            let total = head_len + length;
            while buf.len() < total {
                if stream.read_buf(buf).await? == 0 {
                    return Err(Error::new(ErrorKind::UnexpectedEof, "closed"));
                }
            }
            return Ok(Answer { status, retry_after, closes });
        }
        if stream.read_buf(buf).await? == 0 {
            return Err(Error::new(ErrorKind::UnexpectedEof, "closed"));
        }
    }
}

/// A connection's request, with its line of `--vars` put in, split where
/// each request's key goes: built once, so a request costs a copy of its
/// parts and the key, not a format and a search of the body.
struct Template {
    /// The request line and headers, up to the value of `Content-Length`
    /// (or the whole head, for a GET).
    head: Vec<u8>,
    /// The body around each `{key}`; empty for a GET.
    body_parts: Vec<Vec<u8>>,
}

impl Template {
    fn for_connection(args: &Args, id: usize) -> Self {
        let fill = |text: &str| match args.vars.get(id % args.vars.len().max(1)) {
            // The highest first, so `{1}` never eats the start of `{10}`.
            Some(values) => values
                .iter()
                .enumerate()
                .rev()
                .fold(text.to_owned(), |t, (i, v)| t.replace(&format!("{{{}}}", i + 1), v)),
            None => text.to_owned(),
        };
        let body = args.body.as_deref().map(fill);
        let method = if body.is_some() { "POST" } else { "GET" };
        let mut head = format!("{method} {} HTTP/1.1\r\nHost: {}\r\n", args.path, args.host);
        for h in &args.headers {
            head.push_str(&fill(h));
            head.push_str("\r\n");
        }
        let body_parts = match body {
            Some(body) => {
                head.push_str("Content-Type: application/json\r\nContent-Length: ");
                body.split("{key}").map(|part| part.as_bytes().to_vec()).collect()
            }
            None => {
                head.push_str("\r\n");
                Vec::new()
            }
        };
        Self { head: head.into_bytes(), body_parts }
    }

    /// The request for `key`, written into `out`.
    fn request(&self, key: &str, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.head);
        let Some((first, rest)) = self.body_parts.split_first() else { return };
        let length = self.body_parts.iter().map(Vec::len).sum::<usize>() + key.len() * rest.len();
        out.extend_from_slice(length.to_string().as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(first);
        for part in rest {
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(part);
        }
    }
}

async fn connection(
    args: std::sync::Arc<Args>,
    id: usize,
    run: u128,
    deadline: Instant,
    budget: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> Tally {
    use std::sync::atomic::Ordering;
    let mut tally = Tally::default();
    let template = Template::for_connection(&args, id);
    let mut buf = Vec::with_capacity(8192);
    let mut bytes = Vec::with_capacity(1024);
    let mut stream = None;
    let mut seq = 0u64;
    while Instant::now() < deadline {
        if budget.fetch_sub(1, Ordering::Relaxed) == 0
            || budget.load(Ordering::Relaxed) > MAX_REQUESTS
        {
            break;
        }
        if stream.is_none() {
            match open(&args).await {
                Ok(s) => {
                    tally.connects += 1;
                    stream = Some(s);
                }
                Err(_) => {
                    tally.errors += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let Some(s) = stream.as_mut() else { continue };
        seq += 1;
        let key = if args.spread_keys {
            format!("lg{run:x}-{id}-{seq}")
        } else {
            let millis = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            format!("{:012x}7{:04x}{:015x}", millis & 0xffff_ffff_ffff, id, seq)
        };
        template.request(&key, &mut bytes);
        let start = Instant::now();
        let result = async {
            s.write_all(&bytes).await?;
            read_response(s, &mut buf).await
        }
        .await;
        let micros = u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX);
        match result {
            Ok(Answer { status, retry_after, closes }) => {
                tally.all.push(micros);
                if closes {
                    // The server refused the connection itself: connect
                    // anew for the next request, as a browser does.
                    stream = None;
                }
                if status == 503 && args.honour_retry_after && retry_after > 0 {
                    // Jitter between 0.5x and 1.5x, from the clock and the
                    // connection id (no RNG crate needed for this).
                    let nanos =
                        start.elapsed().subsec_nanos() ^ (id as u32).wrapping_mul(2_654_435_761);
                    let factor = 0.5 + f64::from(nanos % 1000) / 1000.0;
                    // Never past the end of the run, which would stretch
                    // the elapsed time every rate is divided by.
                    let wait = Duration::from_secs_f64(retry_after as f64 * factor)
                        .min(deadline.saturating_duration_since(Instant::now()));
                    tokio::time::sleep(wait).await;
                }
                match status {
                    200..=299 => {
                        tally.ok += 1;
                        if Instant::now() <= deadline {
                            tally.ok_in_window += 1;
                        }
                    }
                    503 => {
                        tally.unavailable += 1;
                        tally.refused.push(micros);
                    }
                    _ => tally.other += 1,
                }
            }
            Err(_) => {
                tally.errors += 1;
                stream = None;
            }
        }
    }
    tally
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

/// The load generator shares the machine's two cores with the server it
/// measures, which a client on another machine does not. At the normal
/// policy the wake-up of a generator thread by an answer preempted the
/// server's connection thread: 0.37 times a request against epigrid, whose
/// writer keeps the other core busy, against 0.04 for hello-world, whose
/// one thread leaves it free (docs/PERFORMANCE.md, session 24). Under
/// `SCHED_BATCH` a woken thread waits for the running one's turn to end
/// instead of cutting in; its share of the cores is unchanged. Set for the
/// whole process before the runtime starts its threads, which inherit it;
/// by `chrt` (util-linux), as the workspace forbids `unsafe`.
fn yield_to_servers() {
    let pid = std::process::id().to_string();
    let status = std::process::Command::new("chrt")
        .args(["--batch", "--all-tasks", "--pid", "0", &pid])
        .status();
    if !status.as_ref().is_ok_and(std::process::ExitStatus::success) {
        eprintln!("loadgen: SCHED_BATCH not taken ({status:?}); running at the normal policy");
    }
}

fn main() {
    let args = match parse_args() {
        Ok(args) => std::sync::Arc::new(args),
        Err(error) => {
            eprintln!("loadgen: {error}");
            std::process::exit(2);
        }
    };
    if !args.compete {
        yield_to_servers();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build();
    match runtime {
        Ok(runtime) => runtime.block_on(run(args)),
        Err(error) => {
            eprintln!("loadgen: no runtime: {error}");
            std::process::exit(1);
        }
    }
}

async fn run(args: std::sync::Arc<Args>) {
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let budget = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(args.max_requests));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let tasks: Vec<_> = (0..args.connections)
        .map(|id| tokio::spawn(connection(args.clone(), id, run, deadline, budget.clone())))
        .collect();
    let mut total = Tally::default();
    for task in tasks {
        if let Ok(t) = task.await {
            total.all.extend(t.all);
            total.refused.extend(t.refused);
            total.ok += t.ok;
            total.ok_in_window += t.ok_in_window;
            total.unavailable += t.unavailable;
            total.other += t.other;
            total.errors += t.errors;
            total.connects += t.connects;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    // The run's window: its time limit, or less when the request budget
    // ran out first. `ok_rps` counts the successes answered within it.
    let window = elapsed.min(args.seconds as f64);
    total.all.sort_unstable();
    total.refused.sort_unstable();
    let answered = total.all.len() as f64;
    println!(
        "connections={} seconds={:.2} window={:.2} requests={} rps={:.0} ok_rps={:.0} p50_ms={:.2} p99_ms={:.2} \
         max_ms={:.2} ok={} s503={} other={} errors={} refused_p99_ms={:.2} connects={}",
        args.connections,
        elapsed,
        window,
        total.all.len(),
        answered / elapsed,
        total.ok_in_window as f64 / window,
        percentile(&total.all, 0.50),
        percentile(&total.all, 0.99),
        percentile(&total.all, 1.0),
        total.ok,
        total.unavailable,
        total.other,
        total.errors,
        percentile(&total.refused, 0.99),
        total.connects,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(body: Option<&str>, vars: Vec<Vec<String>>) -> Args {
        Args {
            addr: "127.0.0.1:9".parse().expect("an address"),
            host: "127.0.0.1:9".into(),
            path: "/api/v1/public/health-reports".into(),
            connections: 1,
            seconds: 1,
            max_requests: 1,
            body: body.map(str::to_owned),
            headers: vec!["Authorization: Bearer {1}".into()],
            honour_retry_after: false,
            spread_keys: false,
            compete: false,
            vars,
            tls: None,
        }
    }

    #[test]
    fn a_request_carries_its_key_and_the_length_of_its_body() {
        let args =
            args(Some(r#"{"k":"{key}","again":"{key}","r":"{1}"}"#), vec![vec!["p1".into()]]);
        let mut out = Vec::new();
        Template::for_connection(&args, 0).request("abc", &mut out);
        let text = String::from_utf8(out).expect("text");
        let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
        assert_eq!(body, r#"{"k":"abc","again":"abc","r":"p1"}"#);
        assert!(
            head.starts_with(
                "POST /api/v1/public/health-reports HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"
            )
        );
        assert!(head.contains("Authorization: Bearer p1\r\n"), "{head}");
        assert!(head.ends_with(&format!("Content-Length: {}", body.len())), "{head}");
    }

    #[test]
    fn a_get_has_no_body() {
        let mut out = Vec::new();
        Template::for_connection(&args(None, Vec::new()), 0).request("abc", &mut out);
        let text = String::from_utf8(out).expect("text");
        assert!(text.starts_with("GET /api/v1/public/health-reports HTTP/1.1\r\n"));
        assert!(text.ends_with("Bearer {1}\r\n\r\n"), "{text}");
    }

    #[tokio::test]
    async fn a_response_split_across_reads_is_read_whole_with_its_headers() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("an address");
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let first = b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 2\r\nConnec";
            let rest = b"tion: close\r\ncontent-length: 5\r\n\r\nbu";
            for part in [&first[..], &rest[..], b"sy", b"!"] {
                socket.write_all(part).await.expect("write");
                socket.flush().await.expect("flush");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // The next answer only once it is asked for, as in a run.
            let mut ask = [0u8; 1];
            socket.read_exact(&mut ask).await.expect("the next request");
            socket
                .write_all(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}")
                .await
                .expect("write");
        });
        let mut stream: Conn = Either::Left(TcpStream::connect(addr).await.expect("connect"));
        let mut buf = Vec::with_capacity(8192);
        let first = read_response(&mut stream, &mut buf).await.expect("the first response");
        assert_eq!((first.status, first.retry_after, first.closes), (503, 2, true));
        assert!(buf.ends_with(b"\r\n\r\nbusy!"), "{:?}", String::from_utf8_lossy(&buf));
        stream.write_all(b"?").await.expect("ask for the next");
        let second = read_response(&mut stream, &mut buf).await.expect("the second response");
        assert_eq!((second.status, second.retry_after, second.closes), (201, 0, false));
        assert!(buf.ends_with(b"{}"));
        server.await.expect("the server");
    }
}
