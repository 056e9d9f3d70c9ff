//! `POST /v1/ingest` and `POST /v1/ingest/batch`.
//!
//! Check order and error texts follow the reference (docs/wire.md#order-of-checks,
//! docs/wire.md#ingesting-a-batch). The answer is sent only after the turn's transaction
//! committed (docs/divergences.md#durable-202).

use std::collections::HashMap;
use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, http::header, web};
use futures_util::StreamExt;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use actix_web::ResponseError;
use bytes::Bytes;
use chrono::Utc;

use super::AppState;
use super::auth::{Tenant, authenticate};
use super::body::{BodyError, Reservation, read_body};
use super::error::ApiError;
use super::json::respond;
use super::openapi::{BatchDoc, ErrorBody, TurnPayloadDoc};
use crate::merkle::Rules;
use crate::sessions::SubmitError;
use crate::store::{Quarantined, RawAnswer, RawKey, RawOutcome, Rejected};
use crate::telemetry::{Metrics, OverloadReason, provider_label, status};
use crate::turn::{
    Committed, Intake, Prepared, RawStored, RawTurn, Reduced, Rejection, SessionKey, Turn,
    intake_under,
};
use crate::wire::{
    DecodeError, TurnPayload, decode_batch_with_repairs, decode_turn_under, decode_turn_verbatim,
};

/// Bodies larger than this are decoded and hashed on a blocking thread, so one huge turn
/// does not stall the other connections of its HTTP worker.
const INLINE_PREPARE_LIMIT: usize = 512 * 1024;

/// A committed turn.
#[derive(Serialize, ToSchema)]
struct Accepted<'a> {
    /// `accepted`.
    status: &'static str,
    session_id: Uuid,
    head: &'a str,
    new_nodes: usize,
    counted: bool,
}

/// One turn: answered once it is committed (docs/wire.md#ingesting-one-turn).
#[utoipa::path(post, path = "/v1/ingest", tag = "ingest",
    request_body(content = TurnPayloadDoc, content_type = "application/json"),
    responses(
        (status = 202, description = "Committed (or the stored answer to a retried request id)", body = Accepted),
        (status = 400, description = "Not a turn: `invalid envelope: …`", body = ErrorBody),
        (status = 408, description = "The body did not arrive in time", body = ErrorBody),
        (status = 413, description = "The body exceeds the ingest size limit", body = ErrorBody),
        (status = 422, description = "Not a chain: `unprocessable turn: …`; `raw_turn_id` when quarantined", body = ErrorBody),
        (status = 429, description = "A limit is full: `overloaded: …`", body = ErrorBody,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
    ))]
pub async fn ingest(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    // Before the body is read: an unauthenticated client costs no memory or parsing.
    let tenant = authenticate(&req, &state).await?;
    // The budget share stays reserved until the turn is answered: the parsed turn takes
    // about as much memory as its body, and decoding its raw response takes from it too.
    let (bytes, reserved) = read_ingest_body(&req, payload, &state).await?.into_parts();
    let body_size = bytes.len();
    check_content_type(&req).inspect_err(|_| state.metrics.body_rejected())?;
    let received_at = Utc::now();
    let large = body_size > INLINE_PREPARE_LIMIT;
    let keep_raw = state.capture.raw;
    let rules = state.rules;

    // A body that is not a turn (400) is not captured: there is nothing to re-derive.
    let metrics = state.metrics.clone();
    let (payload, received) = offload(large, move || {
        decode_single(bytes, keep_raw, &metrics, rules)
    })
    .await??;
    let named = payload.session.as_ref().map(|s| s.org_id.as_str());
    tenant.check_named(named)?;
    let raw_key = raw_key(&payload, tenant);
    let provider = payload.provider.clone();

    // A retry of a stored request id is answered as the first attempt was, without being
    // reduced or parsed again, and writes nothing.
    if keep_raw && let Some(answer) = stored_answer(&state, &raw_key, &payload).await? {
        state.metrics.capture.replayed_total.inc();
        return Ok(replay(answer));
    }

    let prices = state.prices.clone();
    let (intake, reserved) = offload(large, move || {
        let mut reserved = reserved;
        let intake = intake_under(
            payload,
            received,
            keep_raw,
            &prices,
            &mut reserved,
            received_at,
            rules,
        );
        (intake, reserved)
    })
    .await?;
    let intake = intake.map_err(|over| {
        state.metrics.overloaded(OverloadReason::BodyBudget);
        ApiError::Overloaded {
            message: format!("overloaded: {over}"),
            retry_after: state.retry_after_secs,
        }
    })?;
    // What decoding the raw response held is given back now; the body's share stays.
    drop(reserved);
    record_capture(&state, &provider, &intake);

    let Intake {
        prepared,
        rejected_raw,
        reduced,
        ..
    } = intake;
    let prepared = match prepared {
        Ok(prepared) => prepared,
        Err(rejection) => {
            state
                .metrics
                .turn_rejected(rejection_label(&rejection, &provider), &rejection);
            let reduction_failed = matches!(reduced, Some(Reduced::Failed(_)));
            return Err(
                quarantine(&state, &raw_key, rejected_raw, rejection, reduction_failed).await,
            );
        }
    };
    if prepared.unknown_model {
        state.metrics.turn_priced_unknown();
    }

    let Prepared {
        provider, mut turn, ..
    } = prepared;
    tenant.claim(&mut turn)?;
    tracing::Span::current().record("session", tracing::field::display(&turn.key));
    let started = Instant::now();
    let result = submit(&state, turn).await;
    match result {
        Ok(committed) => {
            state
                .metrics
                .turn_accepted(&provider, started.elapsed(), body_size);
            record_raw_commit(&state, &provider, &committed);
            Ok(respond(
                StatusCode::ACCEPTED,
                &Accepted {
                    status: "accepted",
                    session_id: committed.session_id,
                    head: &committed.head,
                    new_nodes: committed.new_nodes.len(),
                    counted: committed.counted,
                },
            ))
        }
        Err(err) => {
            state.metrics.turn_failed(&provider, err.failure());
            Err(ApiError::from_submit(err, state.retry_after_secs))
        }
    }
}

