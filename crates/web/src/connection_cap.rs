//! A cap on open connections (issue #6).
//!
//! Each connection the server keeps open holds hyper's read and write
//! buffers and a task, some 20–30 KB, whether it sends anything or not. The
//! request limits (queue, load shedding, concurrency) bound the work, but
//! not the connections: a storm of 10× the saturating load in connections
//! grew the server's memory 2.6×. Beyond `max` open connections, a new one
//! is answered by the listener itself with the same 503 and `Retry-After`
//! as a refused request, so memory stays bounded by the cap.
//!
//! A refused connection is then *held*, not closed: a small task of its own
//! (a few hundred bytes, no hyper buffers) answers each further request 503
//! as well, but reads it only `HELD_PAUSE` after the last refusal, and hands
//! the connection to the server, its request unread, as soon as a place is
//! free. Closing it cost more than it saved: a client that retries at once
//! instead of waiting `Retry-After` connected again at once, and a storm of
//! such clients spent the machine on TCP handshakes, leaving 15 % of the
//! peak rate to the requests let in (docs/PERFORMANCE.md, session 12). A
//! client that honours `Retry-After` never meets the pause. Beyond
//! `HELD_PER_SERVED` times the cap, connections are answered and closed as
//! before, so the file descriptors stay bounded too.
//!
//! A slot is only worth capping if idle connections give theirs back: a
//! connection with nothing read or written for `IDLE_TIMEOUT` reads as
//! closed, so hyper closes it (browsers keep idle connections for minutes,
//! and hyper would keep them for ever). A held connection idle as long is
//! closed too.
//!
//! A refusal reads its whole request first (the head at most a few
//! kilobytes, for at most two seconds): closing a socket with unread data
//! resets it, and the client could lose the answer before reading it; and
//! a held connection's next request must start where this one ends.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use epigrid_service::metrics::figures;

use crate::error::ApiError;
use crate::i18n::Lang;
use crate::refusal_pause::PausedAfterRefusal;

/// Open connections at most, by default: half again the 256 that saturate
/// a two-core server. More served at once add no rate, only requests in
/// flight, and each holds its buffers, parsed body and future while its
/// batch commits: at 768 a submission cost the connection thread 16.8 µs
/// against 11.4 at 256 (caches; hello-world's 8.2 against 7.6). Side by
/// side, a storm that filled 768 places served 7–10 % less than one that
/// filled 384, and took the memory to 1.6× its steady level against 1.3×
/// (docs/PERFORMANCE.md, session 22). More cores, or a proxy in front, call
/// for another figure (`max_connections`).
pub const DEFAULT_MAX_CONNECTIONS: usize = 384;

/// A connection with nothing read or written for this long is closed: as
/// nginx's default keep-alive, and well beyond the request timeout, so a
/// request still being worked on is never cut.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(75);

/// How long a held connection's next request waits to be read after a
/// refusal. Long enough that a client retrying at once costs a few
/// refusals a second rather than thousands; well under the `Retry-After`
/// (1 s) a well-behaved client waits anyway, and under hello-world's p99
/// in the same storm (400–550 ms), which the refusals' p99 must not exceed.
pub const HELD_PAUSE: Duration = Duration::from_millis(250);

/// Held connections at most, as a multiple of the cap: each holds a file
/// descriptor (OPERATIONS.md sizes `LimitNOFILE` for it). With the default
/// cap, 2,304 held: a storm of 2,560 connections (10× the saturating load)
/// is served or held, none closed to connect again at once.
pub const HELD_PER_SERVED: usize = 6;

/// Longest request head read before a refusal.
const HEAD_LIMIT: usize = 16 * 1024;
const HEAD_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest request (head and body) a held connection reads and stays open
/// for; a longer one (an upload) is refused and the connection closed.
const HELD_REQUEST_LIMIT: usize = 64 * 1024;
/// How long a refused connection is drained (a request body) before close.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// A listener that hands at most `max` open connections to the server and
/// refuses the rest itself (see the module).
#[derive(Debug)]
pub struct CappedListener {
    listener: TcpListener,
    room: Arc<Room>,
    max_held: usize,
    /// Held connections whose next request found a place free.
    admitted: mpsc::UnboundedReceiver<(TcpStream, SocketAddr)>,
}

/// What the listener and its held connections share.
#[derive(Debug)]
struct Room {
    /// Connections served (handed to the server), at most `max`.
    open: Arc<AtomicUsize>,
    max: usize,
    idle: Duration,
    held: Arc<AtomicUsize>,
    refusals: Refusals,
    /// To the listener: a held connection, its place already taken.
    admit: mpsc::UnboundedSender<(TcpStream, SocketAddr)>,
}

