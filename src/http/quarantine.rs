//! The quarantine as the admin console shows it: `GET /admin/quarantine`, the rejected raw
//! turns oldest first, and `POST /admin/raw/{id}/reprocess`, one of them derived again with
//! today's parsers (`store::reprocess`, the step `reel reprocess` runs) and, when it passes,
//! committed through its session's actor like any turn.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use super::admin::stored_raw_turn;
use super::error::ApiError;
use super::json::respond;
use super::openapi::{ErrorBody, RawTurnSummaryDoc};
use super::params::{decode_cursor, encode_cursor, page_limit};
use crate::sessions::SubmitError;
use crate::store::{
    self, QuarantineCursor, QuarantineFilter, RawTurnSummary, reprocess as derive_again,
};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct QuarantineQuery {
    /// 1 to 200.
    #[serde(default)]
    #[param(value_type = Option<u64>, minimum = 1, maximum = 200, default = 50)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[serde(default)]
    cursor: Option<String>,
    /// Only rows quarantined for this reason (`reason` exactly as listed).
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct QuarantineList {
    count: usize,
    #[schema(value_type = Vec<RawTurnSummaryDoc>)]
    raw_turns: Vec<RawTurnSummary>,
    /// The `cursor` of the next page, when this one is full.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// `GET /admin/quarantine?limit=N&cursor=…&reason=…`: the quarantined raw turns of every
/// org, oldest first, without bodies.
#[utoipa::path(get, path = "/admin/quarantine", tag = "admin",
    params(QuarantineQuery),
    responses(
        (status = 200, description = "A page of the quarantine", body = QuarantineList),
        (status = 400, description = "A bad `limit` or `cursor`", body = ErrorBody),
    ))]
pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.admin.check(&req)?;
    let query = web::Query::<QuarantineQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::BadRequest(format!("invalid query: {e}")))?
        .into_inner();
    let limit = page_limit(query.limit.as_deref())?;
    let after = query
        .cursor
        .as_deref()
        .map(decode_cursor::<(DateTime<Utc>, Uuid)>)
        .transpose()?
        .map(|(received_at, id)| QuarantineCursor { received_at, id });
    let filter = QuarantineFilter {
        reason: query.reason,
        ..QuarantineFilter::default()
    };
    let raw_turns = state
        .store
        .quarantined(&filter, after, limit)
        .await
        .map_err(|e| ApiError::from_store(&e, state.retry_after_secs))?;
    let next_cursor = (raw_turns.len() as u64 == limit)
        .then(|| raw_turns.last())
        .flatten()
        .map(|last| encode_cursor(&(last.received_at, last.id)));
    Ok(respond(
        StatusCode::OK,
        &QuarantineList {
            count: raw_turns.len(),
            raw_turns,
            next_cursor,
        },
    ))
}

/// What reprocessing one row did.
#[derive(Serialize, ToSchema, Debug, PartialEq, Eq, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum Outcome {
    /// Committed: the row is accepted now.
    Committed,
    /// Today's parsers still reject it; it stays quarantined.
    StillFailing,
    /// Not derived: already reprocessed, or too large for the server to read.
    Skipped,
    /// The row cannot be turned back into a body.
    Error,
}

#[derive(Serialize, ToSchema)]
struct Reprocessed {
    raw_turn_id: Uuid,
    outcome: Outcome,
    /// Why it did not commit.
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    /// The session and head it committed into.
    #[serde(skip_serializing_if = "Option::is_none")]
    session_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    head: Option<String>,
    /// Nodes the commit inserted.
    #[serde(skip_serializing_if = "Option::is_none")]
    new_nodes: Option<usize>,
}

impl Reprocessed {
    fn not_committed(raw_turn_id: Uuid, outcome: Outcome, detail: String) -> Self {
        Reprocessed {
            raw_turn_id,
            outcome,
            detail: Some(detail),
            session_id: None,
            head: None,
            new_nodes: None,
        }
    }
}

/// `POST /admin/raw/{id}/reprocess`: derives one quarantined raw turn again and commits it
/// when today's parsers read it, as `reel reprocess` does for many.
#[utoipa::path(post, path = "/admin/raw/{id}/reprocess", tag = "admin",
    params(("id" = Uuid, Path, description = "The raw turn id")),
    responses(
        (status = 200, description = "What became of the row", body = Reprocessed),
        (status = 400, description = "Not a raw turn id", body = ErrorBody),
        (status = 404, description = "No such raw turn", body = ErrorBody),
    ))]
pub async fn reprocess(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.admin.check(&req)?;
    let stored = stored_raw_turn(&state, &path).await?;
    let id = stored.summary.id;
    let turn = match derive_again(&stored, &state.prices, state.rules, state.body_limits.limit) {
        store::Reprocessed::Turn(turn) => *turn,
        store::Reprocessed::StillFailing(why) => return Ok(answer(id, Outcome::StillFailing, why)),
        store::Reprocessed::Skipped(why) => return Ok(answer(id, Outcome::Skipped, why)),
        store::Reprocessed::Error(why) => return Ok(answer(id, Outcome::Error, why)),
    };
    let submitted = match state.registry.handle(turn.key.clone()) {
        Ok(mut handle) => handle.submit(turn).await,
        Err(err) => Err(err),
    };
    match submitted {
        Ok(committed) => {
            tracing::info!(raw_turn = %id, session_id = %committed.session_id, "raw turn reprocessed by admin");
            Ok(respond(
                StatusCode::OK,
                &Reprocessed {
                    raw_turn_id: id,
                    outcome: Outcome::Committed,
                    detail: None,
                    session_id: Some(committed.session_id),
                    head: Some(committed.head),
                    new_nodes: Some(committed.new_nodes.len()),
                },
            ))
        }
        Err(SubmitError::AlreadyReprocessed(_)) => Ok(answer(
            id,
            Outcome::Skipped,
            "reprocessed meanwhile".to_owned(),
        )),
        Err(err @ SubmitError::InvalidChain(_)) => {
            Ok(answer(id, Outcome::StillFailing, err.to_string()))
        }
        Err(err) => Err(ApiError::from_submit(err, state.retry_after_secs)),
    }
}

fn answer(id: Uuid, outcome: Outcome, detail: String) -> HttpResponse {
    respond(
        StatusCode::OK,
        &Reprocessed::not_committed(id, outcome, detail),
    )
}
