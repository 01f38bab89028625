//! Deadlines for the phases of an HTTP/1.1 connection, enforced on its socket.
//!
//! - **Head**: from a new connection, or from the first byte of the next request, the
//!   request head must be complete within `head`, however slowly its bytes trickle in.
//! - **Idle**: after a response, the next request must start within `idle`.
//! - **Stall**: a response that the client does not read for `stall` ends the connection.
//!
//! While a request is being handled (after its head) the socket has no read deadline:
//! the body is read by the application, which enforces its own progress deadline, and a
//! slow handler must not be mistaken for a slow client. The end of a head is found by
//! watching for its blank line (CRLF CRLF, or a bare LF LF, as hyper accepts).

use std::io;
use std::pin::Pin;
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading a request head; `seen` tracks the blank line that ends it.
    Head { seen: Blank },
    /// A request is being handled.
    Busy,
    /// Between requests.
    Idle,
}

/// How much of the blank line ending a head has been seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blank {
    Nothing,
    /// A line feed ends the last line read.
    Lf,
    /// A line feed, then a carriage return.
    LfCr,
}

impl Blank {
    /// Feeds bytes; answers the index just past the end of the head, if it is in `bytes`.
    fn feed(&mut self, bytes: &[u8]) -> Option<usize> {
        for (i, b) in bytes.iter().enumerate() {
            *self = match (*self, b) {
                (Blank::Lf | Blank::LfCr, b'\n') => return Some(i + 1),
                (Blank::Lf, b'\r') => Blank::LfCr,
                (_, b'\n') => Blank::Lf,
                _ => Blank::Nothing,
            };
        }
        None
    }
}

pub struct Deadlines {
    inner: TcpStream,
    phases: Phases,
    phase: Phase,
    /// When the current phase's read deadline passes (none while busy).
    read_by: Option<Instant>,
    read_timer: Pin<Box<Sleep>>,
    /// Since when a write has been refused by a full socket buffer.
    write_timer: Option<Pin<Box<Sleep>>>,
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what.to_owned())
}

impl Deadlines {
    pub fn new(inner: TcpStream, phases: Phases) -> Deadlines {
        let by = Instant::now() + phases.head;
        Deadlines {
            inner,
            phases,
            phase: Phase::Head {
                seen: Blank::Nothing,
            },
            read_by: Some(by),
            read_timer: Box::pin(sleep_until(by)),
            write_timer: None,
        }
    }

    /// Follows the phase through the bytes just read.
    fn on_read(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match &mut self.phase {
                Phase::Idle => {
                    self.phase = Phase::Head {
                        seen: Blank::Nothing,
                    };
                    self.read_by = Some(Instant::now() + self.phases.head);
                }
                Phase::Head { seen } => match seen.feed(bytes) {
                    Some(end) => {
                        self.phase = Phase::Busy;
                        self.read_by = None;
                        bytes = &bytes[end..];
                    }
                    None => return,
                },
                // Body bytes, or a pipelined request that hyper will parse later.
                Phase::Busy => return,
            }
        }
    }

    /// A response is going out: the request is done, and the next one must come within
    /// the idle deadline. The timer is armed here, with the writer's waker: hyper may
    /// have polled its read before writing, and would otherwise never look again.
    fn on_write(&mut self, cx: &mut Context<'_>) {
        if self.phase == Phase::Idle {
            return;
        }
        self.phase = Phase::Idle;
        let by = Instant::now() + self.phases.idle;
        self.read_by = Some(by);
        self.read_timer.as_mut().reset(by);
        let _ = self.read_timer.as_mut().poll(cx);
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
                let new = &buf.filled()[before..];
                if !new.is_empty() {
                    this.on_read(new);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let Some(by) = this.read_by else {
                    return Poll::Pending;
                };
                if this.read_timer.deadline() != by {
                    this.read_timer.as_mut().reset(by);
                }
                ready!(this.read_timer.as_mut().poll(cx));
                Poll::Ready(Err(timed_out(match this.phase {
                    Phase::Idle => "the connection was idle too long",
                    _ => "the request head did not arrive in time",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_blank_line_ends_a_head_in_any_split() {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY";
        for split in 0..head.len() {
            let mut b = Blank::Nothing;
            let (a, rest) = head.split_at(split);
            let end = b.feed(a).or_else(|| b.feed(rest).map(|i| i + split));
            assert_eq!(end, Some(head.len() - 4), "split at {split}");
        }
        let mut b = Blank::Nothing;
        assert_eq!(b.feed(b"GET / HTTP/1.1\nHost: a\n\n"), Some(24));
        let mut b = Blank::Nothing;
        assert_eq!(b.feed(b"GET / HTTP/1.1\r\nHost: a\r\n"), None);
        assert_eq!(b.feed(b"X: \r\n y\r\n"), None);
    }
}