impl Room {
    /// Takes a place among the served connections, if one is free.
    fn take_place(&self) -> bool {
        take_place(&self.open, self.max)
    }
}

impl CappedListener {
    pub fn new(listener: TcpListener, max: usize) -> Self {
        let max = max.max(1);
        let (admit, admitted) = mpsc::unbounded_channel();
        Self {
            listener,
            room: Arc::new(Room {
                open: Arc::default(),
                max,
                idle: IDLE_TIMEOUT,
                held: Arc::default(),
                refusals: Refusals::new(),
                admit,
            }),
            max_held: max.saturating_mul(HELD_PER_SERVED),
            admitted,
        }
    }

    /// With another idle timeout (tests).
    pub fn with_idle_timeout(mut self, idle: Duration) -> Self {
        if let Some(room) = Arc::get_mut(&mut self.room) {
            room.idle = idle;
        }
        self
    }

    /// With at most `max_held` held connections (tests: 0 closes every
    /// refused connection).
    pub fn with_max_held(mut self, max_held: usize) -> Self {
        self.max_held = max_held;
        self
    }

    fn served(&self, stream: TcpStream) -> PausedAfterRefusal<CountedStream> {
        PausedAfterRefusal::new(CountedStream::new(stream, &self.room.open, self.room.idle))
    }
}

impl axum::serve::Listener for CappedListener {
    type Io = PausedAfterRefusal<CountedStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, addr) = tokio::select! {
                biased;
                Some((stream, addr)) = self.admitted.recv() => {
                    // Its place was taken when it was admitted.
                    return (self.served(stream), addr);
                }
                accepted = axum::serve::Listener::accept(&mut self.listener) => accepted,
            };
            if self.room.take_place() {
                return (self.served(stream), addr);
            }
            tracing::debug!(open = self.room.max, "connection refused: at the cap");
            // Usually the whole request is already there: answer it here,
            // without a task that would wait its turn behind the served
            // connections' (that wait was most of a refusal's latency
            // under a storm).
            if self.room.held.load(Ordering::Acquire) < self.max_held {
                figures().connections_refused_held.inc();
                let held = HeldSlot::new(&self.room.held);
                match answer_at_once(&stream, &self.room.refusals, true) {
                    AtOnce::Answered => {
                        tokio::spawn(hold(self.room.clone(), stream, addr, held, Vec::new(), true));
                    }
                    AtOnce::Later(start) => {
                        tokio::spawn(hold(self.room.clone(), stream, addr, held, start, false));
                    }
                    AtOnce::Gone => {}
                }
            } else {
                figures().connections_refused_closed.inc();
                if let AtOnce::Later(start) = answer_at_once(&stream, &self.room.refusals, false) {
                    tokio::spawn(refuse(stream, self.room.clone(), start));
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// Counts a held connection while its task lives.
#[derive(Debug)]
struct HeldSlot(Arc<AtomicUsize>);

impl HeldSlot {
    fn new(held: &Arc<AtomicUsize>) -> Self {
        held.fetch_add(1, Ordering::AcqRel);
        figures().connections_held.inc();
        Self(held.clone())
    }
}

impl Drop for HeldSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
        figures().connections_held.dec();
    }
}

/// Gives its place back when the connection is dropped.
#[derive(Debug)]
struct OpenSlot(Arc<AtomicUsize>);

impl Drop for OpenSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
        figures().connections_open.dec();
    }
}

/// A served connection's place: among the open connections of a
/// `CappedListener`, or a TLS connection's own (served or held).
#[derive(Debug)]
#[expect(dead_code, reason = "a slot is kept for what its drop gives back")]
enum Slot {
    Open(OpenSlot),
    Tls(TlsSlot),
}

/// A served connection, counted while it is open, that reads as closed
/// once idle for too long.
#[derive(Debug)]
pub struct CountedStream {
    stream: TcpStream,
    _slot: Slot,
    idle: Duration,
    last_active: Instant,
    /// Armed while a read waits; when it fires, the connection is closed
    /// unless something was read or written since (then it is re-armed):
    /// one timer per wait, not one per read.
    idle_timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl CountedStream {
    /// A connection already counted in `open`, given back when dropped.
    fn new(stream: TcpStream, open: &Arc<AtomicUsize>, idle: Duration) -> Self {
        figures().connections_open.inc();
        Self::with_slot(stream, Slot::Open(OpenSlot(open.clone())), idle)
    }

    /// A connection whose place is already counted, given back when dropped.
    fn with_slot(stream: TcpStream, slot: Slot, idle: Duration) -> Self {
        Self { stream, _slot: slot, idle, last_active: Instant::now(), idle_timer: None }
    }

    fn active(&mut self) {
        self.last_active = Instant::now();
    }
}

impl AsyncRead for CountedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    this.active();
                }
                Poll::Ready(result)
            }
            Poll::Pending => loop {
                let deadline = (this.last_active + this.idle).into();
                let timer = this
                    .idle_timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                if tokio::time::Instant::now() >= deadline {
                    // Idle too long: end of stream, and hyper closes.
                    this.idle_timer = None;
                    return Poll::Ready(Ok(()));
                }
                timer.as_mut().reset(deadline);
            },
        }
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.stream).poll_write(cx, buf);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            this.active();
        }
        written
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            this.active();
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// The refusal in each language, made once: the API's own 503 body, with
/// `Connection: close` or without (a held connection).
#[derive(Debug)]
struct Refusals {
    zh: Vec<u8>,
    en: Vec<u8>,
    zh_held: Vec<u8>,
    en_held: Vec<u8>,
}

