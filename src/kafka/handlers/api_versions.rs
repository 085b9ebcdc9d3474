//! ApiVersions (key 18): the version ranges of [`crate::kafka::versions`].
//!
//! The response carries no optional tagged fields (supported features, finalized features,
//! migration flag): librdkafka 2.0.2 (kcat 1.7.1) misreads them. Its header is v0 at every
//! version (KIP-511), which `ApiKey::response_header_version` gives.

use crate::kafka::versions::SUPPORTED;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::ResponseError;

fn table() -> Vec<ApiVersion> {
    SUPPORTED
        .iter()
        .map(|&(key, lo, hi)| {
            ApiVersion::default()
                .with_api_key(key as i16)
                .with_min_version(lo)
                .with_max_version(hi)
        })
        .collect()
}

/// Our ranges, error 0.
pub fn handle(_req: &ApiVersionsRequest) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(table())
}

/// KIP-511: the answer to an ApiVersions request above our range, to be encoded as v0: error 35
/// and our ranges, so the client retries at a version we speak.
pub fn fallback() -> ApiVersionsResponse {
    error(ResponseError::UnsupportedVersion.code())
}

/// `code` with our ranges (Kafka lists them even with an error).
pub fn error(code: i16) -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(code)
        .with_api_keys(table())
}
