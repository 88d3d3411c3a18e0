//! ApiVersions: the table of APIs and versions this broker serves, generated from the
//! router's registrations, and (v3+) the features: `transaction.version` (KIP-890 part
//! 2), supported up to 2 and finalized at the node's `transaction.version` setting, the
//! level clients read to choose transaction version 2 (an epoch per transaction,
//! partitions added implicitly) or the classic protocol.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::broker::Broker;

pub async fn handle(
    b: Arc<Broker>,
    _ctx: RequestContext,
    _req: ApiVersionsRequest,
) -> Option<ApiVersionsResponse> {
    let level: i16 = b.config.known::<i16>("transaction.version").clamp(0, 2);
    let name = StrBytes::from_static_str("transaction.version");
    let mut resp = ApiVersionsResponse::default()
        .with_api_keys(b.api_versions.clone())
        .with_supported_features(vec![SupportedFeatureKey::default()
            .with_name(name.clone())
            .with_min_version(0)
            .with_max_version(2)])
        .with_finalized_features_epoch(0);
    if level > 0 {
        resp = resp.with_finalized_features(vec![FinalizedFeatureKey::default()
            .with_name(name)
            .with_min_version_level(level)
            .with_max_version_level(level)]);
    }
    Some(resp)
}

/// The v0 answer to an ApiVersions request at a version we do not know (KIP-511).
pub fn unsupported_version_response(min: i16, max: i16) -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(vec![ApiVersion::default()
            .with_api_key(ApiKey::ApiVersions as i16)
            .with_min_version(min)
            .with_max_version(max)])
}
