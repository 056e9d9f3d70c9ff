//! Persistence: the only module that writes SQL.
//!
//! * [`connect`] and [`migrate`] open and prepare a database (SQLite or Postgres);
//!   [`settle_rules`] finds (or, for a new database, records) the rule set its chains are
//!   hashed by.
//! * [`Store`] owns how turns are committed: through the group writer (one task on SQLite,
//!   `group_writers` on Postgres), with the fallbacks that keep turns independent.
//!   The write path's statements are hand-written SQL (`sql::Sql`), one transaction per
//!   commit.
//! * [`list_nodes`], [`ancestry`] and [`identity_by_hash`] read through sea-orm, always
//!   within one org; so do the sessions read API's queries (`session_reads.rs`:
//!   [`list_sessions`] by keyset, [`session`], [`session_children`], [`turn_heads`],
//!   [`latest_head`]).
//! * Raw turns (`raw.rs`, `raw_chunks.rs`, `raw_prune.rs`): every captured turn kept
//!   verbatim, its request as content-defined chunks; an accepted turn's raw row commits
//!   with its nodes, a rejected one is quarantined under a byte budget
//!   ([`Store::quarantine`]); [`Store::raw_answer`] answers retries of a request id,
//!   [`Store::prune_raw`] applies retention; [`Store::list_raw`] and
//!   [`Store::quarantined`] list them (`raw_list.rs`), [`StoredRawTurn::payload`] rebuilds
//!   the body a turn was posted in (`raw_payload.rs`), [`reprocess`] derives a quarantined
//!   one again with today's parsers (`reprocess.rs`).
//! * [`Store::rebuild_session`] and [`Store::finish_rederive`] rebuild a database's chains
//!   under another rule set, one session per transaction (`rederive.rs`).
//! * [`TapesDb`] reads a database of the reference; [`Store::import_tapes_sessions`],
//!   [`Store::link_tapes_parents`] and [`Store::import_tapes_nodes`] copy its rows, hashes
//!   kept, linking nodes to sessions as the reference's backfill does (`tapes.rs`).
//! * [`create_key`], [`list_keys`], [`revoke_key`] and [`find_key`] manage the API keys
//!   that bind clients to orgs (only hashes of their secrets are stored).

mod chain_rules;
mod commit;
mod connect;
mod error;
mod ingest;
mod keys;
mod node_document;
mod node_row;
mod raw;
mod raw_chunks;
mod raw_list;
mod raw_payload;
mod raw_prune;
mod raw_rows;
mod reads;
mod rederive;
mod reprocess;
mod sanitize;
mod session_reads;
mod session_row;
mod sql;
mod tapes;
mod writer;

pub use chain_rules::{RulesError, record_rules, recorded_rules, settle_rules};
pub use commit::{CommitOptions, Results, Store};
pub use connect::{StoreOptions, connect, migrate};
pub use error::StoreError;
pub use keys::{
    ApiKey, CreatedKey, KEY_PREFIX, KeyError, Secret, SecretHash, create_key, find_key, list_keys,
    revoke_key, touch_key,
};
pub use raw::{
    Quarantined, RawAnswer, RawKey, RawOutcome, RawTurnSummary, Rejected, StoredRawTurn,
    prepare_ahead,
};
pub use raw_list::{QuarantineCursor, QuarantineFilter, RawFilter};
pub use raw_payload::RawPayload;
pub use raw_prune::PruneReport;
pub use reads::{
    MAX_ANCESTRY_DEPTH, NodeSummary, SessionIdentity, ancestry, identity_by_hash, list_nodes,
};
pub use rederive::{Counters, Rebuild, SessionBefore};
pub use reprocess::{Reprocessed, reprocess};
pub use session_reads::{
    Direction, MAX_CHILDREN, SessionPage, SessionPosition, SessionQuery, SessionSort, SortKey,
    TurnHead, TurnPage, TurnPosition, latest_head, list_sessions, node_in_session, session,
    session_by_harness, session_children, turn_heads,
};
pub use tapes::{Linked, NaturalKey, PageWritten, TAPES_PAGE, TapesDb, TapesNode, TapesSession};