/// Runs `work` on a blocking thread when the body is large, so that one huge turn does not
/// stall the other connections of its HTTP worker; inline otherwise.
async fn offload<T: Send + 'static>(
    large: bool,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    if large {
        web::block(work).await.map_err(|_| ApiError::Internal)
    } else {
        Ok(work())
    }
}

/// Decodes a single-turn body and checks its envelope (docs/wire.md#order-of-checks). With
/// raw turns on, the request is kept verbatim, to be stored as it came: also returned are
/// its bytes as received, a slice of the body, when the body needed no UTF-8 repair.
fn decode_single(
    bytes: Bytes,
    keep_raw: bool,
    metrics: &Metrics,
    rules: &Rules,
) -> Result<(TurnPayload, Option<Bytes>), ApiError> {
    let reject = |rejection: Rejection| {
        metrics.turn_rejected("", &rejection);
        ApiError::from(rejection)
    };
    let decoded = if keep_raw {
        decode_turn_verbatim(&bytes)
    } else {
        decode_turn_under(&bytes, rules)
    };
    let (payload, repairs) = decoded.map_err(|e| reject(e.into()))?;
    metrics.body_repaired(repairs);
    payload.validate_session().map_err(|e| reject(e.into()))?;
    let received = payload
        .request_span
        .clone()
        .filter(|span| repairs.invalid_utf8 == 0 && span.end <= bytes.len())
        .map(|span| bytes.slice(span));
    Ok((payload, received))
}

/// The reference labels an envelope rejection "unknown" even though the provider is known
/// at that point; dashboards rely on it.
fn rejection_label<'a>(rejection: &Rejection, provider: &'a str) -> &'a str {
    match rejection {
        Rejection::Turn(_) | Rejection::Limit(_) => provider,
        Rejection::Body(_) | Rejection::Envelope(_) => "",
    }
}

/// Where a turn's raw row belongs: the key's org, else the one the envelope names.
fn raw_key(payload: &TurnPayload, tenant: Tenant) -> RawKey {
    let org = match tenant {
        Tenant::Anonymous => None,
        Tenant::Org(org) => Some(org),
    };
    RawKey::of(payload, org)
}

/// The answer stored for the payload's `meta.request_id` in its org, if any.
async fn stored_answer(
    state: &AppState,
    key: &RawKey,
    payload: &TurnPayload,
) -> Result<Option<RawAnswer>, ApiError> {
    let Some(request_id) = payload
        .meta
        .as_ref()
        .map(|m| m.request_id.as_str())
        .filter(|id| !id.is_empty())
    else {
        return Ok(None);
    };
    state
        .store
        .raw_answer(key.org_id, request_id)
        .await
        .map_err(|e| ApiError::from_store(&e, state.retry_after_secs))
}

