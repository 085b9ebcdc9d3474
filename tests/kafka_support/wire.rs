//! Requests and responses over a plain socket, encoded by the `kafka-protocol` crate's client
//! side, for tests that speak the protocol themselves.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use std::io::{Read, Write};
use std::net::TcpStream;

/// `body` with its i32 size in front.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// Header (at the version the crate says) and body for `key` v`version`.
pub fn request<T: Encodable>(key: ApiKey, version: i16, correlation: i32, body: &T) -> Vec<u8> {
    let mut buf = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation)
        .with_client_id(Some(StrBytes::from_static_str("wire-test")))
        .encode(&mut buf, key.request_header_version(version))
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    frame(&buf)
}

/// Reads one response frame; `None` if the broker closed the connection.
pub fn read_frame(s: &mut TcpStream) -> Option<Bytes> {
    let mut size = [0u8; 4];
    s.read_exact(&mut size).ok()?;
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut body).ok()?;
    Some(Bytes::from(body))
}

/// Sends `req` and decodes the answer (header at the crate's version for `key`).
pub fn call<Q: Encodable, R: Decodable>(
    s: &mut TcpStream,
    key: ApiKey,
    version: i16,
    corr: i32,
    req: &Q,
) -> R {
    s.write_all(&request(key, version, corr, req)).unwrap();
    let mut r = read_frame(s).expect("an answer");
    let header = ResponseHeader::decode(&mut r, key.response_header_version(version)).unwrap();
    assert_eq!(header.correlation_id, corr);
    R::decode(&mut r, version).unwrap()
}
