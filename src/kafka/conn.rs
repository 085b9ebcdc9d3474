//! One connection: frame → header → `RequestKind` → handler → reply, strictly one request at a
//! time and in order (Kafka's protocol guide: the server answers a connection's requests in the
//! order they were sent).
//!
//! A frame is a big-endian i32 size and that many bytes: the request header (key, version,
//! correlation id, client id; v2 adds tagged fields) and the body. Responses are the size, the
//! response header (`ApiKey::response_header_version`: v0 for ApiVersions, KIP-511) and the body.
//!
//! Bad input closes only this connection, after a log line: a frame over
//! `socket.request.max.bytes` or with a negative size, an unknown API key, an API this broker
//! does not serve, a version the crate cannot decode, or bytes that do not decode. A version the
//! crate can decode but [`super::versions`] does not accept is answered with
//! UNSUPPORTED_VERSION (35) in its response's error fields. An ApiVersions request above our
//! range gets KIP-511's fallback: error 35 and a v0 body listing our ranges.
//!
//! Reading is batched: every complete frame already read is served before reading again, and the
//! answers are written together, in vectored writes ([`super::frames`]: a Fetch answer's
//! records are written from the stored batches), except before a request that may wait (Fetch,
//! JoinGroup, SyncGroup), which first flushes the answers before it.

use super::context::Context;
use super::frames::{Frames, Splices};
use super::handlers::{self, Conn};
use super::versions;
use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::decode_request_header_from_buffer;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Why a connection was closed on the broker's side.
#[derive(Debug)]
pub enum Close {
    /// The frame size is negative or over `socket.request.max.bytes`.
    FrameSize(i64),
    /// The frame is too short for a request header.
    ShortFrame(usize),
    /// The API key is not one Kafka defines.
    UnknownApiKey(i16),
    /// A Kafka API this broker does not serve.
    Unserved(ApiKey, i16),
    /// The header or body does not decode (the crate's message, or a decoder panic).
    Decode(ApiKey, i16, String),
    /// The response failed to encode (a bug: logged as an error).
    Encode(ApiKey, i16, String),
    /// The socket failed.
    Io(std::io::Error),
}

impl std::fmt::Display for Close {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Close::FrameSize(n) => write!(f, "frame size {n} outside 0..=socket.request.max.bytes"),
            Close::ShortFrame(n) => {
                write!(f, "frame of {n} bytes is shorter than a request header")
            }
            Close::UnknownApiKey(k) => write!(f, "unknown api key {k}"),
            Close::Unserved(k, v) => write!(f, "{k:?} v{v} is not served"),
            Close::Decode(k, v, e) => write!(f, "{k:?} v{v} does not decode: {e}"),
            Close::Encode(k, v, e) => write!(f, "{k:?} v{v} response does not encode: {e}"),
            Close::Io(e) => write!(f, "i/o: {e}"),
        }
    }
}

/// Serves one client until it disconnects or sends something that closes the connection.
pub async fn serve<S>(ctx: Arc<Context>, stream: S, peer: SocketAddr)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut conn = Conn {
        peer,
        client_host: format!("/{}", peer.ip()),
    };
    let mut input = BytesMut::with_capacity(64 * 1024);
    let mut output = Frames::default();
    let max = ctx.config.max_request_bytes;
    let prefault = ctx.config.prefault_frames;
    let result: Result<(), Close> = async {
        loop {
            while let Some(frame) = next_frame(&mut input, max, prefault)? {
                if may_wait(&frame) && !output.is_empty() {
                    let mut answers = output.take();
                    wr.write_all_buf(&mut answers).await.map_err(Close::Io)?;
                }
                serve_frame(&ctx, &mut conn, frame, &mut output).await?;
            }
            if !output.is_empty() {
                let mut answers = output.take();
                wr.write_all_buf(&mut answers).await.map_err(Close::Io)?;
            }
            if input.capacity() - input.len() < 4096 {
                input.reserve(64 * 1024);
            }
            if rd.read_buf(&mut input).await.map_err(Close::Io)? == 0 {
                return Ok(());
            }
        }
    }
    .await;
    match result {
        Ok(()) => tracing::debug!(%peer, "connection closed by the client"),
        Err(Close::Io(e)) => tracing::debug!(%peer, "connection closed: {e}"),
        Err(e @ Close::Encode(..)) => tracing::error!(%peer, "closing the connection: {e}"),
        Err(e) => tracing::warn!(%peer, "closing the connection: {e}"),
    }
    let _ = wr.shutdown().await;
}