impl Refusals {
    fn new() -> Self {
        Self {
            zh: refusal(Lang::ZhCn, false),
            en: refusal(Lang::En, false),
            zh_held: refusal(Lang::ZhCn, true),
            en_held: refusal(Lang::En, true),
        }
    }

    fn for_head(&self, head: &[u8], keep_open: bool) -> &[u8] {
        let lang = String::from_utf8_lossy(head)
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.trim().eq_ignore_ascii_case("accept-language").then(|| value.trim().to_owned())
            })
            .map_or(Lang::ZhCn, |value| Lang::from_accept_language(&value));
        match (lang, keep_open) {
            (Lang::ZhCn, false) => &self.zh,
            (Lang::En, false) => &self.en,
            (Lang::ZhCn, true) => &self.zh_held,
            (Lang::En, true) => &self.en_held,
        }
    }
}

fn refusal(lang: Lang, keep_open: bool) -> Vec<u8> {
    let error = ApiError::from_service(epigrid_service::ServiceError::Unavailable, lang);
    let body = serde_json::to_vec(&error.body()).unwrap_or_default();
    let mut head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: {}\r\n{}",
        body.len(),
        error.retry_after.unwrap_or(5),
        if keep_open { "" } else { "connection: close\r\n" },
    );
    // The same security headers as every answer the app writes.
    for (name, value) in crate::security_headers(axum::http::Response::new(())).headers() {
        if let Ok(value) = value.to_str() {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str("\r\n");
    let mut response = head.into_bytes();
    response.extend_from_slice(&body);
    response
}

/// What `answer_at_once` did.
#[derive(Debug)]
enum AtOnce {
    /// The refusal is written.
    Answered,
    /// The client had already gone: nothing to answer.
    Gone,
    /// Nothing written: the request (its start, as read so far) is to be
    /// answered by a task.
    Later(Vec<u8>),
}

/// Answers the refusal without waiting, if the whole request has arrived
/// (head, and a body of `content-length`; for a connection kept open,
/// nothing beyond it) and the answer fits the socket's buffer.
fn answer_at_once(stream: &TcpStream, refusals: &Refusals, keep_open: bool) -> AtOnce {
    let mut request = [0u8; 4096];
    let mut len = 0;
    while len < request.len() {
        match stream.try_read(&mut request[len..]) {
            Ok(0) => return AtOnce::Gone,
            Ok(n) => len += n,
            Err(_) => break,
        }
    }
    let request = &request[..len];
    let whole = match extent(request) {
        Extent::Length(n) if keep_open => n == len,
        Extent::Length(n) => n <= len,
        Extent::NeedHead | Extent::Unsupported => false,
    };
    if !whole {
        return AtOnce::Later(request.to_vec());
    }
    let answer = refusals.for_head(request, keep_open);
    match stream.try_write(answer) {
        Ok(n) if n == answer.len() => AtOnce::Answered,
        // A fresh socket's buffer holds far more than an answer; should
        // only part go, the connection is dropped rather than answered twice.
        Ok(n) if n > 0 => AtOnce::Gone,
        _ => AtOnce::Later(request.to_vec()),
    }
}

/// How far a request reaches, from its head.
#[derive(Debug, PartialEq)]
enum Extent {
    /// The head is not complete yet.
    NeedHead,
    /// Head and body take this many bytes.
    Length(usize),
    /// A chunked body or an unreadable length: not followed here.
    Unsupported,
}

fn extent(request: &[u8]) -> Extent {
    let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Extent::NeedHead;
    };
    let head = String::from_utf8_lossy(&request[..end]);
    let mut body = 0;
    for line in head.lines().skip(1) {
        let Some((name, value)) = line.split_once(':') else { continue };
        let name = name.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            return Extent::Unsupported;
        }
        if name.eq_ignore_ascii_case("content-length") {
            match value.trim().parse::<usize>() {
                Ok(n) => body = n,
                Err(_) => return Extent::Unsupported,
            }
        }
    }
    Extent::Length(end + 4 + body)
}