/// The first attempt's answer, for a retry: the same session and head (moving nothing), or
/// the same 422.
fn replay(answer: RawAnswer) -> HttpResponse {
    match (answer.outcome, answer.session_id, answer.head_hash) {
        (RawOutcome::Accepted, Some(session_id), Some(head)) => respond(
            StatusCode::ACCEPTED,
            &Accepted {
                status: "accepted",
                session_id,
                head: &head,
                new_nodes: 0,
                counted: false,
            },
        ),
        _ => ApiError::Quarantined {
            message: answer.error.unwrap_or_default(),
            raw_turn_id: answer.id,
        }
        .error_response(),
    }
}

/// Keeps a turn answered 422 as a quarantined raw turn, when capture keeps them and the
/// org's budget has room, and returns the answer: the rejection, with the raw turn's id
/// when it was kept.
async fn quarantine(
    state: &AppState,
    key: &RawKey,
    raw: Option<RawTurn>,
    rejection: Rejection,
    reduction_failed: bool,
) -> ApiError {
    let capture = &state.capture;
    let metrics = &state.metrics.capture;
    let reason = rejection.quarantine_reason(reduction_failed);
    // A body that is not a turn (400) is not captured: there is nothing to re-derive.
    if rejection.status_code() != 422 {
        return rejection.into();
    }
    let Some(raw) = raw.filter(|_| capture.quarantine) else {
        metrics
            .quarantine_skipped_total
            .with_label_values(&["disabled"])
            .inc();
        return rejection.into();
    };
    let rejected = Rejected {
        status: rejection.status_code(),
        reason: reason.to_owned(),
        error: rejection.to_string(),
    };
    match state
        .store
        .quarantine(key, &raw, &rejected, capture.quarantine_bytes_per_org)
        .await
    {
        Ok(Quarantined::Stored(id)) => {
            metrics.quarantined_total.with_label_values(&[reason]).inc();
            ApiError::Quarantined {
                message: rejected.error,
                raw_turn_id: id,
            }
        }
        Ok(Quarantined::Duplicate(first)) => ApiError::Quarantined {
            message: rejected.error,
            raw_turn_id: first.id,
        },
        Ok(Quarantined::OverBudget) => {
            metrics
                .quarantine_skipped_total
                .with_label_values(&["over_budget"])
                .inc();
            rejection.into()
        }
        // The turn is refused either way; a quarantine that could not be written must not
        // turn the client's 422 into a 5xx.
        Err(e) => {
            tracing::warn!(error = %e, "cannot quarantine a rejected turn");
            metrics
                .quarantine_skipped_total
                .with_label_values(&["store_error"])
                .inc();
            rejection.into()
        }
    }
}

/// Counts what capture did to a turn before its chain: the reduction and its stamps.
fn record_capture(state: &AppState, provider: &str, intake: &Intake) {
    record_capture_metrics(&state.metrics, provider, intake);
}

fn record_capture_metrics(all: &Metrics, provider: &str, intake: &Intake) {
    let metrics = &all.capture;
    let label = provider_label(provider);
    match &intake.reduced {
        Some(Reduced::Ok {
            duration_source,
            created_at_source,
            truncated,
            replacements,
        }) => {
            metrics.stamped(
                provider,
                duration_source.as_str(),
                created_at_source.as_str(),
            );
            let outcome = if *truncated { "truncated" } else { "reduced" };
            metrics
                .reductions_total
                .with_label_values(&[label, outcome])
                .inc();
            if *replacements > 0 {
                all.invalid_utf8_total.inc_by(*replacements as u64);
            }
            if *truncated {
                tracing::info!(
                    provider = label,
                    "raw_response was cut short; kept what it held"
                );
            }
        }
        Some(Reduced::Failed(failure)) => {
            metrics
                .reductions_total
                .with_label_values(&[label, "failed"])
                .inc();
            tracing::info!(provider = label, class = failure.class(), error = %failure, "raw_response not reduced");
        }
        None => {}
    }
    if let Some(dropped) = intake.dropped {
        tracing::info!(provider = label, ?dropped, "raw_response bytes not kept");
    }
}

