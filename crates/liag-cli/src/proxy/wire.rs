//! What `liag proxy` says over its aggregated connection, before and inside the multiplexer.
//!
//! - **Greeting**, once per connection, before the multiplexer starts: the client sends
//!   [`MAGIC`], the token's length (one byte) and the token; the server answers one
//!   [`Greeting`] byte and, unless it is [`Greeting::Welcome`], closes the connection.
//! - **Stream request**, at the start of every multiplexed stream the client opens: a SOCKS5
//!   command byte and a SOCKS5 address (RFC 1928, section 5: type, address, port). The server
//!   answers one SOCKS5 reply byte (RFC 1928, section 6), and on success the stream carries
//!   the destination's bytes (CONNECT) or [datagrams](write_datagram) (UDP ASSOCIATE).

use fast_socks5::util::target_addr::{TargetAddr, read_address};
use std::io;
use subtle::ConstantTimeEq;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The first bytes of a proxy connection: "liag proxy", version 1.
pub(crate) const MAGIC: [u8; 8] = *b"liagprx\x01";
/// The longest token (its length travels in one byte).
pub(crate) const TOKEN_MAX: usize = 255;

/// The server's answer to a greeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Greeting {
    /// Token accepted: the multiplexer starts.
    Welcome = 0,
    /// The token is wrong (or missing where one is asked for).
    WrongToken = 1,
    /// The greeting was not that of this protocol version.
    Unknown = 2,
}

/// The stream request of a CONNECT (SOCKS5 command 1).
pub(crate) const CMD_CONNECT: u8 = 1;
/// The stream request of a UDP ASSOCIATE (SOCKS5 command 3).
pub(crate) const CMD_UDP: u8 = 3;

/// Sends the greeting with `token` and reads the server's answer.
pub(crate) async fn greet<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    token: &[u8],
) -> io::Result<Greeting> {
    let len = u8::try_from(token.len()).map_err(|_| invalid("the token is over 255 bytes"))?;
    let mut hello = Vec::with_capacity(MAGIC.len() + 1 + token.len());
    hello.extend_from_slice(&MAGIC);
    hello.push(len);
    hello.extend_from_slice(token);
    io.write_all(&hello).await?;
    io.flush().await?;
    match io.read_u8().await? {
        0 => Ok(Greeting::Welcome),
        1 => Ok(Greeting::WrongToken),
        _ => Ok(Greeting::Unknown),
    }
}

/// Reads a greeting and answers it: whether the token is `token` (compared in constant time;
/// an empty `token` asks for none).
pub(crate) async fn welcome<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    token: &[u8],
) -> io::Result<Greeting> {
    let mut magic = [0u8; MAGIC.len()];
    io.read_exact(&mut magic).await?;
    let answer = if magic != MAGIC {
        Greeting::Unknown
    } else {
        let mut given = vec![0u8; usize::from(io.read_u8().await?)];
        io.read_exact(&mut given).await?;
        if bool::from(padded(&given).ct_eq(&padded(token))) {
            Greeting::Welcome
        } else {
            Greeting::WrongToken
        }
    };
    io.write_u8(answer as u8).await?;
    io.flush().await?;
    Ok(answer)
}

/// A token in a buffer of fixed size, its length first: compared whole, two tokens take the
/// same time whatever their lengths.
fn padded(token: &[u8]) -> [u8; TOKEN_MAX + 1] {
    let mut out = [0u8; TOKEN_MAX + 1];
    let len = token.len().min(TOKEN_MAX);
    out[0] = len as u8;
    out[1..=len].copy_from_slice(&token[..len]);
    out
}

/// Writes a stream request: `cmd` for `target`.
pub(crate) async fn write_request<W: AsyncWrite + Unpin>(
    io: &mut W,
    cmd: u8,
    target: &TargetAddr,
) -> io::Result<()> {
    let mut request = vec![cmd];
    request.extend(target.to_be_bytes().map_err(|e| invalid(e.to_string()))?);
    io.write_all(&request).await?;
    io.flush().await
}