/// Whether `request` holds a whole request without a chunked body.
#[cfg(test)]
fn is_complete(request: &[u8]) -> bool {
    matches!(extent(request), Extent::Length(n) if request.len() >= n)
}

/// A connection beyond the cap, held (see the module): each request is
/// refused, the next read only `HELD_PAUSE` after a refusal, until a place
/// is free; then the connection goes to the server with its request unread.
/// `request` is what was read of the first request already; `pause`
/// whether it was answered.
async fn hold(
    room: Arc<Room>,
    mut stream: TcpStream,
    addr: SocketAddr,
    _held: HeldSlot,
    mut request: Vec<u8>,
    mut pause: bool,
) {
    loop {
        if request.is_empty() {
            if pause {
                tokio::time::sleep(HELD_PAUSE).await;
            }
            // The next request, or the end of the connection.
            if !matches!(tokio::time::timeout(room.idle, stream.readable()).await, Ok(Ok(()))) {
                return;
            }
            // Under a storm no place is free: the request is read at once,
            // without a look first (a system call per refusal).
            if room.open.load(Ordering::Acquire) < room.max {
                let mut first = [0u8; 1];
                if !matches!(stream.peek(&mut first).await, Ok(n) if n > 0) {
                    return;
                }
                if room.take_place() {
                    if room.admit.send((stream, addr)).is_err() {
                        // The listener is gone (shutting down): no one to serve it.
                        room.open.fetch_sub(1, Ordering::AcqRel);
                    }
                    return;
                }
            }
        }
        let Ok(keep_open) = read_held_request(&mut stream, &mut request).await else { return };
        if stream.write_all(room.refusals.for_head(&request, keep_open)).await.is_err() {
            return;
        }
        if !keep_open {
            // Boxed: its buffer would otherwise sit in every held task.
            Box::pin(drain_and_close(stream)).await;
            return;
        }
        // Nothing is kept while the connection waits.
        request = Vec::new();
        pause = true;
    }
}

/// Reads a held connection's request for its refusal, within
/// `HEAD_TIMEOUT`. True: it can stay open after the refusal; false: it is
/// to be closed (see `read_request`), as is one too slow, answered all the
/// same. An error: the client has gone.
async fn read_held_request(
    stream: &mut (impl AsyncRead + Unpin),
    request: &mut Vec<u8>,
) -> io::Result<bool> {
    match tokio::time::timeout(HEAD_TIMEOUT, read_request(stream, request)).await {
        Ok(read) => read,
        Err(_elapsed) => Ok(false),
    }
}

