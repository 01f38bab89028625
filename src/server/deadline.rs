//! Deadlines for the phases of an HTTP/1.1 connection, enforced on its socket.
//!
//! - **Head**: from a new connection, or from the first byte after a response, the
//!   request head must be parsed within `head`, however slowly its bytes trickle in (blank
//!   lines included: hyper skips them before a request line).
//! - **Idle**: after a response starts going out, the next request must start within
//!   `idle`; a long download pushes this deadline on as long as it makes progress.
//! - **Stall**: a response that the client does not read for `stall` ends the connection.
//!
//! While a request is being handled there is no read deadline: the body is read by the
//! application, which enforces its own progress deadline, and a slow handler must not be
//! mistaken for a slow client. The phase is not guessed from the bytes: the service tells
//! the socket, through `Shared`, when hyper hands it a request (busy) and when its answer
//! is ready (one more response).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep, sleep_until};

/// The deadlines of each phase.
#[derive(Debug, Clone, Copy)]
pub struct Phases {
    pub head: Duration,
    pub idle: Duration,
    pub stall: Duration,
}

/// What the service tells the socket about the request it handles.
#[derive(Debug, Default)]
pub struct Shared {
    busy: AtomicBool,
    responses: AtomicU64,
}

impl Shared {
    /// hyper parsed a head and called the service.
    pub fn request_started(&self) {
        self.busy.store(true, Ordering::Release);
    }

    /// The service answered; the response is about to be written.
    pub fn response_ready(&self) {
        self.responses.fetch_add(1, Ordering::AcqRel);
        self.busy.store(false, Ordering::Release);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request head to be complete.
    Head,
    /// Between requests.
    Idle,
}

/// How far the idle deadline may lag behind "now + idle" before a write pushes it on.
const IDLE_SLACK: Duration = Duration::from_secs(1);

pub struct Deadlines {
    inner: TcpStream,
    phases: Phases,
    shared: Arc<Shared>,
    phase: Phase,
    /// Responses seen going out.
    seen: u64,
    /// When the current phase's read deadline passes.
    read_by: Instant,
    read_timer: Pin<Box<Sleep>>,
    /// Armed while a write is refused by a full socket buffer.
    write_timer: Option<Pin<Box<Sleep>>>,
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what.to_owned())
}

impl Deadlines {
    pub fn new(inner: TcpStream, phases: Phases, shared: Arc<Shared>) -> Deadlines {
        let by = Instant::now() + phases.head;
        Deadlines {
            inner,
            phases,
            shared,
            phase: Phase::Head,
            seen: 0,
            read_by: by,
            read_timer: Box::pin(sleep_until(by)),
            write_timer: None,
        }
    }

    fn busy(&self) -> bool {
        self.shared.busy.load(Ordering::Acquire)
    }

    /// Sets the read deadline and arms the timer with this task's waker: hyper may have
    /// polled its read before, and would otherwise never look again.
    fn arm(&mut self, by: Instant, cx: &mut Context<'_>) {
        self.read_by = by;
        self.read_timer.as_mut().reset(by);
        let _ = self.read_timer.as_mut().poll(cx);
    }

    /// A write went out: a new response starts the idle phase; a long one keeps pushing
    /// the idle deadline on.
    fn on_write(&mut self, cx: &mut Context<'_>) {
        let responses = self.shared.responses.load(Ordering::Acquire);
        let now = Instant::now();
        if responses != self.seen {
            self.seen = responses;
            self.phase = Phase::Idle;
            self.arm(now + self.phases.idle, cx);
        } else if self.phase == Phase::Idle && now + self.phases.idle > self.read_by + IDLE_SLACK {
            self.arm(now + self.phases.idle, cx);
        }
    }

    fn poll_write_with<T>(
        &mut self,
        cx: &mut Context<'_>,
        write: impl FnOnce(Pin<&mut TcpStream>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match write(Pin::new(&mut self.inner), cx) {
            Poll::Ready(r) => {
                self.write_timer = None;
                if r.is_ok() {
                    self.on_write(cx);
                }
                Poll::Ready(r)
            }
            Poll::Pending => {
                let stall = self.phases.stall;
                let timer = self
                    .write_timer
                    .get_or_insert_with(|| Box::pin(sleep_until(Instant::now() + stall)));
                ready!(timer.as_mut().poll(cx));
                Poll::Ready(Err(timed_out("the client stopped reading the response")))
            }
        }
    }
}

impl AsyncRead for Deadlines {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before && this.phase == Phase::Idle && !this.busy() {
                    // The first byte of the next request: its head has `head` to arrive.
                    this.phase = Phase::Head;
                    this.read_by = Instant::now() + this.phases.head;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if this.busy() {
                    return Poll::Pending;
                }
                if this.shared.responses.load(Ordering::Acquire) != this.seen {
                    // An answer is ready but not yet written: idle from now.
                    this.on_write(cx);
                }
                if this.read_timer.deadline() != this.read_by {
                    let by = this.read_by;
                    this.read_timer.as_mut().reset(by);
                }
                ready!(this.read_timer.as_mut().poll(cx));
                Poll::Ready(Err(timed_out(match this.phase {
                    Phase::Idle => "the connection was idle too long",
                    Phase::Head => "the request head did not arrive in time",
                })))
            }
        }
    }
}

impl AsyncWrite for Deadlines {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_write_with(cx, |s, cx| s.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_write_with(cx, |s, cx| s.poll_write_vectored(cx, bufs))
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
