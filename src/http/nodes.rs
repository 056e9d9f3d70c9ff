//! `GET /v1/ingest/nodes`: a debug listing of stored nodes, scoped to one org and bounded.
//!
//! The reference listed every node of every org with no bound
//! (docs/divergences.md#node-listing); reel lists one org's nodes (`org_id` query parameter
//! or `X-Tapes-Org-Id` header; the nil-UUID "no org" sentinel by default; with API keys
//! the key's org, naming another is 403), at most `limit` of them, oldest first.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::{ORG_HEADER, authenticate};
use super::error::ApiError;
use super::json::respond;
use super::openapi::{ErrorBody, OrgHeader};
use crate::wire::parse_org_id;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct NodesQuery {
    /// Only the nodes of this agent.
    #[serde(default)]
    agent: String,
    /// The org to list (UUID text); with a key, the key's own or nothing.
    #[serde(default)]
    org_id: Option<String>,
    /// At most this many (`nodes.max_limit`, 1,000 by default).
    #[serde(default)]
    #[param(minimum = 1)]
    limit: Option<u64>,
}

#[derive(Serialize, ToSchema)]
struct NodeListResponse {
    count: usize,
    nodes: Vec<NodeSummary>,
}

#[derive(Serialize, ToSchema)]
struct NodeSummary {
    hash: String,
    role: String,
    provider: String,
    model: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    agent_name: String,
}

/// A debug listing of one org's nodes, oldest first (docs/wire.md#listing-nodes).
#[utoipa::path(get, path = "/v1/ingest/nodes", tag = "read",
    params(NodesQuery, OrgHeader),
    responses(
        (status = 200, description = "The org's first nodes", body = NodeListResponse),
        (status = 400, description = "A bad `org_id` or `limit`", body = ErrorBody),
    ))]
pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let tenant = authenticate(&req, &state).await?;
    let query = web::Query::<NodesQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::BadRequest(format!("invalid query: {e}")))?
        .into_inner();
    let org = match query.org_id {
        Some(org) => org,
        None => req
            .headers()
            .get(ORG_HEADER)
            .map(|v| {
                v.to_str()
                    .map(str::to_owned)
                    .map_err(|_| ApiError::BadRequest("invalid org_id: not text".to_owned()))
            })
            .transpose()?
            .unwrap_or_default(),
    };
    let org_id =
        parse_org_id(&org).map_err(|e| ApiError::BadRequest(format!("invalid org_id: {e}")))?;
    tenant.check_named(Some(&org))?;
    let org_id = tenant.org_or(org_id);
    let limit = query.limit.unwrap_or(state.nodes_default_limit);
    if limit == 0 || limit > state.nodes_max_limit {
        return Err(ApiError::BadRequest(format!(
            "invalid limit: must be between 1 and {}",
            state.nodes_max_limit
        )));
    }
    let agent = (!query.agent.is_empty()).then_some(query.agent.as_str());
    let rows = crate::store::list_nodes(state.store.connection(), org_id, agent, limit)
        .await
        .map_err(|e| ApiError::Downstream(e.to_string()))?;
    let nodes: Vec<NodeSummary> = rows
        .into_iter()
        .map(|row| NodeSummary {
            hash: row.hash,
            role: row.role,
            provider: row.provider,
            model: row.model,
            agent_name: row.agent_name,
        })
        .collect();
    Ok(respond(
        StatusCode::OK,
        &NodeListResponse {
            count: nodes.len(),
            nodes,
        },
    ))
}
