//! Just enough of an MQTT 3.1.1 client to probe a broker one step at a time.
//!
//! rumqttc's `EventLoop` connects, handshakes and sends CONNECT in one
//! `poll()`, hides the TLS stream, and reconnects at once when polled after an
//! error. A probe needs the opposite: each step timed on its own, the TLS
//! session in hand (protocol, cipher, peer certificate), and a stop at the
//! first error. So `check` dials and handshakes itself, and this module speaks
//! MQTT over the resulting stream with rumqttc's own packet codec
//! (`rumqttc::mqttbytes::v4`): no hand-made packet encoding, no event loop.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use rumqttc::{Packet, PubAck, PubComp, PubRec, PubRel, QoS};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// The largest packet accepted from the broker. Probe messages are small; this
/// only keeps a hostile peer from making us allocate without bound.
const MAX_INCOMING: usize = 16 * 1024 * 1024;

/// The probe's TCP stream, with two changes that make failures and timings
/// truthful.
///
/// **It acknowledges what it receives at once.** Mosquitto leaves Nagle's
/// algorithm on (`set_tcp_nodelay false`), so it holds a small packet
/// (CONNACK after the TLS 1.3 session tickets, a retained PUBLISH after
/// SUBACK) until the previous one is acknowledged, and Linux delays that ACK
/// by up to 40 ms. Asking for a quick ACK around every read removes those
/// waits: they were most of a probe's wall time.
///
/// **A write to a peer that has hung up reports success.** A broker that
/// rejects our certificate sends an alert and closes while we may still be
/// writing our handshake flight; the write then fails (EPIPE, ECONNRESET)
/// before rustls has read the alert that says why. Swallowing that write
/// error lets the next read deliver the alert; if there was none, the read
/// fails with the hang-up itself.
#[derive(Debug)]
pub(crate) struct Transport {
    tcp: TcpStream,
    hung_up: bool,
}

impl Transport {
    pub(crate) fn new(tcp: TcpStream) -> Self {
        let _ = tcp.set_nodelay(true);
        Transport {
            tcp,
            hung_up: false,
        }
    }

    fn quick_ack(&self) {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let _ = socket2::SockRef::from(&self.tcp).set_tcp_quickack(true);
    }
}

fn is_hang_up(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
    )
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.quick_ack();
        let result = Pin::new(&mut this.tcp).poll_read(cx, buf);
        if result.is_ready() {
            // Data arrived: ACK it now rather than in 40 ms.
            this.quick_ack();
        }
        result
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.hung_up {
            return Poll::Ready(Ok(buf.len()));
        }
        match Pin::new(&mut this.tcp).poll_write(cx, buf) {
            Poll::Ready(Err(e)) if is_hang_up(&e) => {
                this.hung_up = true;
                Poll::Ready(Ok(buf.len()))
            }
            other => other,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.hung_up {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.tcp).poll_shutdown(cx)
    }
}

/// What can go wrong on an established stream.
#[derive(Debug)]
pub(crate) enum SessionError {
    /// The transport failed (this includes TLS alerts, as an `io::Error`
    /// wrapping a `rustls::Error`).
    Io(std::io::Error),
    /// The peer closed the connection cleanly between packets.
    Closed,
    /// The peer sent bytes that are not MQTT 3.1.1.
    Protocol(String),
}

impl From<std::io::Error> for SessionError {
    fn from(e: std::io::Error) -> Self {
        SessionError::Io(e)
    }
}

/// An MQTT conversation over any byte stream.
#[derive(Debug)]
pub(crate) struct Session<S> {
    stream: S,
    incoming: BytesMut,
    outgoing: BytesMut,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub(crate) fn new(stream: S) -> Self {
        Session {
            stream,
            incoming: BytesMut::with_capacity(4096),
            outgoing: BytesMut::with_capacity(512),
        }
    }