/// Counts what the commit did with the turn's raw turn.
fn record_raw_commit(state: &AppState, provider: &str, committed: &Committed) {
    let metrics = &state.metrics.capture;
    let written = committed.raw_written;
    metrics.raw_bytes_total.inc_by(written.bytes);
    metrics.chunks_written_total.inc_by(written.chunks_written);
    metrics
        .chunks_deduplicated_total
        .inc_by(written.chunks_deduplicated);
    if committed.raw == Some(RawStored::Duplicate) {
        state
            .metrics
            .capture
            .request_id_conflicts_total
            .with_label_values(&[provider_label(provider)])
            .inc();
    }
}

#[derive(Serialize, ToSchema)]
struct BatchResult {
    accepted: usize,
    rejected: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<String>,
    results: Vec<TurnResult>,
}

#[derive(Serialize, ToSchema)]
struct TurnResult {
    index: usize,
    /// `accepted` or `rejected`.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    head: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// The quarantined raw turn of a rejected turn, when it was kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_turn_id: Option<Uuid>,
}

impl TurnResult {
    fn accepted(index: usize, committed: Committed) -> Self {
        TurnResult::of_session(index, committed.session_id, committed.head)
    }

    fn of_session(index: usize, session_id: Uuid, head: String) -> Self {
        TurnResult {
            index,
            status: "accepted",
            session_id: Some(session_id),
            head: Some(head),
            error: None,
            raw_turn_id: None,
        }
    }

    fn rejected(index: usize, error: String) -> Self {
        TurnResult {
            index,
            status: "rejected",
            session_id: None,
            head: None,
            error: Some(error),
            raw_turn_id: None,
        }
    }

    /// The answer of a refused turn: a quarantined one names its raw turn.
    fn refused(index: usize, error: ApiError) -> Self {
        let raw_turn_id = match &error {
            ApiError::Quarantined { raw_turn_id, .. } => Some(*raw_turn_id),
            _ => None,
        };
        TurnResult {
            raw_turn_id,
            ..TurnResult::rejected(index, error.to_string())
        }
    }

    /// A retry of a stored request id, answered as the first attempt was.
    fn replayed(index: usize, answer: RawAnswer) -> Self {
        match (answer.outcome, answer.session_id, answer.head_hash) {
            (RawOutcome::Accepted, Some(session_id), Some(head)) => {
                TurnResult::of_session(index, session_id, head)
            }
            _ => TurnResult {
                raw_turn_id: Some(answer.id),
                ..TurnResult::rejected(index, answer.error.unwrap_or_default())
            },
        }
    }
}

/// One session's turns of a batch, in array order.
struct Group {
    key: SessionKey,
    turns: Vec<BatchTurn>,
}

/// A prepared turn of a batch, with what its answer and metrics need.
struct BatchTurn {
    index: usize,
    provider: String,
    /// The turn's size as the reference counts it (its request's bytes).
    bytes: usize,
    turn: Turn,
}

/// Many turns: each session's turns commit in array order; a turn the store refuses fails
/// alone (docs/wire.md#ingesting-a-batch).
#[utoipa::path(post, path = "/v1/ingest/batch", tag = "ingest",
    request_body(content = BatchDoc, content_type = "application/json"),
    responses(
        (status = 202, description = "Every turn answered, accepted or rejected", body = BatchResult),
        (status = 400, description = "Not a batch: `invalid envelope: …`", body = ErrorBody),
        (status = 408, description = "The body did not arrive in time", body = ErrorBody),
        (status = 413, description = "The body exceeds the ingest size limit", body = ErrorBody),
        (status = 429, description = "A limit is full: `overloaded: …`", body = ErrorBody,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
    ))]