/// A frame at least this large (a Produce request of big batches) gets its buffer's pages
/// populated at once ([`super::alloc::prefault`]) rather than faulted in page by page as it
/// arrives.
const PREFAULT_FRAME: usize = 256 << 10;

/// The next complete frame (without its size prefix), if `input` holds one; reserves room for
/// a frame still arriving (and, with `prefault`, populates it if it is large).
fn next_frame(input: &mut BytesMut, max: usize, prefault: bool) -> Result<Option<Bytes>, Close> {
    if input.len() < 4 {
        return Ok(None);
    }
    let size = i32::from_be_bytes([input[0], input[1], input[2], input[3]]);
    if size < 0 || size as usize > max {
        return Err(Close::FrameSize(i64::from(size)));
    }
    let size = size as usize;
    if input.len() < 4 + size {
        let want = 4 + size - input.len();
        if input.capacity() - input.len() < want {
            input.reserve(want);
            if prefault && size >= PREFAULT_FRAME {
                super::alloc::prefault(&mut input.spare_capacity_mut()[..want]);
            }
        }
        return Ok(None);
    }
    input.advance(4);
    Ok(Some(input.split_to(size).freeze()))
}

fn may_wait(frame: &Bytes) -> bool {
    frame.len() >= 2
        && matches!(
            ApiKey::try_from(i16::from_be_bytes([frame[0], frame[1]])),
            Ok(ApiKey::Fetch | ApiKey::JoinGroup | ApiKey::SyncGroup)
        )
}

/// Decodes one request, runs its handler and appends the framed response to `output`.
async fn serve_frame(
    ctx: &Context,
    conn: &mut Conn,
    mut frame: Bytes,
    output: &mut Frames,
) -> Result<(), Close> {
    if frame.len() < 8 {
        return Err(Close::ShortFrame(frame.len()));
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let key = ApiKey::try_from(raw_key).map_err(|()| Close::UnknownApiKey(raw_key))?;
    let Some((lo, hi)) = versions::range(key) else {
        return Err(Close::Unserved(key, version));
    };
    if key == ApiKey::ApiVersions && version > hi {
        // KIP-511: we cannot read a body from the future; answer error 35 with a v0 body.
        let resp = handlers::api_versions::fallback();
        return write_response(
            output,
            key,
            0,
            correlation_id,
            (ResponseKind::ApiVersions(resp), Splices::default()),
        );
    }
    let decoded = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let header = decode_request_header_from_buffer(&mut frame).map_err(|e| format!("{e:#}"))?;
        let body = RequestKind::decode(key, &mut frame, version).map_err(|e| format!("{e:#}"))?;
        Ok::<(RequestHeader, RequestKind), String>((header, body))
    }));
    let (header, request) = match decoded {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => return Err(Close::Decode(key, version, e)),
        Err(_) => return Err(Close::Decode(key, version, "the decoder panicked".into())),
    };
    let response = if (lo..=hi).contains(&version) {
        handlers::dispatch(ctx, conn, &header, request).await
    } else {
        tracing::debug!(?key, version, "unsupported version");
        Some((
            handlers::error_response(
                &request,
                version,
                kafka_protocol::ResponseError::UnsupportedVersion.code(),
            ),
            Splices::default(),
        ))
    };
    match response {
        Some(r) => write_response(output, key, version, correlation_id, r),
        None => Ok(()),
    }
}

/// Appends size, response header and body; on an encode error leaves `output` as it was.
fn write_response(
    output: &mut Frames,
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    (body, splices): (ResponseKind, Splices),
) -> Result<(), Close> {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    output
        .put_answer(
            &header,
            key.response_header_version(version),
            &body,
            version,
            splices,
        )
        .map_err(|e| Close::Encode(key, version, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    #[test]
    fn frames_are_cut_at_their_size_and_bounded() {
        let mut input = BytesMut::new();
        input.put_i32(3);
        input.put_slice(b"abc");
        input.put_i32(5);
        input.put_slice(b"de");
        assert_eq!(
            next_frame(&mut input, 10, true).unwrap().unwrap(),
            &b"abc"[..]
        );
        assert!(
            next_frame(&mut input, 10, true).unwrap().is_none(),
            "incomplete"
        );
        input.put_slice(b"fgh");
        assert_eq!(
            next_frame(&mut input, 10, true).unwrap().unwrap(),
            &b"defgh"[..]
        );
        input.put_i32(11);
        assert!(matches!(
            next_frame(&mut input, 10, true),
            Err(Close::FrameSize(11))
        ));
        let mut neg = BytesMut::new();
        neg.put_i32(-1);
        assert!(matches!(
            next_frame(&mut neg, 10, true),
            Err(Close::FrameSize(-1))
        ));
    }
}