    /// Encodes and sends one packet, flushed.
    pub(crate) async fn send(&mut self, packet: Packet) -> Result<(), SessionError> {
        self.outgoing.clear();
        packet
            .write(&mut self.outgoing, usize::MAX)
            .map_err(|e| SessionError::Protocol(format!("cannot encode {packet:?}: {e}")))?;
        self.stream.write_all(&self.outgoing).await?;
        self.stream.flush().await?;
        Ok(())
    }

    /// The next packet from the broker. Incoming QoS 1/2 publishes and the
    /// QoS 2 release handshake are acknowledged here, so callers only see
    /// the packets they care about.
    pub(crate) async fn next(&mut self) -> Result<Packet, SessionError> {
        let packet = self.read_packet().await?;
        match &packet {
            Packet::Publish(p) if p.qos == QoS::AtLeastOnce => {
                self.send(Packet::PubAck(PubAck::new(p.pkid))).await?;
            }
            Packet::Publish(p) if p.qos == QoS::ExactlyOnce => {
                self.send(Packet::PubRec(PubRec::new(p.pkid))).await?;
            }
            Packet::PubRel(r) => self.send(Packet::PubComp(PubComp::new(r.pkid))).await?,
            Packet::PubRec(r) => self.send(Packet::PubRel(PubRel::new(r.pkid))).await?,
            _ => {}
        }
        Ok(packet)
    }

    async fn read_packet(&mut self) -> Result<Packet, SessionError> {
        loop {
            match Packet::read(&mut self.incoming, MAX_INCOMING) {
                Ok(packet) => return Ok(packet),
                Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => {}
                Err(e) => return Err(SessionError::Protocol(e.to_string())),
            }
            if self.stream.read_buf(&mut self.incoming).await? == 0 {
                return Err(if self.incoming.is_empty() {
                    SessionError::Closed
                } else {
                    SessionError::Protocol("the connection closed in the middle of a packet".into())
                });
            }
        }
    }

    /// DISCONNECT, then close the transport (for TLS, with close_notify).
    /// Errors are ignored: the probe already has its answer.
    pub(crate) async fn close(mut self) {
        let _ = self.send(Packet::Disconnect).await;
        let _ = self.stream.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttc::{ConnAck, ConnectReturnCode, Publish, Subscribe};

    /// Packets written by one session are read back by another, and QoS 1
    /// publishes are acknowledged automatically.
    #[tokio::test]
    async fn round_trips_packets_and_acknowledges_qos1() {
        let (a, b) = tokio::io::duplex(1024);
        let mut client = Session::new(a);
        let mut broker = Session::new(b);
        broker
            .send(Packet::ConnAck(ConnAck::new(
                ConnectReturnCode::Success,
                false,
            )))
            .await
            .unwrap();
        let mut publish = Publish::new("wott/temperature", QoS::AtLeastOnce, "21.5");
        publish.pkid = 7;
        broker.send(Packet::Publish(publish)).await.unwrap();
        assert!(matches!(client.next().await.unwrap(), Packet::ConnAck(_)));
        match client.next().await.unwrap() {
            Packet::Publish(p) => assert_eq!(&p.payload[..], b"21.5"),
            other => panic!("{other:?}"),
        }
        assert_eq!(broker.next().await.unwrap(), Packet::PubAck(PubAck::new(7)));
        let mut subscribe = Subscribe::new("wott/#", QoS::AtMostOnce);
        subscribe.pkid = 1;
        client
            .send(Packet::Subscribe(subscribe.clone()))
            .await
            .unwrap();
        assert_eq!(broker.next().await.unwrap(), Packet::Subscribe(subscribe));
        client.close().await;
        assert!(matches!(broker.next().await.unwrap(), Packet::Disconnect));
        assert!(matches!(broker.next().await, Err(SessionError::Closed)));
    }

    #[tokio::test]
    async fn garbage_is_a_protocol_error() {
        let (mut a, b) = tokio::io::duplex(64);
        let mut client = Session::new(b);
        // Packet type 0 is reserved.
        a.write_all(b"\x00\x00").await.unwrap();
        assert!(matches!(
            client.next().await,
            Err(SessionError::Protocol(_))
        ));
    }
}
