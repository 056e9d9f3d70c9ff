//! Listing raw turns without their bodies: in storage order for people browsing them, and
//! the quarantine in arrival order for reprocessing.

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::StoreError;
use super::raw::{RawOutcome, RawTurnSummary, SUMMARY_COLUMNS, summary_of};
use super::sql::Sql;

/// Which raw turns [`super::Store::list_raw`] returns; `None` matches any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawFilter {
    pub org: Option<Uuid>,
    pub session: Option<Uuid>,
    pub outcome: Option<RawOutcome>,
}

/// Which quarantined raw turns [`super::Store::quarantined`] returns; `None` matches any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuarantineFilter {
    pub org: Option<Uuid>,
    /// The error class exactly as stored (`reason`).
    pub reason: Option<String>,
    /// Received at or after this instant.
    pub since: Option<DateTime<Utc>>,
}

/// A position in the quarantine's arrival order: the last row a page returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuarantineCursor {
    pub received_at: DateTime<Utc>,
    pub id: Uuid,
}

impl From<&RawTurnSummary> for QuarantineCursor {
    fn from(summary: &RawTurnSummary) -> Self {
        QuarantineCursor {
            received_at: summary.received_at,
            id: summary.id,
        }
    }
}

fn limit_of(limit: u64) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// The raw turns matching `filter` in id order (the order they were stored), after `after`.
/// An org or session filter is served by its `(…, id)` index, none by the primary key.
pub(super) async fn list<C: ConnectionTrait>(
    db: &C,
    filter: &RawFilter,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<RawTurnSummary>, StoreError> {
    let mut sql = Sql::new(db.get_database_backend());
    sql.push("SELECT ")
        .push(SUMMARY_COLUMNS)
        .push(" FROM raw_turns WHERE TRUE");
    if let Some(org) = filter.org {
        sql.push(" AND org_id = ").bind(org);
    }
    if let Some(session) = filter.session {
        sql.push(" AND session_id = ").bind(session);
    }
    if let Some(outcome) = filter.outcome {
        sql.push(" AND outcome = ").bind(outcome.as_str());
    }
    if let Some(after) = after {
        sql.push(" AND id > ").bind(after);
    }
    sql.push(" ORDER BY id LIMIT ").bind(limit_of(limit));
    db.query_all_raw(sql.build())
        .await?
        .iter()
        .map(summary_of)
        .collect()
}

/// The rejected raw turns matching `filter`, oldest first by `(received_at, id)`, after
/// `after`: the `(outcome, received_at)` index serves the range. Arrival order keeps each
/// session's turns in the order they were sent.
pub(super) async fn quarantined<C: ConnectionTrait>(
    db: &C,
    filter: &QuarantineFilter,
    after: Option<QuarantineCursor>,
    limit: u64,
) -> Result<Vec<RawTurnSummary>, StoreError> {
    let mut sql = Sql::new(db.get_database_backend());
    sql.push("SELECT ")
        .push(SUMMARY_COLUMNS)
        .push(" FROM raw_turns WHERE outcome = ")
        .bind(RawOutcome::Rejected.as_str());
    if let Some(since) = filter.since {
        // Stored instants have microseconds: a finer bound would compare unlike texts on
        // SQLite.
        sql.push(" AND received_at >= ")
            .bind(since.trunc_subsecs(6));
    }
    if let Some(org) = filter.org {
        sql.push(" AND org_id = ").bind(org);
    }
    if let Some(reason) = &filter.reason {
        sql.push(" AND reason = ").bind(reason.as_str());
    }
    if let Some(cursor) = after {
        sql.push(" AND (received_at, id) > (")
            .bind(cursor.received_at)
            .push(", ")
            .bind(cursor.id)
            .push(")");
    }
    sql.push(" ORDER BY received_at, id LIMIT ")
        .bind(limit_of(limit));
    db.query_all_raw(sql.build())
        .await?
        .iter()
        .map(summary_of)
        .collect()
}

impl super::Store {
    /// The raw turns matching `filter` in the order they were stored, after the cursor
    /// `after` (an id this returned), at most `limit`. Without their bodies.
    pub async fn list_raw(
        &self,
        filter: &RawFilter,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<RawTurnSummary>, StoreError> {
        list(self.connection(), filter, after, limit).await
    }

    /// The quarantined (rejected) raw turns matching `filter`, oldest first, after the
    /// cursor `after` (the last row of the previous page), at most `limit`. Without their
    /// bodies.
    pub async fn quarantined(
        &self,
        filter: &QuarantineFilter,
        after: Option<QuarantineCursor>,
        limit: u64,
    ) -> Result<Vec<RawTurnSummary>, StoreError> {
        quarantined(self.connection(), filter, after, limit).await
    }
}
