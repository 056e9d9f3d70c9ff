//! Deriving a quarantined raw turn again with today's parsers: the step `reel reprocess` and
//! `POST /admin/raw/{id}/reprocess` share. Each commits the turn its own way (the CLI
//! through the store, the server through the session's actor).
//!
//! The row is rebuilt into the body it was posted in
//! ([`StoredRawTurn::reprocessing_payload`]), decoded and run through the capture steps of a
//! live turn (`turn::intake_under` the database's rules, dated by the row's arrival). A turn that passes is marked as
//! the re-derivation of its row (`RawTurn::reprocessing`), so its commit flips the row to
//! accepted in the same transaction, once.

use std::sync::Arc;

use super::raw::{RawOutcome, StoredRawTurn};
use crate::capture::encoding::Unlimited;
use crate::cost::PriceBook;
use crate::merkle::Rules;
use crate::turn::{Rejection, Turn, intake_under};
use crate::wire::decode_turn_verbatim;

/// What deriving a quarantined row again gave.
#[derive(Debug)]
pub enum Reprocessed {
    /// It passes now: the turn to commit, marked as the re-derivation of the row.
    Turn(Box<Turn>),
    /// Today's parsers still reject it, with this text.
    StillFailing(String),
    /// Not derived: already accepted, or too large for the server to read.
    Skipped(String),
    /// The row cannot be turned back into a body.
    Error(String),
}

/// Derives `stored` again under `rules`. `body_limit` is the server's `body_limit_bytes`: a request larger
/// than a server would read is not decoded here either.
pub fn reprocess(
    stored: &StoredRawTurn,
    prices: &PriceBook,
    rules: &Rules,
    body_limit: usize,
) -> Reprocessed {
    let summary = &stored.summary;
    if summary.outcome != RawOutcome::Rejected {
        return Reprocessed::Skipped("already reprocessed".to_owned());
    }
    if summary.request_size > body_limit as u64 {
        return Reprocessed::Skipped(format!(
            "its request of {} bytes is over server.body_limit_bytes ({body_limit})",
            summary.request_size
        ));
    }
    let body = stored
        .reprocessing_payload()
        .map_err(|e| e.to_string())
        .and_then(|payload| serde_json::to_vec(&payload).map_err(|e| e.to_string()));
    let body = match body {
        Ok(body) => body,
        Err(why) => return Reprocessed::Error(why),
    };
    let payload = match decode_turn_verbatim(&body) {
        Ok((payload, _)) => payload,
        Err(e) => return Reprocessed::StillFailing(Rejection::from(e).to_string()),
    };
    if let Err(e) = payload.validate_session() {
        return Reprocessed::StillFailing(Rejection::from(e).to_string());
    }
    let Ok(intake) = intake_under(
        payload,
        None,
        true,
        prices,
        &mut Unlimited,
        summary.received_at,
        rules,
    ) else {
        return Reprocessed::Error("the raw response needs more memory than allowed".into());
    };
    let mut turn = match intake.prepared {
        Ok(prepared) => prepared.turn,
        Err(rejection) => return Reprocessed::StillFailing(rejection.to_string()),
    };
    // The row's org is the one the server decided (the key's, in keys mode), which the
    // envelope need not name.
    turn.key.org_id = summary.org_id;
    let Some(raw) = turn.raw.take() else {
        return Reprocessed::Error("the derived turn kept no raw turn".into());
    };
    turn.raw = Some(Arc::new(Arc::unwrap_or_clone(raw).reprocessing(summary.id)));
    Reprocessed::Turn(Box::new(turn))
}
