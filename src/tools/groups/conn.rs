//! One blocking connection to a Kafka broker: requests encoded and responses decoded by the
//! `kafka-protocol` crate's client side. Every failure is an `Err(String)`, never a panic.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Largest response frame accepted (a bad peer cannot make us allocate more).
const MAX_FRAME: usize = 256 << 20;

/// A connection with its next correlation id.
pub struct Conn {
    s: TcpStream,
    corr: i32,
}

impl Conn {
    /// Connects to `addr` (HOST:PORT) with a 30 s read/write timeout.
    pub fn open(addr: &str) -> Result<Conn, String> {
        let s = TcpStream::connect(addr).map_err(|e| format!("connect to {addr}: {e}"))?;
        let limit = Some(Duration::from_secs(30));
        s.set_read_timeout(limit)
            .and_then(|_| s.set_write_timeout(limit))
            .and_then(|_| s.set_nodelay(true))
            .map_err(|e| format!("socket options: {e}"))?;
        Ok(Conn { s, corr: 0 })
    }

    /// Sends `req` as `key` v`version` and decodes the answer.
    pub fn call<Q: Encodable, R: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        req: &Q,
    ) -> Result<R, String> {
        self.corr = self.corr.wrapping_add(1);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[0; 4]);
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.corr)
            .with_client_id(Some(StrBytes::from_static_str("kgroups-groups")))
            .encode(&mut buf, key.request_header_version(version))
            .map_err(|e| format!("{key:?} header: {e}"))?;
        req.encode(&mut buf, version)
            .map_err(|e| format!("{key:?} request: {e}"))?;
        let size = i32::try_from(buf.len() - 4).map_err(|_| "request too large".to_string())?;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        self.s
            .write_all(&buf)
            .map_err(|e| format!("{key:?}: send: {e}"))?;
        let mut size = [0u8; 4];
        self.s
            .read_exact(&mut size)
            .map_err(|e| format!("{key:?}: no answer: {e}"))?;
        let size = usize::try_from(i32::from_be_bytes(size))
            .ok()
            .filter(|&n| n <= MAX_FRAME)
            .ok_or_else(|| format!("{key:?}: bad response size"))?;
        let mut body = vec![0u8; size];
        self.s
            .read_exact(&mut body)
            .map_err(|e| format!("{key:?}: short answer: {e}"))?;
        let mut b = Bytes::from(body);
        let header = ResponseHeader::decode(&mut b, key.response_header_version(version))
            .map_err(|e| format!("{key:?}: response header: {e}"))?;
        if header.correlation_id != self.corr {
            return Err(format!("{key:?}: correlation id mismatch"));
        }
        R::decode(&mut b, version).map_err(|e| format!("{key:?}: response: {e}"))
    }
}

/// Kafka's name for error `code` (`UNKNOWN_TOPIC_OR_PARTITION`), or `ERROR <code>`.
pub fn error_name(code: i16) -> String {
    use kafka_protocol::error::ResponseError;
    match ResponseError::try_from_code(code) {
        Some(ResponseError::Unknown(_)) | None => format!("ERROR {code}"),
        Some(e) => {
            let camel = format!("{e:?}");
            let mut out = String::new();
            for (i, c) in camel.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    out.push('_');
                }
                out.push(c.to_ascii_uppercase());
            }
            out
        }
    }
}

/// `Ok(())` for 0, else the broker's error with `what` in front.
pub fn check(code: i16, what: &str) -> Result<(), String> {
    if code == 0 {
        Ok(())
    } else {
        Err(format!("{what}: {}", error_name(code)))
    }
}