pub async fn ingest_batch(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let tenant = authenticate(&req, &state).await?;
    let (bytes, reserved) = read_ingest_body(&req, payload, &state).await?.into_parts();
    check_content_type(&req).inspect_err(|_| state.metrics.body_rejected())?;
    let received_at = Utc::now();
    let decoded = if bytes.len() > INLINE_PREPARE_LIMIT {
        web::block(move || decode_batch_with_repairs(&bytes))
            .await
            .map_err(|_| ApiError::Internal)?
    } else {
        decode_batch_with_repairs(&bytes)
    };
    let (payloads, repairs) = decoded.map_err(|e: DecodeError| {
        let rejection = Rejection::from(e);
        state.metrics.turn_rejected("", &rejection);
        ApiError::from(rejection)
    })?;
    state.metrics.body_repaired(repairs);

    // A batch naming another org is refused whole, before anything is prepared or written:
    // the client holds the wrong key, not one bad turn.
    for payload in &payloads {
        tenant.check_named(payload.session.as_ref().map(|s| s.org_id.as_str()))?;
    }
    let count = payloads.len();
    let mut results: Vec<Option<TurnResult>> = (0..count).map(|_| None).collect();

    // Retries of stored request ids are answered from their raw turns, unparsed.
    let mut fresh = Vec::with_capacity(count);
    for (index, payload) in payloads.into_iter().enumerate() {
        let key = raw_key(&payload, tenant);
        if state.capture.raw
            && payload.validate_session().is_ok()
            && let Some(answer) = stored_answer(&state, &key, &payload).await?
        {
            state.metrics.capture.replayed_total.inc();
            results[index] = Some(TurnResult::replayed(index, answer));
            continue;
        }
        fresh.push(BatchPayload {
            index,
            key,
            payload,
        });
    }

    let (groups, rejected) = prepare_batch(&state, fresh, tenant, reserved, received_at).await?;
    for refused in rejected {
        let index = refused.index;
        let error = match refused.rejection {
            Ok(rejection) => {
                quarantine(
                    &state,
                    &refused.key,
                    refused.raw,
                    rejection,
                    refused.reduction_failed,
                )
                .await
            }
            Err(error) => error,
        };
        results[index] = Some(TurnResult::refused(index, error));
    }

    // Sessions commit concurrently (bounded); a session's turns go one after another, in
    // array order, through its actor.
    let parallelism = state.batch_parallelism;
    let committed: Vec<Vec<TurnResult>> = futures_util::stream::iter(groups)
        .map(|group| commit_group(&state, group))
        .buffer_unordered(parallelism)
        .collect()
        .await;
    for result in committed.into_iter().flatten() {
        let index = result.index;
        results[index] = Some(result);
    }

    let results: Vec<TurnResult> = results
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.unwrap_or_else(|| TurnResult::rejected(i, "internal error".to_owned())))
        .collect();
    let accepted = results.iter().filter(|r| r.status == "accepted").count();
    let errors = results
        .iter()
        .filter_map(|r| r.error.as_ref().map(|e| format!("turn[{}]: {e}", r.index)))
        .collect();
    Ok(respond(
        StatusCode::ACCEPTED,
        &BatchResult {
            accepted,
            rejected: count - accepted,
            errors,
            results,
        },
    ))
}

/// A decoded turn of a batch, with where its raw turn belongs.
struct BatchPayload {
    index: usize,
    key: RawKey,
    payload: TurnPayload,
}

/// A turn of a batch that cannot be committed: a rejection (with its raw turn, for the
/// quarantine) or an answer already made.
struct Refused {
    index: usize,
    key: RawKey,
    rejection: Result<Rejection, ApiError>,
    raw: Option<RawTurn>,
    reduction_failed: bool,
}

/// Runs every turn of a batch through the capture steps and `prepare`; returns the accepted
/// ones grouped by session (groups in order of first appearance) and the refused ones.
async fn prepare_batch(
    state: &web::Data<AppState>,
    payloads: Vec<BatchPayload>,
    tenant: Tenant,
    reserved: Reservation,
    received_at: chrono::DateTime<Utc>,
) -> Result<(Vec<Group>, Vec<Refused>), ApiError> {
    let prices = state.prices.clone();
    let metrics = state.metrics.clone();
    let keep_raw = state.capture.raw;
    let rules = state.rules;
    let retry_after = state.retry_after_secs;
    let large = payloads
        .iter()
        .map(|p| {
            p.payload.request.raw().map_or(0, |r| r.get().len()) + p.payload.raw_response.len()
        })
        .sum::<usize>()
        > INLINE_PREPARE_LIMIT;
    let work = move || {
        let mut reserved = reserved;
        let mut unknown_models = 0;
        let mut groups: Vec<Group> = Vec::new();
        let mut by_key: HashMap<SessionKey, usize> = HashMap::new();
        let mut refused = Vec::new();
        for BatchPayload {
            index,
            key,
            payload,
        } in payloads
        {
            let provider = payload.provider.clone();
            // Per-turn size as the reference counts it, less the re-encoded response.
            let bytes = payload.request.raw().map_or(0, |r| r.get().len());
            let intake = match intake_under(
                payload,
                None,
                keep_raw,
                &prices,
                &mut reserved,
                received_at,
                rules,
            ) {
                Ok(intake) => intake,
                Err(over) => {
                    metrics.overloaded(OverloadReason::BodyBudget);
                    refused.push(Refused {
                        index,
                        key,
                        rejection: Err(ApiError::Overloaded {
                            message: format!("overloaded: {over}"),
                            retry_after,
                        }),
                        raw: None,
                        reduction_failed: false,
                    });
                    continue;
                }
            };
            record_capture_metrics(&metrics, &provider, &intake);
            let reduction_failed = matches!(intake.reduced, Some(Reduced::Failed(_)));
            match intake.prepared {
                Ok(mut prepared) => {
                    // Checked against the key's org above; this only fills in the org.
                    prepared.turn.key.org_id = tenant.org_or(prepared.turn.key.org_id);
                    unknown_models += usize::from(prepared.unknown_model);
                    let key = &prepared.turn.key;
                    let slot = *by_key.entry(key.clone()).or_insert_with(|| {
                        groups.push(Group {
                            key: key.clone(),
                            turns: Vec::new(),
                        });
                        groups.len() - 1
                    });
                    groups[slot].turns.push(BatchTurn {
                        index,
                        provider: prepared.provider,
                        bytes,
                        turn: prepared.turn,
                    });
                }
                Err(rejection) => {
                    metrics.turn_rejected(&provider, &rejection);
                    refused.push(Refused {
                        index,
                        key,
                        rejection: Ok(rejection),
                        raw: intake.rejected_raw,
                        reduction_failed,
                    });
                }
            }
        }
        for _ in 0..unknown_models {
            metrics.turn_priced_unknown();
        }
        (groups, refused)
    };
    offload(large, work).await
}

