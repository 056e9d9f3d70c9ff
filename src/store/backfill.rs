//! Linking legacy nodes to a session (storage.md §6.6), org-scoped. No node is inserted.

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::{Map, Value as Json};
use uuid::Uuid;

use super::connect::{begin_write, retry_conflicts};
use super::node_row::clamp_i32;
use super::session_row::{self, NaturalKey, NewSession};
use super::sql::{List, Sql, bind_limit};
use super::{StoreError, sanitize};
use crate::wire::{SessionEnvelope, parse_org_id};

/// A session reconstructed from transcripts, and the stored nodes that belong to it.
#[derive(Debug, Clone, Copy)]
pub struct BackfillRequest<'a> {
    pub envelope: Option<&'a SessionEnvelope>,
    pub node_hashes: &'a [String],
    /// `None`: now.
    pub started_at: Option<DateTime<Utc>>,
    /// `None` or earlier than `started_at`: `started_at`.
    pub last_seen_at: Option<DateTime<Utc>>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub turn_count: i64,
}

/// What a backfill did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackfillOutcome {
    /// `None` when there was nothing to link (the database was not touched).
    pub session_id: Option<Uuid>,
    /// Nodes of the envelope's org whose `session_id` was NULL and now points at the session.
    pub nodes_linked: u64,
}

/// Upserts the session (counters and `last_seen_at` take the greater of stored and given
/// values) and links the org's unlinked nodes among `node_hashes` to it, in one transaction.
/// Nodes already linked to a session are never reassigned.
pub async fn backfill_session(
    db: &DatabaseConnection,
    request: BackfillRequest<'_>,
) -> Result<BackfillOutcome, StoreError> {
    let envelope = request
        .envelope
        .ok_or_else(|| StoreError::InvalidBackfill("missing session envelope".into()))?;
    if envelope.harness_session_id.is_empty() {
        return Err(StoreError::InvalidBackfill(
            "missing harness_session_id".into(),
        ));
    }
    if request.node_hashes.is_empty() {
        return Ok(BackfillOutcome::default());
    }
    let org_id = parse_org_id(&envelope.org_id).map_err(|e| {
        StoreError::InvalidBackfill(format!(
            "decode org_id: parse org_id {:?}: {e}",
            envelope.org_id
        ))
    })?;
    let metadata = match envelope.harness_metadata.as_deref() {
        None => Map::new(),
        Some(raw) => match serde_json::from_str::<Json>(raw.get()) {
            Ok(Json::Null) => Map::new(),
            Ok(mut value @ Json::Object(_)) => {
                sanitize::json_value(&mut value, &mut 0);
                match value {
                    Json::Object(map) => map,
                    _ => Map::new(),
                }
            }
            Ok(_) | Err(_) => {
                return Err(StoreError::InvalidBackfill(
                    "harness_metadata is not a JSON object".into(),
                ));
            }
        },
    };
    let now = Utc::now().trunc_subsecs(6);
    let started_at = request.started_at.map_or(now, |t| t.trunc_subsecs(6));
    let last_seen_at = request
        .last_seen_at
        .map(|t| t.trunc_subsecs(6))
        .filter(|t| *t >= started_at)
        .unwrap_or(started_at);

    let nul = &mut 0;
    let harness_id = sanitize::owned(envelope.harness_id_or_unknown().to_owned(), nul);
    let harness_session_id = sanitize::owned(envelope.harness_session_id.clone(), nul);
    let auth_subject = sanitize::owned(envelope.auth_subject.clone(), nul);
    // NULLIF(x, ''): unlike ingest, whitespace-only values are kept here.
    let nullif =
        |s: &str, nul: &mut u64| (!s.is_empty()).then(|| sanitize::owned(s.to_owned(), nul));
    let name = nullif(&envelope.name, nul);
    let cwd = nullif(&envelope.cwd, nul);
    let harness_version = nullif(&envelope.harness_version, nul);
    let turn_count = clamp_i32(request.turn_count);

    let new = NewSession {
        key: NaturalKey {
            org_id,
            harness_id: &harness_id,
            harness_session_id: &harness_session_id,
        },
        auth_subject: &auth_subject,
        name: name.as_deref(),
        cwd: cwd.as_deref(),
        harness_version: harness_version.as_deref(),
        parent_session_id: None,
        started_at,
        last_seen_at,
        harness_metadata: Json::Object(metadata.clone()).to_string(),
        total_input_tokens: request.input_tokens,
        total_output_tokens: request.output_tokens,
        turn_count,
    };

    retry_conflicts(|| backfill_in_transaction(db, &new, &metadata, &request)).await
}

async fn backfill_in_transaction(
    db: &DatabaseConnection,
    new: &NewSession<'_>,
    metadata: &Map<String, Json>,
    request: &BackfillRequest<'_>,
) -> Result<BackfillOutcome, StoreError> {
    let txn = begin_write(db).await?;
    let result = async {
        let (session_id, existing) = session_row::find_or_insert(&txn, new).await?;
        if let Some(row) = existing {
            let mut sql = Sql::new(txn.get_database_backend());
            sql.push("UPDATE sessions SET ");
            let mut sets = List::new(&mut sql);
            sets.item().set_greatest("last_seen_at", new.last_seen_at);
            sets.item()
                .set_greatest("total_input_tokens", new.total_input_tokens);
            sets.item()
                .set_greatest("total_output_tokens", new.total_output_tokens);
            sets.item().set_greatest("turn_count", new.turn_count);
            sets.item().push("auth_subject = ").bind(new.auth_subject);
            for (column, value) in [
                ("name", new.name),
                ("cwd", new.cwd),
                ("harness_version", new.harness_version),
            ] {
                sets.item()
                    .push(column)
                    .push(" = COALESCE(")
                    .bind(value.map(str::to_owned))
                    .push(", ")
                    .push(column)
                    .push(")");
            }
            session_row::push_metadata_merge(sets.item(), &row.harness_metadata, metadata);
            sql.push(" WHERE id = ").bind(session_id);
            txn.execute_raw(sql.build()).await?;
        }
        let nodes_linked =
            link_nodes(&txn, new.key.org_id, session_id, request.node_hashes).await?;
        Ok::<_, StoreError>(BackfillOutcome {
            session_id: Some(session_id),
            nodes_linked,
        })
    }
    .await;
    match result {
        Ok(outcome) => {
            txn.commit().await?;
            Ok(outcome)
        }
        Err(err) => {
            txn.rollback().await.ok();
            Err(err)
        }
    }
}

/// `UPDATE nodes SET session_id = … WHERE org_id = … AND session_id IS NULL AND hash IN (…)`,
/// chunked under the bind limit.
async fn link_nodes<C: ConnectionTrait>(
    txn: &C,
    org_id: Uuid,
    session_id: Uuid,
    hashes: &[String],
) -> Result<u64, StoreError> {
    let backend = txn.get_database_backend();
    let mut linked = 0;
    for chunk in hashes.chunks(bind_limit(backend) - 2) {
        let mut sql = Sql::new(backend);
        sql.push("UPDATE nodes SET session_id = ")
            .bind(session_id)
            .push(" WHERE org_id = ")
            .bind(org_id)
            .push(" AND session_id IS NULL AND hash IN (");
        for (i, hash) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.bind(hash.as_str());
        }
        sql.push(")");
        linked += txn.execute_raw(sql.build()).await?.rows_affected();
    }
    Ok(linked)
}