/// Reads one request into `request`, which may hold its start already.
/// True: exactly one whole request, after which the connection can stay
/// open; false: one not followed to its end (chunked, too long, another
/// request behind it), to be refused and the connection closed.
async fn read_request(
    stream: &mut (impl AsyncRead + Unpin),
    request: &mut Vec<u8>,
) -> io::Result<bool> {
    // Read straight into `request`: a buffer on this future's stack would
    // take room in every held task, reading or not.
    loop {
        match extent(request) {
            Extent::Length(n) if n > HELD_REQUEST_LIMIT => return Ok(false),
            Extent::Length(n) if request.len() == n => return Ok(true),
            Extent::Length(n) if request.len() > n => return Ok(false),
            Extent::Unsupported => return Ok(false),
            Extent::NeedHead if request.len() >= HEAD_LIMIT => return Ok(false),
            Extent::Length(_) | Extent::NeedHead => {}
        }
        request.reserve(1024);
        if stream.read_buf(request).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// Refuses and closes a connection beyond the cap when no more can be
/// held; `request` is what was read of its request already.
async fn refuse(mut stream: TcpStream, room: Arc<Room>, mut request: Vec<u8>) {
    // Answered however the read ends: whole, too slow, or cut short.
    let _ = tokio::time::timeout(HEAD_TIMEOUT, read_request(&mut stream, &mut request)).await;
    if stream.write_all(room.refusals.for_head(&request, false)).await.is_err() {
        return;
    }
    drain_and_close(stream).await;
}

async fn drain_and_close(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    // Whatever the client still sends (a request body) is read and dropped
    // for a moment, so the close does not reset the answer away.
    let mut chunk = [0u8; 2048];
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while matches!(stream.read(&mut chunk).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// The same cap for `serve_tls`, whose accept loop is axum-server's: an
/// acceptor that makes the TLS handshake itself, and counts connections and
/// times them out as `CappedListener` does. Beyond the cap a connection
/// still gets its handshake (a refusal has to be readable), and is then held
/// as a plain one is, within its accept: each request is answered 503 with
/// `Retry-After` and the next read only `HELD_PAUSE` after, until a place
/// is free; the accept then ends, and axum-server serves the connection
/// from its next request on. Closing it would cost more here than over
/// plain TCP: a client that retries at once would make a new handshake, the
/// costliest thing a TLS server does, for every refusal. A held connection
/// has no hyper buffers, only its TLS state; it speaks HTTP/1.1 (its
/// handshake offers no HTTP/2), which a refusal loop can read. Beyond
/// `HELD_PER_SERVED` times the cap, a connection is refused: hyper answers
/// its requests 503 with `Connection: close` and closes it (over HTTP/2,
/// which has none, once idle for two seconds).
#[derive(Debug, Clone)]
pub struct CappedAcceptor {
    /// The TLS set-up for served connections, and for held ones (HTTP/1.1
    /// only).
    served_tls: Arc<rustls::ServerConfig>,
    held_tls: Arc<rustls::ServerConfig>,
    open: Arc<AtomicUsize>,
    held: Arc<AtomicUsize>,
    max: usize,
    max_held: usize,
    idle: Duration,
    refusals: Arc<Refusals>,
}

/// How long a TLS handshake may take (axum-server's own default).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl CappedAcceptor {
    pub fn new(config: Arc<rustls::ServerConfig>, max: usize) -> Self {
        let max = max.max(1);
        let mut held_config = (*config).clone();
        held_config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self {
            served_tls: config,
            held_tls: Arc::new(held_config),
            open: Arc::default(),
            held: Arc::default(),
            max,
            max_held: max.saturating_mul(HELD_PER_SERVED),
            idle: IDLE_TIMEOUT,
            refusals: Arc::new(Refusals::new()),
        }
    }
}

/// Takes one of `max` places counted by `count`, if one is free.
fn take_place(count: &AtomicUsize, max: usize) -> bool {
    count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).is_ok()
}

/// A TLS connection's standing: served, held at the cap, refused (to be
/// closed after its answer), or closed.
const SERVED: u8 = 0;
const HELD: u8 = 1;
const REFUSED: u8 = 2;
const CLOSED: u8 = 3;

/// A TLS connection's place, shared by its stream (which gives it back when
/// the connection closes) and its hold (which takes a served place for it
/// once one is free). A served or refused connection counts among the open
/// ones (a refused one holds its TLS state until its refusal is written), a
/// held one among the held.
#[derive(Debug)]
struct TlsPlace {
    standing: AtomicU8,
    open: Arc<AtomicUsize>,
    held: Arc<AtomicUsize>,
    max: usize,
}

impl TlsPlace {
    /// Serves a held connection from now on, if a place is free.
    fn admit(&self) -> bool {
        if !take_place(&self.open, self.max) {
            return false;
        }
        if self.standing.compare_exchange(HELD, SERVED, Ordering::AcqRel, Ordering::Acquire).is_ok()
        {
            self.held.fetch_sub(1, Ordering::AcqRel);
            figures().connections_held.dec();
            figures().connections_open.inc();
            return true;
        }
        // Closed meanwhile.
        self.open.fetch_sub(1, Ordering::AcqRel);
        false
    }
}

/// Gives a TLS connection's place back when its stream is dropped.
#[derive(Debug)]
struct TlsSlot(Arc<TlsPlace>);

impl Drop for TlsSlot {
    fn drop(&mut self) {
        let place = &self.0;
        match place.standing.swap(CLOSED, Ordering::AcqRel) {
            HELD => {
                place.held.fetch_sub(1, Ordering::AcqRel);
                figures().connections_held.dec();
            }
            CLOSED => {}
            _ => {
                place.open.fetch_sub(1, Ordering::AcqRel);
                figures().connections_open.dec();
            }
        }
    }
}

/// A TLS connection as axum-server serves it.
pub type TlsConnection = tokio_rustls::server::TlsStream<CountedStream>;

impl<S: Send + 'static> axum_server::accept::Accept<TcpStream, S> for CappedAcceptor {
    type Stream = PausedAfterRefusal<TlsConnection>;
    type Service = CapService<S>;
    type Future = Pin<
        Box<
            dyn Future<Output = io::Result<(PausedAfterRefusal<TlsConnection>, CapService<S>)>>
                + Send,
        >,
    >;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let standing = if take_place(&self.open, self.max) {
            figures().connections_open.inc();
            SERVED
        } else if take_place(&self.held, self.max_held) {
            figures().connections_held.inc();
            figures().connections_refused_held.inc();
            tracing::debug!(open = self.max, "TLS connection held: at the cap");
            HELD
        } else {
            self.open.fetch_add(1, Ordering::AcqRel);
            figures().connections_open.inc();
            figures().connections_refused_closed.inc();
            tracing::debug!(open = self.max, "TLS connection refused: at the cap");
            REFUSED
        };
        let place = Arc::new(TlsPlace {
            standing: AtomicU8::new(standing),
            open: self.open.clone(),
            held: self.held.clone(),
            max: self.max,
        });
        // HTTP/2 has no `Connection: close`: a refused connection reads as
        // closed once idle for a moment after its refusal.
        let idle = if standing == REFUSED { HEAD_TIMEOUT } else { self.idle };
        let stream = CountedStream::with_slot(stream, Slot::Tls(TlsSlot(place.clone())), idle);
        let tls = tokio_rustls::TlsAcceptor::from(if standing == HELD {
            self.held_tls.clone()
        } else {
            self.served_tls.clone()
        });
        let refusals = self.refusals.clone();
        Box::pin(async move {
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await;
            let mut connection =
                handshake.map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
            if standing == HELD {
                hold_tls(&place, &mut connection, &refusals).await?;
            }
            let refused = standing == REFUSED;
            Ok((PausedAfterRefusal::new(connection), CapService { inner: service, refused }))
        })
    }
}