async fn commit_group(state: &AppState, group: Group) -> Vec<TurnResult> {
    let mut handle = match state.registry.handle(group.key) {
        Ok(handle) => handle,
        Err(err) => {
            let message = err.to_string();
            return group
                .turns
                .iter()
                .map(|t| {
                    state.metrics.turn_failed(&t.provider, err.failure());
                    TurnResult::rejected(t.index, message.clone())
                })
                .collect();
        }
    };
    // The session's turns of this batch commit together: one transaction for all of them.
    let (answers, turns): (Vec<_>, Vec<_>) = group
        .turns
        .into_iter()
        .map(|t| ((t.index, t.provider, t.bytes), t.turn))
        .unzip();
    let started = Instant::now();
    let outcomes = handle.submit_all(turns).await;
    answers
        .into_iter()
        .zip(outcomes)
        .map(|((index, provider, bytes), outcome)| match outcome {
            Ok(committed) => {
                state
                    .metrics
                    .turn_accepted(&provider, started.elapsed(), bytes);
                record_raw_commit(state, &provider, &committed);
                TurnResult::accepted(index, committed)
            }
            Err(err) => {
                state.metrics.turn_failed(&provider, err.failure());
                TurnResult::rejected(index, err.to_string())
            }
        })
        .collect()
}

async fn submit(state: &AppState, turn: Turn) -> Result<Committed, SubmitError> {
    state.registry.handle(turn.key.clone())?.submit(turn).await
}

async fn read_ingest_body(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<super::body::Body, ApiError> {
    read_body(req, payload, &state.body_limits)
        .await
        .map_err(|err| match err {
            BodyError::TooLarge { limit } => {
                state.metrics.body_too_large_total.inc();
                state.metrics.write("", status::REJECT_OVERSIZE);
                tracing::warn!(
                    content_length = req
                        .headers()
                        .get(header::CONTENT_LENGTH)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or(""),
                    limit,
                    path = req.path(),
                    "ingest body over the size limit"
                );
                ApiError::TooLarge { limit }
            }
            BodyError::Timeout(timeout) => {
                state.metrics.body_timeout_total.inc();
                ApiError::BodyTimeout {
                    secs: timeout.as_secs(),
                }
            }
            BodyError::OverBudget => {
                state.metrics.overloaded(OverloadReason::BodyBudget);
                ApiError::Overloaded {
                    message: err.to_string(),
                    retry_after: state.retry_after_secs,
                }
            }
            other => {
                state.metrics.body_rejected();
                ApiError::undecodable(other.to_string())
            }
        })
}

/// The reference decodes only bodies whose Content-Type ends in `json` (after lower-casing
/// and cutting parameters); anything else fails its body parser with `Unprocessable Entity`.
fn check_content_type(req: &HttpRequest) -> Result<(), ApiError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
                .ends_with("json")
        })
        .unwrap_or(false);
    if is_json {
        Ok(())
    } else {
        Err(ApiError::undecodable("Unprocessable Entity"))
    }
}
