//! Indexes for the sessions read API (`GET /v1/sessions…`): every listing is a keyset scan
//! of one index, whatever its sort, and a session's turns are a range of one index.
//!
//! * One `(org_id, <sort key>, id)` index per sort of `GET /v1/sessions`. The trailing `id`
//!   makes the key unique, so a cursor `(value, id)` is a range start: pages never overlap
//!   or skip rows, however many sessions are inserted meanwhile. A backward scan serves the
//!   other direction. `total_tokens` is an expression index on the two counters.
//! * `(org_id, auth_subject, last_seen_at, id)` for the `auth_subject` filter.
//! * `(parent_session_id, started_at, id)` lists a session's fork children in order; it
//!   replaces `sessions_parent_idx`, its prefix.
//! * `nodes (session_id, created_at, hash) WHERE is_turn_head` holds only turn heads: a
//!   session's turns in order, and its latest head, without reading its history nodes.
//!
//! `sessions_org_lastseen_idx (org_id, last_seen_at DESC)` is replaced by the first index,
//! which adds the `id`. The statements are the same on both backends.

use sea_orm_migration::prelude::*;

use crate::script::{Script, scripted_migration};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261204_000001_session_reads"
    }
}

const UP: Script = &[
    "CREATE INDEX IF NOT EXISTS sessions_org_last_seen_id_idx
        ON sessions (org_id, last_seen_at, id)",
    "CREATE INDEX IF NOT EXISTS sessions_org_started_id_idx ON sessions (org_id, started_at, id)",
    "CREATE INDEX IF NOT EXISTS sessions_org_turns_id_idx ON sessions (org_id, turn_count, id)",
    "CREATE INDEX IF NOT EXISTS sessions_org_cost_id_idx ON sessions (org_id, total_cost_usd, id)",
    "CREATE INDEX IF NOT EXISTS sessions_org_tokens_id_idx
        ON sessions (org_id, (total_input_tokens + total_output_tokens), id)",
    "CREATE INDEX IF NOT EXISTS sessions_org_subject_last_seen_idx
        ON sessions (org_id, auth_subject, last_seen_at, id)",
    "CREATE INDEX IF NOT EXISTS sessions_parent_started_idx
        ON sessions (parent_session_id, started_at, id)",
    "CREATE INDEX IF NOT EXISTS nodes_session_heads_idx
        ON nodes (session_id, created_at, hash) WHERE is_turn_head",
    "DROP INDEX IF EXISTS sessions_org_lastseen_idx",
    "DROP INDEX IF EXISTS sessions_parent_idx",
];

const DOWN: Script = &[
    "CREATE INDEX IF NOT EXISTS sessions_org_lastseen_idx ON sessions (org_id, last_seen_at DESC)",
    "CREATE INDEX IF NOT EXISTS sessions_parent_idx ON sessions (parent_session_id)",
    "DROP INDEX IF EXISTS nodes_session_heads_idx",
    "DROP INDEX IF EXISTS sessions_parent_started_idx",
    "DROP INDEX IF EXISTS sessions_org_subject_last_seen_idx",
    "DROP INDEX IF EXISTS sessions_org_tokens_id_idx",
    "DROP INDEX IF EXISTS sessions_org_cost_id_idx",
    "DROP INDEX IF EXISTS sessions_org_turns_id_idx",
    "DROP INDEX IF EXISTS sessions_org_started_id_idx",
    "DROP INDEX IF EXISTS sessions_org_last_seen_id_idx",
];

scripted_migration! {
    up: (UP, UP),
    down: (DOWN, DOWN),
}