/// A held TLS connection (see `CappedAcceptor`): refuses each request, the
/// next read only `HELD_PAUSE` after a refusal, until a place is free; then
/// returns, its next request unread. An error ends the connection.
async fn hold_tls(
    place: &TlsPlace,
    connection: &mut TlsConnection,
    refusals: &Refusals,
) -> io::Result<()> {
    let mut pause = false;
    loop {
        if pause {
            tokio::time::sleep(HELD_PAUSE).await;
        }
        // The next request, or the end of the connection. Its start may
        // have come with the handshake, already read into the TLS state;
        // else it is waited for on the socket, as long as an idle
        // connection may wait.
        let buffered = connection
            .get_mut()
            .1
            .process_new_packets()
            .map_err(io::Error::other)?
            .plaintext_bytes_to_read();
        if buffered == 0 {
            let tcp = connection.get_ref().0;
            let mut first = [0u8; 1];
            match tokio::time::timeout(tcp.idle, tcp.stream.peek(&mut first)).await {
                Ok(Ok(n)) if n > 0 => {}
                Ok(Ok(_)) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(Err(error)) => return Err(error),
                Err(_idle) => return Err(io::ErrorKind::TimedOut.into()),
            }
        }
        if place.admit() {
            return Ok(());
        }
        let mut request = Vec::new();
        let keep_open = read_held_request(connection, &mut request).await?;
        connection.write_all(refusals.for_head(&request, keep_open)).await?;
        connection.flush().await?;
        if !keep_open {
            let _ = connection.shutdown().await;
            return Err(io::ErrorKind::ConnectionAborted.into());
        }
        pause = true;
    }
}

/// A TLS connection's service: the app, or the refusal at the cap.
#[derive(Debug, Clone)]
pub struct CapService<S> {
    inner: S,
    refused: bool,
}

