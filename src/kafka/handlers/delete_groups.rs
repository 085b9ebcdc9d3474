//! DeleteGroups (key 42, v0–2): deletes empty groups with their committed offsets.
//! NON_EMPTY_GROUP (68) while a group has members (classic or engine), GROUP_ID_NOT_FOUND (69)
//! for a group nobody knows. With a data directory the deletion is appended to the offsets
//! journal before the answer (KAFKA_STORAGE_ERROR, 56, if it refuses).

use crate::error::Error;
use crate::kafka::context::Context;
use crate::storage::OffsetRecord;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use kafka_protocol::ResponseError as E;

fn delete(ctx: &Context, group: &str) -> i16 {
    let classic = match ctx.classic.delete(group) {
        Ok(was) => was,
        Err(code) => return code,
    };
    let code = match ctx.broker().groups().delete_group(group, ctx.now()) {
        Ok(()) => 0,
        Err(Error::UnknownGroup(_)) if classic => 0,
        Err(Error::UnknownGroup(_)) => E::GroupIdNotFound.code(),
        Err(Error::GroupNotEmpty(_)) => E::NonEmptyGroup.code(),
        Err(_) => E::UnknownServerError.code(),
    };
    if code == 0 {
        ctx.commit_extras.forget_group(group);
        let record = [OffsetRecord::GroupDelete {
            group: group.to_string(),
        }];
        let durable = super::blocking_if_durable(ctx, || ctx.broker().record_offsets(&record));
        if let Err(e) = durable {
            tracing::error!(group, "DeleteGroups not durable: {e}");
            return E::KafkaStorageError.code();
        }
    }
    code
}

/// One result per group.
pub fn handle(ctx: &Context, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    DeleteGroupsResponse::default().with_results(
        req.groups_names
            .iter()
            .map(|g| {
                DeletableGroupResult::default()
                    .with_group_id(g.clone())
                    .with_error_code(delete(ctx, g))
            })
            .collect(),
    )
}

/// `code` for every group.
pub fn error(req: &DeleteGroupsRequest, code: i16) -> DeleteGroupsResponse {
    DeleteGroupsResponse::default().with_results(
        req.groups_names
            .iter()
            .map(|g| {
                DeletableGroupResult::default()
                    .with_group_id(g.clone())
                    .with_error_code(code)
            })
            .collect(),
    )
}
