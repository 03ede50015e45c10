//! The seam between the service and the network: two small traits, and
//! their implementations on tokio's real TCP.
//!
//! The server is written against [`Accept`] (a source of connections) and
//! the client against [`Connect`] (a way to open one). Both hand out any
//! tokio `AsyncRead + AsyncWrite` stream, which hyper speaks HTTP/1.1 over.
//! Production uses [`TcpConnect`] and tokio's `TcpListener`; the simulation
//! ([`crate::sim`]) implements the same traits on turmoil's `net` types. The
//! service code never learns which.

use std::future::Future;
use std::io;

use tokio::io::{AsyncRead, AsyncWrite};

/// A stream HTTP can run over: what both traits hand out.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

/// Opens a connection to the orders service (one per attempt).
pub trait Connect: Send + Sync + 'static {
    /// The connection's stream.
    type Stream: Stream;

    /// Opens a new connection.
    fn connect(&self) -> impl Future<Output = io::Result<Self::Stream>> + Send;
}

/// A listener the server accepts connections from.
pub trait Accept: Send + 'static {
    /// An accepted connection's stream.
    type Stream: Stream;

    /// Waits for the next connection.
    fn accept(&mut self) -> impl Future<Output = io::Result<Self::Stream>> + Send;
}

/// tokio's TCP listener: production's [`Accept`].
impl Accept for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;

    async fn accept(&mut self) -> io::Result<tokio::net::TcpStream> {
        let (stream, _) = tokio::net::TcpListener::accept(self).await?;
        // Small request and response bodies: do not wait to fill a segment.
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

/// Connects over tokio's TCP to an address (`"orders.internal:8080"`,
/// `"127.0.0.1:8080"`): production's [`Connect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpConnect {
    addr: String,
}

impl TcpConnect {
    /// Connects to `addr` (`host:port`; a name is resolved on each connect).
    pub fn new(addr: impl Into<String>) -> Self {
        TcpConnect { addr: addr.into() }
    }
}

impl Connect for TcpConnect {
    type Stream = tokio::net::TcpStream;

    async fn connect(&self) -> io::Result<tokio::net::TcpStream> {
        let stream = tokio::net::TcpStream::connect(self.addr.as_str()).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}