impl<S, B> tower::Service<axum::http::Request<B>> for CapService<S>
where
    S: tower::Service<axum::http::Request<B>, Response = axum::response::Response>,
{
    type Response = axum::response::Response;
    type Error = S::Error;
    type Future = futures_util::future::Either<
        S::Future,
        std::future::Ready<Result<axum::response::Response, S::Error>>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.refused { Poll::Ready(Ok(())) } else { self.inner.poll_ready(cx) }
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        use axum::http::{HeaderValue, header};
        use axum::response::IntoResponse;
        if !self.refused {
            return futures_util::future::Either::Left(self.inner.call(request));
        }
        let lang = request
            .headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .map_or(Lang::ZhCn, Lang::from_accept_language);
        let mut response = ApiError::from_service(epigrid_service::ServiceError::Unavailable, lang)
            .into_response();
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        futures_util::future::Either::Right(std::future::ready(Ok(crate::security_headers(
            response,
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::serve::Listener;

    #[tokio::test]
    async fn beyond_the_cap_a_connection_gets_503_with_retry_after_in_its_language() {
        // No connection held: a refused one is closed.
        let (mut capped, addr, first, served) = at_the_cap(0).await;

        // The second connection is refused while the first is open.
        let mut second = TcpStream::connect(addr).await.unwrap();
        second
            .write_all(b"POST /api/v1/public/health-reports HTTP/1.1\r\nHost: x\r\nAccept-Language: en\r\ncontent-length: 2\r\n\r\n{}")
            .await
            .unwrap();
        let accepting = tokio::spawn(async move {
            let (third, _) = capped.accept().await;
            third
        });
        let mut answer = String::new();
        second.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
        assert!(answer.contains("retry-after: 5\r\n"), "{answer}");
        assert!(answer.contains("connection: close\r\n"), "{answer}");
        assert!(answer.contains("\"code\":\"unavailable\""), "{answer}");
        assert!(answer.contains("please try again"), "English asked for: {answer}");

        // Once the first closes, a new connection is served again.
        drop(served);
        drop(first);
        let _fourth = TcpStream::connect(addr).await.unwrap();
        let third = tokio::time::timeout(Duration::from_secs(5), accepting).await.unwrap().unwrap();
        drop(third);
    }

    #[tokio::test]
    async fn an_idle_connection_reads_as_closed_and_gives_its_place_back() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut capped =
            CappedListener::new(listener, 1).with_idle_timeout(Duration::from_millis(300));
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (mut served, _) = capped.accept().await;
        // Activity keeps it open past the timeout...
        let started = Instant::now();
        for _ in 0..4 {
            client.write_all(b"x").await.unwrap();
            let mut byte = [0u8; 1];
            assert_eq!(served.read(&mut byte).await.unwrap(), 1);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(started.elapsed() > Duration::from_millis(300));
        // ...and silence closes it.
        let mut rest = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(5), served.read(&mut rest)).await;
        assert_eq!(read.expect("closed within the timeout").unwrap(), 0, "reads as closed");
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(600), "only after the idle time: {waited:?}");
        drop(served);
        assert_eq!(capped.room.open.load(Ordering::SeqCst), 0, "its place is given back");
    }

    #[test]
    fn a_request_is_complete_with_its_whole_body_and_never_when_chunked() {
        assert!(is_complete(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(!is_complete(b"GET / HTTP/1.1\r\nHost: x\r\n"));
        assert!(is_complete(b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"));
        assert!(!is_complete(b"POST / HTTP/1.1\r\ncontent-length: 3\r\n\r\n{}"));
        assert!(!is_complete(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}"));
        assert!(!is_complete(b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n"));
    }

    #[tokio::test]
    async fn a_request_sent_in_pieces_is_refused_by_the_task_all_the_same() {
        let (mut capped, addr, _first, _served) = at_the_cap(0).await;
        let mut second = TcpStream::connect(addr).await.unwrap();
        // Only half the head before the listener sees the connection.
        second.write_all(b"POST / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        let accepting = tokio::spawn(async move { capped.accept().await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        second.write_all(b"content-length: 2\r\n\r\n{}").await.unwrap();
        let mut answer = String::new();
        second.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
        assert!(answer.contains("系统繁忙"), "Chinese by default: {answer}");
        accepting.abort();
    }

    #[test]
    fn the_refusal_is_in_chinese_unless_english_is_asked_for() {
        let refusals = Refusals::new();
        let answer = |head: &[u8], keep_open| {
            String::from_utf8(refusals.for_head(head, keep_open).to_vec()).unwrap()
        };
        let zh = answer(b"GET / HTTP/1.1\r\n\r\n", false);
        let en = answer(b"GET / HTTP/1.1\r\naccept-language: en-US,en\r\n\r\n", false);
        assert_ne!(zh, en);
        assert!(zh.contains("connection: close\r\n"), "{zh}");
        let held = answer(b"GET / HTTP/1.1\r\n\r\n", true);
        assert!(!held.contains("connection:"), "a held connection stays open: {held}");
        assert_eq!(held.split("\r\n\r\n").nth(1), zh.split("\r\n\r\n").nth(1));
        let length = |s: &str| {
            s.lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .unwrap()
                .parse::<usize>()
                .unwrap()
        };
        assert_eq!(length(&zh), zh.split("\r\n\r\n").nth(1).unwrap().len());
        assert_eq!(length(&en), en.split("\r\n\r\n").nth(1).unwrap().len());
        assert_eq!(length(&held), held.split("\r\n\r\n").nth(1).unwrap().len());
    }

    #[test]
    fn a_request_reaches_to_the_end_of_its_body() {
        assert_eq!(extent(b"GET / HTTP/1.1\r\nHost: x\r\n"), Extent::NeedHead);
        assert_eq!(extent(b"GET / HTTP/1.1\r\n\r\nGET"), Extent::Length(18));
        assert_eq!(extent(b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n{"), Extent::Length(40));
        assert_eq!(extent(b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), Extent::Unsupported);
    }

    #[tokio::test]
    async fn a_served_connection_answered_503_is_read_again_only_after_the_pause() {
        let (_capped, _addr, mut client, mut served) = at_the_cap(0).await;
        // Before the write, which starts the pause: so the bound below holds
        // however long the write takes.
        let started = Instant::now();
        served
            .write_all(b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\n\r\n")
            .await
            .unwrap();
        client.write_all(b"x").await.unwrap();
        let mut byte = [0u8; 1];
        served.read_exact(&mut byte).await.unwrap();
        assert!(started.elapsed() >= HELD_PAUSE, "read after {:?}", started.elapsed());
    }

    /// A listener capped at one connection, that one served: the listener,
    /// its address, and both ends of the served connection.
    async fn at_the_cap(
        max_held: usize,
    ) -> (CappedListener, SocketAddr, TcpStream, PausedAfterRefusal<CountedStream>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut capped = CappedListener::new(listener, 1).with_max_held(max_held);
        let client = TcpStream::connect(addr).await.unwrap();
        let (served, _) = capped.accept().await;
        (capped, addr, client, served)
    }

    /// One answer, read to the end of its body (the connection stays open).
    async fn one_answer(stream: &mut TcpStream) -> String {
        let mut answer = Vec::new();
        let mut chunk = [0u8; 1024];
        while !matches!(extent(&answer), Extent::Length(n) if answer.len() >= n) {
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed before a whole answer: {}", String::from_utf8_lossy(&answer));
            answer.extend_from_slice(&chunk[..n]);
        }
        String::from_utf8(answer).unwrap()
    }

    const SUBMISSION: &[u8] =
        b"POST /api/v1/public/health-reports HTTP/1.1\r\nHost: x\r\ncontent-length: 2\r\n\r\n{}";

    #[tokio::test]
    async fn a_held_connection_is_refused_again_only_after_a_pause_then_served_when_a_place_frees()
    {
        let (mut capped, addr, first, served) = at_the_cap(HELD_PER_SERVED).await;
        let room = capped.room.clone();
        let accepting = tokio::spawn(async move {
            let (admitted, _) = capped.accept().await;
            admitted
        });

        // Beyond the cap: refused at once, and the connection stays open.
        let mut second = TcpStream::connect(addr).await.unwrap();
        let asked = Instant::now();
        second.write_all(SUBMISSION).await.unwrap();
        let answer = one_answer(&mut second).await;
        assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
        assert!(answer.contains("retry-after: "), "{answer}");
        assert!(!answer.contains("connection: close"), "held, not closed: {answer}");
        assert!(asked.elapsed() < HELD_PAUSE, "the first refusal is at once");
        assert_eq!(room.held.load(Ordering::SeqCst), 1);

        // A retry at once, ignoring Retry-After: refused after the pause.
        let asked = Instant::now();
        second.write_all(SUBMISSION).await.unwrap();
        let answer = one_answer(&mut second).await;
        assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
        let waited = asked.elapsed();
        assert!(
            waited >= HELD_PAUSE - Duration::from_millis(20),
            "only after the pause: {waited:?}"
        );

        // Once the served connection closes, the held one's next request
        // goes to the server, unread and whole.
        drop(served);
        drop(first);
        tokio::time::sleep(HELD_PAUSE).await;
        second.write_all(SUBMISSION).await.unwrap();
        let mut admitted =
            tokio::time::timeout(Duration::from_secs(5), accepting).await.unwrap().unwrap();
        let mut request = vec![0u8; SUBMISSION.len()];
        admitted.read_exact(&mut request).await.unwrap();
        assert_eq!(request, SUBMISSION);
        assert_eq!(room.open.load(Ordering::SeqCst), 1, "it holds the place");
        assert_eq!(room.held.load(Ordering::SeqCst), 0, "no longer held");
        drop(admitted);
        assert_eq!(room.open.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_held_connection_costs_a_few_hundred_bytes() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let capped = CappedListener::new(listener, 1);
        let _client = TcpStream::connect(addr).await.unwrap();
        let (stream, _) = capped.listener.accept().await.unwrap();
        let held = HeldSlot::new(&capped.room.held);
        let task = hold(capped.room.clone(), stream, addr, held, Vec::new(), true);
        // Each of up to 6 × 384 held connections is this task (and the
        // kernel's socket): the storm's memory bound counts on it.
        let size = std::mem::size_of_val(&task);
        assert!(size < 1024, "a held connection's task is {size} bytes");
    }

    #[tokio::test]
    async fn a_held_connection_closes_with_its_client() {
        let (mut capped, addr, _first, _served) = at_the_cap(HELD_PER_SERVED).await;
        let room = capped.room.clone();
        let accepting = tokio::spawn(async move { capped.accept().await });
        // The request in pieces: the task reads the rest and answers.
        let mut second = TcpStream::connect(addr).await.unwrap();
        second.write_all(&SUBMISSION[..20]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        second.write_all(&SUBMISSION[20..]).await.unwrap();
        let answer = one_answer(&mut second).await;
        assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
        assert!(answer.contains("系统繁忙"), "Chinese by default: {answer}");
        assert_eq!(room.held.load(Ordering::SeqCst), 1);
        drop(second);
        let deadline = Instant::now() + Duration::from_secs(5);
        while room.held.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(room.held.load(Ordering::SeqCst), 0, "its task ends with the client");
        accepting.abort();
    }
}
