//! The admin endpoints: `/admin/actors`, the live session actors read from their published
//! snapshots, and `/admin/sessions/{id}/raw` and `/admin/raw/{id}`, the raw turns as stored.
//!
//! Guarded by a bearer token (`admin.token`). Without a token the endpoints answer only when
//! the server listens on a loopback address, so a default install is not open to the network.
//! Admin is not scoped to an org: it sees every org's raw turns.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use super::error::ApiError;
use super::json::respond;
use super::openapi::{ErrorBody, RawPayloadDoc, RawTurnSummaryDoc};
use super::params::parse_session_id;
use crate::sessions::ActorInfo;
use crate::store::{RawFilter, RawPayload, RawTurnSummary, StoredRawTurn};

/// Raw turns a session listing returns without a `limit`, and the most it may ask for.
const RAW_DEFAULT_LIMIT: u64 = 100;
const RAW_MAX_LIMIT: u64 = 1_000;

/// Who may call the admin endpoints.
#[derive(Clone)]
pub struct AdminAuth {
    token: Option<String>,
    loopback: bool,
}

impl AdminAuth {
    pub fn new(token: Option<String>, loopback: bool) -> Self {
        AdminAuth { token, loopback }
    }

    /// Refuses when admin is disabled: no token is configured and the listener is not
    /// loopback. What the console's page and assets need, as they hold no data.
    pub(super) fn check_enabled(&self) -> Result<(), ApiError> {
        if self.token.is_some() || self.loopback {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "admin is disabled: no admin token is configured and the listener is not loopback",
            ))
        }
    }

    /// Admits a call of an admin route: the bearer token when one is configured, else
    /// anyone on a loopback listener.
    pub(super) fn check(&self, req: &HttpRequest) -> Result<(), ApiError> {
        self.check_enabled()?;
        let Some(token) = &self.token else {
            return Ok(());
        };
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthorized("missing bearer token"))?;
        if constant_time_eq(presented.trim().as_bytes(), token.as_bytes()) {
            Ok(())
        } else {
            Err(ApiError::Unauthorized("invalid bearer token"))
        }
    }
}

/// Compares without an early exit, so response timing does not reveal the token prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Serialize, ToSchema)]
struct ActorView {
    org_id: Uuid,
    harness_id: String,
    harness_session_id: String,
    session_id: Option<Uuid>,
    generation: u64,
    turns_committed: u64,
    turns_counted: u64,
    nodes_written: u64,
    nodes_known: usize,
    pending: usize,
    /// A stop is queued behind the pending turns.
    stopping: bool,
    started_at: DateTime<Utc>,
    last_commit_at: Option<DateTime<Utc>>,
    idle_for_ms: u64,
}

impl From<ActorInfo> for ActorView {
    fn from(info: ActorInfo) -> Self {
        let s = &info.snapshot;
        ActorView {
            org_id: s.key.org_id,
            harness_id: s.key.harness_id.clone(),
            harness_session_id: s.key.harness_session_id.clone(),
            session_id: s.session_id,
            generation: s.generation,
            turns_committed: s.turns_committed,
            turns_counted: s.turns_counted,
            nodes_written: s.nodes_written,
            nodes_known: s.nodes_known,
            pending: info.pending,
            stopping: info.stopping,
            started_at: s.started_at,
            last_commit_at: s.last_commit_at,
            idle_for_ms: s.last_activity.elapsed().as_millis() as u64,
        }
    }
}

#[derive(Serialize, ToSchema)]
struct ActorList {
    count: usize,
    actors: Vec<ActorView>,
}

#[derive(Serialize, ToSchema)]
struct Stopped {
    status: &'static str,
    actor: ActorView,
}

/// The live session actors, read from the snapshots they publish.
#[utoipa::path(get, path = "/admin/actors", tag = "admin",
    responses((status = 200, description = "Every live actor", body = ActorList)))]
pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.admin.check(&req)?;
    let actors: Vec<ActorView> = state.registry.list().into_iter().map(Into::into).collect();
    Ok(respond(
        StatusCode::OK,
        &ActorList {
            count: actors.len(),
            actors,
        },
    ))
}

/// One live actor.
#[utoipa::path(get, path = "/admin/actors/{session_id}", tag = "admin",
    params(("session_id" = Uuid, Path, description = "The session id")),
    responses(
        (status = 200, description = "The actor", body = ActorView),
        (status = 400, description = "Not a session id", body = ErrorBody),
        (status = 404, description = "No live actor for the session", body = ErrorBody),
    ))]
pub async fn inspect(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.admin.check(&req)?;
    let session_id = parse_session_id(&path)?;
    let info = state
        .registry
        .find(session_id)
        .ok_or_else(|| no_actor(session_id))?;
    Ok(respond(StatusCode::OK, &ActorView::from(info)))
}

