//! A served connection refused for overload is read again only after a
//! pause (issue #6).
//!
//! When the intake is full (or the load shedder or a timeout answers), a
//! request on a served connection gets 503 with `Retry-After` at once. A
//! client that honours `Retry-After` waits a second; one that retries at
//! once sent its next request straight back, to be refused again, and a
//! storm of such clients spent the server's time on refusals instead of
//! reports. Connections held beyond the cap already wait `HELD_PAUSE`
//! before their next request is read (`connection_cap`); this gives served
//! connections the same pace: after a 503 is written, the connection's
//! next read waits `HELD_PAUSE`. The answer itself is never delayed, and a
//! client that waits `Retry-After` never meets the pause.
//!
//! The 503 is seen in the bytes written: hyper writes each HTTP/1 response
//! head at the start of a write, status line first. (Over HTTP/2 the
//! frames are binary and a refusal is not paced; the connection's streams
//! are bounded by the concurrency limit instead.) A response head split
//! over two writes, or written behind the end of an earlier body, is not
//! seen: that connection is then simply not paced, as before.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::connection_cap::HELD_PAUSE;

/// A connection whose next read waits `HELD_PAUSE` after a 503 is written
/// on it (see the module).
#[derive(Debug)]
pub struct PausedAfterRefusal<S> {
    inner: S,
    /// The pause's timer, made at the connection's first refusal and reset
    /// at each later one: most connections never need it.
    timer: Option<Pin<Box<Sleep>>>,
    /// Whether reads wait for `timer`.
    paused: bool,
}

impl<S> PausedAfterRefusal<S> {
    pub fn new(inner: S) -> Self {
        Self { inner, timer: None, paused: false }
    }

    fn pause(&mut self) {
        let until = Instant::now() + HELD_PAUSE;
        match &mut self.timer {
            Some(timer) => timer.as_mut().reset(until),
            None => self.timer = Some(Box::pin(tokio::time::sleep_until(until))),
        }
        self.paused = true;
    }
}

/// Whether `written` starts with an HTTP/1 status line of 503.
fn is_refusal_head(written: &[u8]) -> bool {
    written.len() >= 13 && written.starts_with(b"HTTP/1.") && &written[8..13] == b" 503 "
}

impl<S: AsyncRead + Unpin> AsyncRead for PausedAfterRefusal<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.paused {
            if let Some(timer) = &mut this.timer {
                ready!(timer.as_mut().poll(cx));
            }
            this.paused = false;
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for PausedAfterRefusal<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) && is_refusal_head(buf) {
            this.pause();
        }
        written
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0)
            && bufs.iter().find(|slice| !slice.is_empty()).is_some_and(|head| is_refusal_head(head))
        {
            this.pause();
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn only_a_503_status_line_is_a_refusal() {
        assert!(is_refusal_head(b"HTTP/1.1 503 Service Unavailable\r\n"));
        assert!(is_refusal_head(b"HTTP/1.0 503 Service Unavailable\r\n"));
        assert!(!is_refusal_head(b"HTTP/1.1 200 OK\r\n"));
        assert!(!is_refusal_head(b"HTTP/1.1 5030"));
        assert!(!is_refusal_head(b"{\"status\": \"HTTP/1.1 503 \"}"));
        assert!(!is_refusal_head(b"HTTP/1.1 503"));
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_503_the_next_read_waits_the_pause_and_after_a_200_it_does_not() {
        let (server, mut client) = tokio::io::duplex(1024);
        let mut server = PausedAfterRefusal::new(server);
        let mut byte = [0u8; 1];

        server.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
        client.write_all(b"a").await.unwrap();
        let started = Instant::now();
        server.read_exact(&mut byte).await.unwrap();
        assert_eq!(started.elapsed(), std::time::Duration::ZERO, "a 200 pauses nothing");

        server.write_all(b"HTTP/1.1 503 Service Unavailable\r\n\r\n").await.unwrap();
        client.write_all(b"b").await.unwrap();
        let started = Instant::now();
        server.read_exact(&mut byte).await.unwrap();
        assert_eq!(&byte, b"b");
        assert!(started.elapsed() >= HELD_PAUSE, "read after {:?}", started.elapsed());

        // The pause is over: the next read is at once.
        client.write_all(b"c").await.unwrap();
        let started = Instant::now();
        server.read_exact(&mut byte).await.unwrap();
        assert_eq!(started.elapsed(), std::time::Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_written_in_slices_pauses_too() {
        let (server, mut client) = tokio::io::duplex(1024);
        let mut server = PausedAfterRefusal::new(server);
        let slices = [
            io::IoSlice::new(b""),
            io::IoSlice::new(b"HTTP/1.1 503 Service Unavailable\r\n\r\n"),
            io::IoSlice::new(b"{}"),
        ];
        std::future::poll_fn(|cx| Pin::new(&mut server).poll_write_vectored(cx, &slices))
            .await
            .unwrap();
        client.write_all(b"x").await.unwrap();
        let started = Instant::now();
        let mut byte = [0u8; 1];
        server.read_exact(&mut byte).await.unwrap();
        assert!(started.elapsed() >= HELD_PAUSE);
    }
}
