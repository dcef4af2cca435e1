//! The network as a node sees it: madsim's TCP plus the two things madsim does not do.
//! - A connect to a clogged or dead node fails in madsim at once with ConnectionRefused; a real
//!   SYN to an unreachable host goes unanswered until the connect timeout. Clients must see
//!   that delay, or their retry loops spin and partitions look cheaper than they are.
//! - madsim delivers each flushed write whole; real TCP splits and merges. Writes here are cut
//!   at random points (seeded) and each piece is sent on its own, so RESP parsers on both
//!   sides must reassemble partial frames.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use redsim::env::real::{TokioListener, TokioNet};
use redsim::env::{Listener, Net, Rng, SeededRng};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NetConfig {
    pub connect_timeout_ms: u64,
    /// Chance that one write is cut into pieces.
    pub split_write_probability: f64,
}

/// The chance of a cut as a fraction of 2^32, so draws stay integers.
fn threshold(p: f64) -> u64 {
    (p.clamp(0.0, 1.0) * (1u64 << 32) as f64) as u64
}

#[derive(Clone)]
pub struct SimNet {
    inner: TokioNet,
    config: NetConfig,
    rng: Arc<Mutex<SeededRng>>,
}

impl SimNet {
    pub fn new(config: NetConfig, rng: SeededRng) -> Self {
        SimNet { inner: TokioNet, config, rng: Arc::new(Mutex::new(rng)) }
    }

    fn conn_rng(&self) -> SeededRng {
        let seed = self.rng.lock().unwrap_or_else(|e| e.into_inner()).next_u64();
        SeededRng::from_seed(seed)
    }

    fn wrap(&self, stream: tokio::net::TcpStream) -> SimConn {
        SimConn { inner: stream, rng: self.conn_rng(), split_threshold: threshold(self.config.split_write_probability) }
    }
}

pub struct SimListener {
    inner: TokioListener,
    net: SimNet,
}

impl Listener for SimListener {
    type Conn = SimConn;
    async fn accept(&self) -> io::Result<(SimConn, SocketAddr)> {
        let (s, a) = self.inner.accept().await?;
        Ok((self.net.wrap(s), a))
    }
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

impl Net for SimNet {
    type Conn = SimConn;
    type Listener = SimListener;
    async fn bind(&self, addr: SocketAddr) -> io::Result<SimListener> {
        let inner = self.inner.bind(addr).await?;
        Ok(SimListener { inner, net: self.clone() })
    }
    async fn connect(&self, addr: SocketAddr) -> io::Result<SimConn> {
        match self.inner.connect(addr).await {
            Ok(s) => Ok(self.wrap(s)),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                let ms = self.config.connect_timeout_ms;
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                Err(io::Error::new(io::ErrorKind::TimedOut, format!("connect to {addr} timed out after {ms}ms")))
            }
            Err(e) => Err(e),
        }
    }
}

/// A TCP stream whose writes leave in seeded pieces.
pub struct SimConn {
    inner: tokio::net::TcpStream,
    rng: SeededRng,
    split_threshold: u64,
}

impl AsyncRead for SimConn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for SimConn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let mut n = buf.len();
        if n > 1 && this.split_threshold > 0 && this.rng.below(1 << 32) < this.split_threshold {
            n = 1 + this.rng.below(n as u64 - 1) as usize;
        }
        let written = match Pin::new(&mut this.inner).poll_write(cx, &buf[..n]) {
            Poll::Ready(Ok(k)) => k,
            other => return other,
        };
        // Each piece leaves as its own message (madsim sends on flush), so the peer can read
        // it alone. Pending: the bytes are buffered and the caller's flush sends them.
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            _ => Poll::Ready(Ok(written)),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