/// Finishes an actor's queued turns, then stops it.
#[utoipa::path(post, path = "/admin/actors/{session_id}/stop", tag = "admin",
    params(("session_id" = Uuid, Path, description = "The session id")),
    responses(
        (status = 200, description = "Stopped", body = Stopped),
        (status = 400, description = "Not a session id", body = ErrorBody),
        (status = 404, description = "No live actor for the session", body = ErrorBody),
    ))]
pub async fn stop(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.admin.check(&req)?;
    let session_id = parse_session_id(&path)?;
    let info = state
        .registry
        .stop(session_id)
        .await
        .ok_or_else(|| no_actor(session_id))?;
    tracing::info!(%session_id, "session actor stopped by admin");
    Ok(respond(
        StatusCode::OK,
        &Stopped {
            status: "stopped",
            actor: info.into(),
        },
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct RawListQuery {
    /// Start after this raw turn (the previous page's `next_after`).
    #[serde(default)]
    #[param(value_type = Option<Uuid>)]
    after: Option<String>,
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<u64>,
}

#[derive(Serialize, ToSchema)]
struct RawList {
    count: usize,
    #[schema(value_type = Vec<RawTurnSummaryDoc>)]
    raw_turns: Vec<RawTurnSummary>,
    /// The `after` of the next page, when this one is full.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_after: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
struct RawView<'a> {
    #[schema(value_type = RawTurnSummaryDoc)]
    summary: &'a RawTurnSummary,
    /// The full error text of a quarantined turn.
    error: Option<&'a str>,
    /// The body the turn was posted in (`StoredRawTurn::payload`).
    #[schema(value_type = RawPayloadDoc)]
    payload: RawPayload<'a>,
}

/// `GET /admin/sessions/{session_id}/raw?after=<id>&limit=N`: a session's raw turns in the
/// order they were stored, without bodies.
#[utoipa::path(get, path = "/admin/sessions/{session_id}/raw", tag = "admin",
    params(("session_id" = Uuid, Path, description = "The session id"), RawListQuery),
    responses(
        (status = 200, description = "A page of the session's raw turns", body = RawList),
        (status = 400, description = "A bad id, `after` or `limit`", body = ErrorBody),
    ))]
pub async fn session_raw(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.admin.check(&req)?;
    let session_id = parse_session_id(&path)?;
    let query = web::Query::<RawListQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::BadRequest(format!("invalid query: {e}")))?
        .into_inner();
    let after = query
        .after
        .as_deref()
        .map(|raw| {
            Uuid::try_parse(raw).map_err(|_| ApiError::BadRequest(format!("invalid after {raw:?}")))
        })
        .transpose()?;
    let limit = query.limit.unwrap_or(RAW_DEFAULT_LIMIT);
    if limit == 0 || limit > RAW_MAX_LIMIT {
        return Err(ApiError::BadRequest(format!(
            "invalid limit: must be between 1 and {RAW_MAX_LIMIT}"
        )));
    }
    let filter = RawFilter {
        session: Some(session_id),
        ..RawFilter::default()
    };
    let raw_turns = state
        .store
        .list_raw(&filter, after, limit)
        .await
        .map_err(|e| ApiError::Downstream(e.to_string()))?;
    let next_after = (raw_turns.len() as u64 == limit)
        .then(|| raw_turns.last().map(|r| r.id))
        .flatten();
    Ok(respond(
        StatusCode::OK,
        &RawList {
            count: raw_turns.len(),
            raw_turns,
            next_after,
        },
    ))
}

/// `GET /admin/raw/{id}`: one raw turn, its error and the payload it was posted in.
#[utoipa::path(get, path = "/admin/raw/{id}", tag = "admin",
    params(("id" = Uuid, Path, description = "The raw turn id")),
    responses(
        (status = 200, description = "The raw turn", body = RawView),
        (status = 400, description = "Not a raw turn id", body = ErrorBody),
        (status = 404, description = "No such raw turn", body = ErrorBody),
    ))]
pub async fn raw_turn(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.admin.check(&req)?;
    let stored = stored_raw_turn(&state, &path).await?;
    let payload = stored
        .payload()
        .map_err(|e| ApiError::Downstream(e.to_string()))?;
    Ok(respond(
        StatusCode::OK,
        &RawView {
            summary: &stored.summary,
            error: stored.error.as_deref(),
            payload,
        },
    ))
}

/// The raw turn whose id is the path's `{id}`: 400 when it is not an id, 404 when no row has
/// it.
pub(super) async fn stored_raw_turn(state: &AppState, id: &str) -> Result<StoredRawTurn, ApiError> {
    let id = Uuid::try_parse(id)
        .map_err(|_| ApiError::BadRequest(format!("invalid raw turn id {id:?}")))?;
    state
        .store
        .raw_turn(None, id)
        .await
        .map_err(|e| ApiError::from_store(&e, state.retry_after_secs))?
        .ok_or_else(|| ApiError::NotFound(format!("no raw turn {id}")))
}

fn no_actor(session_id: Uuid) -> ApiError {
    ApiError::NotFound(format!("no live actor for session {session_id}"))
}
