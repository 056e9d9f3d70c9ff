//! Importing in-process: the steps of `POST /v1/ingest` against the configured database.
//!
//! A body is decoded as the server decodes it, a stored request id is answered from its
//! raw turn, the turn goes through `turn::intake_under` the database's rules, a 422 is quarantined, and an accepted turn
//! is committed by its session's actor (`sessions::Registry`), which writes through
//! `Store::commit` as it does for the server.

use std::sync::Arc;

use bytes::Bytes;
use chrono::Utc;
use uuid::Uuid;

use super::request_id;
use super::{ImportError, Outcome};
use crate::capture::encoding::Unlimited;
use crate::config::CaptureConfig;
use crate::cost::PriceBook;
use crate::merkle::Rules;
use crate::sessions::{Registry, SubmitError};
use crate::store::{Quarantined, RawKey, RawOutcome, Rejected, Store};
use crate::turn::{Committed, Rejection, Turn, intake_under};
use crate::wire::{TurnPayload, decode_turn_verbatim, decode_turn_with_repairs, parse_org_id};

/// What the first steps made of a body.
pub enum Step {
    /// Settled without a commit.
    Done(Outcome),
    /// Ready for its session's actor (boxed: a turn is large beside an outcome).
    Commit(Box<Turn>),
}

/// The in-process ingest path.
pub struct Local {
    pub store: Store,
    pub registry: Registry,
    pub prices: Arc<PriceBook>,
    /// The database's chain rules.
    pub rules: &'static Rules,
    pub capture: CaptureConfig,
    /// The org every turn is imported into, as an API key's would be.
    pub org: Option<Uuid>,
}

impl Local {
    /// Decodes `body`, answers a stored request id, and runs the capture steps and
    /// `prepare`. `Err` only when the database is unreachable.
    pub async fn step(&self, body: Vec<u8>) -> Result<Step, ImportError> {
        let keep_raw = self.capture.raw;
        let derived = keep_raw.then(|| request_id::derived(&body));
        let bytes = Bytes::from(body);
        let decoded = if keep_raw {
            decode_turn_verbatim(&bytes)
        } else {
            decode_turn_with_repairs(&bytes)
        };
        let (mut payload, repairs) = match decoded {
            Ok(decoded) => decoded,
            Err(e) => return Ok(Step::Done(Outcome::rejected(&Rejection::from(e)))),
        };
        if let Err(e) = payload.validate_session() {
            return Ok(Step::Done(Outcome::rejected(&Rejection::from(e))));
        }
        if self.names_another_org(&payload) {
            return Ok(Step::Done(Outcome::Rejected("org_mismatch".into())));
        }
        let received = payload
            .request_span
            .clone()
            .filter(|span| repairs.invalid_utf8 == 0 && span.end <= bytes.len())
            .map(|span| bytes.slice(span));
        let key = RawKey::of(&payload, self.org);
        if let Some(derived) = derived {
            let request_id = ensure_request_id(&mut payload, derived);
            let answer = self
                .store
                .raw_answer(key.org_id, &request_id)
                .await
                .map_err(ImportError::store)?;
            if let Some(answer) = answer {
                return Ok(Step::Done(Outcome::Duplicate {
                    quarantined: answer.outcome == RawOutcome::Rejected,
                }));
            }
        }
        let Ok(intake) = intake_under(
            payload,
            received,
            keep_raw,
            &self.prices,
            &mut Unlimited,
            Utc::now(),
            self.rules,
        ) else {
            return Ok(Step::Done(Outcome::Rejected("overloaded".into())));
        };
        let reduction_failed = matches!(intake.reduced, Some(crate::turn::Reduced::Failed(_)));
        match intake.prepared {
            Ok(prepared) => {
                let mut turn = prepared.turn;
                turn.key.org_id = self.org.unwrap_or(turn.key.org_id);
                Ok(Step::Commit(Box::new(turn)))
            }
            Err(rejection) => {
                self.quarantine(&key, intake.rejected_raw, &rejection, reduction_failed)
                    .await
            }
        }
    }

    /// With `--org`, an envelope naming another org is refused, as a key's server refuses it.
    fn names_another_org(&self, payload: &TurnPayload) -> bool {
        let (Some(org), Some(envelope)) = (self.org, &payload.session) else {
            return false;
        };
        let named = envelope.org_id.trim();
        !named.is_empty() && parse_org_id(named).is_ok_and(|id| id != org)
    }

    /// Keeps a 422 as a quarantined raw turn, as the server does.
    async fn quarantine(
        &self,
        key: &RawKey,
        raw: Option<crate::turn::RawTurn>,
        rejection: &Rejection,
        reduction_failed: bool,
    ) -> Result<Step, ImportError> {
        let reason = rejection.quarantine_reason(reduction_failed);
        let outcome = Outcome::Rejected(reason.to_owned());
        let Some(raw) = raw.filter(|_| self.capture.quarantine && rejection.status_code() == 422)
        else {
            return Ok(Step::Done(outcome));
        };
        let rejected = Rejected {
            status: rejection.status_code(),
            reason: reason.to_owned(),
            error: rejection.to_string(),
        };
        let budget = self.capture.quarantine_bytes_per_org;
        match self.store.quarantine(key, &raw, &rejected, budget).await {
            Ok(Quarantined::Duplicate(_)) => {
                Ok(Step::Done(Outcome::Duplicate { quarantined: true }))
            }
            Ok(Quarantined::Stored(_) | Quarantined::OverBudget) => Ok(Step::Done(outcome)),
            Err(e) if e.is_retryable() => Err(ImportError::store(e)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot quarantine a rejected turn");
                Ok(Step::Done(outcome))
            }
        }
    }

    /// Commits `turn` through its session's actor.
    pub async fn commit(registry: Registry, turn: Turn) -> Result<Outcome, ImportError> {
        let submitted = match registry.handle(turn.key.clone()) {
            Ok(mut handle) => handle.submit(turn).await,
            Err(e) => Err(e),
        };
        committed(submitted)
    }
}

/// The payload's request id, setting the derived one (in `meta` and in the `meta` text
/// its raw turn keeps) when it has none.
fn ensure_request_id(payload: &mut TurnPayload, derived: String) -> String {
    let meta = payload.meta.get_or_insert_default();
    if !meta.request_id.is_empty() {
        return meta.request_id.clone();
    }
    meta.request_id.clone_from(&derived);
    let text = request_id::meta_with(payload.verbatim.meta.as_deref().map(|m| m.get()), &derived);
    payload.verbatim.meta = serde_json::value::RawValue::from_string(text).ok();
    derived
}

/// How a commit's result counts. An outage ends the import: every later turn would fail
/// alike, and a second run takes up where this one stopped.
fn committed(result: Result<Committed, SubmitError>) -> Result<Outcome, ImportError> {
    match result {
        Ok(c) if c.new_nodes.is_empty() && !c.counted => {
            Ok(Outcome::Duplicate { quarantined: false })
        }
        Ok(_) => Ok(Outcome::Accepted),
        Err(e) if e.is_unavailable() => Err(ImportError::Unavailable(e.to_string())),
        Err(e) if e.overload().is_some() => Ok(Outcome::Rejected("overloaded".into())),
        Err(SubmitError::InvalidChain(_)) => Ok(Outcome::Rejected("invalid_chain".into())),
        Err(e) => {
            tracing::warn!(error = %e, "a turn could not be committed");
            Ok(Outcome::Rejected("database_error".into()))
        }
    }
}
