//! `GET /v1/nodes/{hash}/conversation`: the conversation that ends at a node, with the
//! harness identity of the session it belongs to (the reference's `GET /v1/sessions/{hash}`,
//! docs/wire.md#reading-a-conversation; `/v1/sessions/{id}` now reads a session).
//!
//! The org comes from the reference's `X-Tapes-Org-Id` header (the nil-UUID "no org" sentinel
//! without it). Unlike the reference, a malformed header is refused instead of silently
//! reading the sentinel org, and a node the org does not hold is a 404. With API keys the
//! org is the key's; a header naming another is 403.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::AppState;
use super::auth::read_org;
use super::error::ApiError;
use super::json::respond;
use super::openapi::{ErrorBody, OrgHeader};
use crate::store;

#[derive(Serialize, ToSchema)]
struct ConversationResponse {
    hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    harness_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    harness_session_id: Option<String>,
    turns: Vec<Turn>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = ConversationNode)]
struct Turn {
    hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_hash: Option<String>,
    role: String,
    model: String,
    provider: String,
    /// The stored content blocks (`null` when the message had none).
    content: Value,
}

/// The conversation that ends at a node, root first (docs/wire.md#reading-a-conversation).
#[utoipa::path(get, path = "/v1/nodes/{hash}/conversation", tag = "read",
    params(("hash" = String, Path, description = "A node hash"), OrgHeader),
    responses(
        (status = 200, description = "The node and its ancestors", body = ConversationResponse),
        (status = 400, description = "A malformed `X-Tapes-Org-Id`", body = ErrorBody),
        (status = 404, description = "The org holds no such node", body = ErrorBody),
    ))]
pub async fn get(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let org_id = read_org(&req, &state).await?;
    let hash = path.into_inner();
    let chain = store::ancestry(state.store.connection(), org_id, &hash)
        .await
        .map_err(|e| ApiError::Downstream(e.to_string()))?;
    if chain.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no node {hash} in org {org_id}"
        )));
    }
    // Lookup errors only cost the identity fields, as in the reference.
    let identity = match store::identity_by_hash(state.store.connection(), org_id, &hash).await {
        Ok(identity) => identity,
        Err(err) => {
            tracing::warn!(error = %err, "session identity lookup failed");
            None
        }
    };
    let turns = chain
        .into_iter()
        .map(|node| Turn {
            hash: node.hash,
            parent_hash: node.parent_hash,
            role: node.role.unwrap_or_default(),
            model: node.model.unwrap_or_default(),
            provider: node.provider.unwrap_or_default(),
            content: node.content.unwrap_or(Value::Null),
        })
        .collect();
    let (harness_id, harness_session_id) = match identity {
        Some(id) => (Some(id.harness_id), Some(id.harness_session_id)),
        None => (None, None),
    };
    Ok(respond(
        StatusCode::OK,
        &ConversationResponse {
            hash,
            harness_id,
            harness_session_id,
            turns,
        },
    ))
}