/// Reads a stream request: the command and the address.
pub(crate) async fn read_request<R: AsyncRead + Unpin>(io: &mut R) -> io::Result<(u8, TargetAddr)> {
    let cmd = io.read_u8().await?;
    let target = read_target(io).await?;
    Ok((cmd, target))
}

async fn read_target<R: AsyncRead + Unpin>(io: &mut R) -> io::Result<TargetAddr> {
    let atyp = io.read_u8().await?;
    read_address(io, atyp)
        .await
        .map_err(|e| invalid(format!("a bad address: {e}")))
}

/// The most bytes of one datagram's address and data on a stream.
pub(crate) const DATAGRAM_MAX: usize = u16::MAX as usize;

/// Writes one datagram for or from `addr` on a UDP ASSOCIATE's stream: its length (two
/// bytes, big-endian), then the SOCKS5 address and the data.
pub(crate) async fn write_datagram<W: AsyncWrite + Unpin>(
    io: &mut W,
    addr: &TargetAddr,
    data: &[u8],
) -> io::Result<()> {
    let addr = addr.to_be_bytes().map_err(|e| invalid(e.to_string()))?;
    let len = u16::try_from(addr.len() + data.len())
        .map_err(|_| invalid("a datagram over 65,535 bytes"))?;
    let mut frame = Vec::with_capacity(2 + usize::from(len));
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&addr);
    frame.extend_from_slice(data);
    io.write_all(&frame).await?;
    io.flush().await
}

/// Reads one datagram written by [`write_datagram`]: its address and data. `None` at the
/// stream's end.
pub(crate) async fn read_datagram<R: AsyncRead + Unpin>(
    io: &mut R,
) -> io::Result<Option<(TargetAddr, Vec<u8>)>> {
    let len = match io.read_u16().await {
        Ok(len) => usize::from(len),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut frame = vec![0u8; len];
    io.read_exact(&mut frame).await?;
    let mut rest = &frame[..];
    let addr = read_target(&mut rest).await?;
    Ok(Some((addr, rest.to_vec())))
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    #[tokio::test]
    async fn a_greeting_is_welcome_only_with_the_token() {
        for (given, expected, answer) in [
            (&b"secret"[..], &b"secret"[..], Greeting::Welcome),
            (b"secreT", b"secret", Greeting::WrongToken),
            (b"secret\0", b"secret", Greeting::WrongToken),
            (b"", b"secret", Greeting::WrongToken),
            (b"", b"", Greeting::Welcome),
        ] {
            let (mut client, mut server) = tokio::io::duplex(1024);
            let (heard, told) =
                tokio::join!(greet(&mut client, given), welcome(&mut server, expected));
            assert_eq!((heard.unwrap(), told.unwrap()), (answer, answer));
        }
    }

    #[tokio::test]
    async fn a_stranger_is_told_it_is_unknown() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        assert_eq!(welcome(&mut server, b"").await.unwrap(), Greeting::Unknown);
        assert_eq!(client.read_u8().await.unwrap(), Greeting::Unknown as u8);
    }

    #[tokio::test]
    async fn requests_and_datagrams_carry_every_kind_of_address() {
        let targets = [
            TargetAddr::Ip("192.0.2.7:80".parse::<SocketAddr>().unwrap()),
            TargetAddr::Ip("[2001:db8::1]:443".parse::<SocketAddr>().unwrap()),
            TargetAddr::Domain("example.org".into(), 8080),
        ];
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        for target in &targets {
            write_request(&mut a, CMD_CONNECT, target).await.unwrap();
            assert_eq!(
                read_request(&mut b).await.unwrap(),
                (CMD_CONNECT, target.clone())
            );
            write_datagram(&mut a, target, b"ping").await.unwrap();
            let (addr, data) = read_datagram(&mut b).await.unwrap().unwrap();
            assert_eq!((addr, &data[..]), (target.clone(), &b"ping"[..]));
        }
        drop(a);
        assert!(read_datagram(&mut b).await.unwrap().is_none(), "the end");
    }

    #[tokio::test]
    async fn a_bad_address_type_is_an_error() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&[CMD_CONNECT, 9, 1, 2, 3]).await.unwrap();
        assert!(read_request(&mut b).await.is_err());
    }
}
