//! Raw turns: every captured turn kept verbatim (docs/storage.md#raw-turns).
//!
//! * `raw_chunks`: content-defined chunks of request bytes and the hash lists that order
//!   them, addressed by `(org_id, SHA-256 of the uncompressed bytes)`, zstd-compressed.
//! * `raw_turns`: one row per captured turn, accepted or quarantined, holding the top list
//!   of its request and every other captured value verbatim. `(org_id, request_id)` is
//!   unique where a request id was sent (the first row wins), through `request_key`, the
//!   id's SHA-256: ids have no length limit, and a Postgres index entry holds at most
//!   about 2.7 KB.
//! * `raw_quota`: per org, the bytes its quarantined turns hold, charged against a budget.
//!
//! On Postgres `raw_turns.seq` numbers rows in insertion order. Retention uses it to find
//! the rows inserted while it marked live chunks outside its lock; SQLite prunes under its
//! one write lock and needs no such column.

use sea_orm_migration::prelude::*;

use crate::script::{Script, scripted_migration};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261203_000001_raw_turns"
    }
}

const UP_POSTGRES: Script = &[
    "CREATE TABLE IF NOT EXISTS raw_chunks (
        org_id UUID NOT NULL,
        hash BYTEA NOT NULL,
        size INT NOT NULL,
        data BYTEA NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (org_id, hash)
    )",
    "CREATE TABLE IF NOT EXISTS raw_turns (
        id UUID PRIMARY KEY,
        seq BIGINT GENERATED ALWAYS AS IDENTITY,
        org_id UUID NOT NULL,
        request_id TEXT,
        request_key BYTEA,
        session_id UUID REFERENCES sessions(id),
        harness_id TEXT,
        harness_session_id TEXT,
        provider TEXT NOT NULL,
        agent_name TEXT NOT NULL,
        received_at TIMESTAMPTZ NOT NULL,
        outcome TEXT NOT NULL CHECK (outcome IN ('accepted', 'rejected')),
        status INT NOT NULL,
        reason TEXT,
        error TEXT,
        head_hash TEXT,
        request_size BIGINT NOT NULL,
        request_levels INT NOT NULL,
        request_list BYTEA NOT NULL,
        response TEXT,
        response_reduced BOOLEAN NOT NULL,
        meta TEXT NOT NULL,
        envelope TEXT,
        raw_response BYTEA,
        raw_response_encoding TEXT NOT NULL,
        raw_response_dropped BOOLEAN NOT NULL,
        truncated BOOLEAN NOT NULL,
        stored_bytes BIGINT NOT NULL
    )",
    "CREATE UNIQUE INDEX IF NOT EXISTS raw_turns_request_uq ON raw_turns (org_id, request_key)
        WHERE request_key IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS raw_turns_session_idx ON raw_turns (session_id, id)",
    "CREATE INDEX IF NOT EXISTS raw_turns_org_idx ON raw_turns (org_id, id)",
    "CREATE INDEX IF NOT EXISTS raw_turns_outcome_idx ON raw_turns (outcome, received_at)",
    "CREATE INDEX IF NOT EXISTS raw_turns_seq_idx ON raw_turns (seq)",
    "CREATE TABLE IF NOT EXISTS raw_quota (
        org_id UUID PRIMARY KEY,
        quarantined_bytes BIGINT NOT NULL DEFAULT 0
    )",
];

const DOWN: Script = &[
    "DROP TABLE IF EXISTS raw_quota",
    "DROP TABLE IF EXISTS raw_turns",
    "DROP TABLE IF EXISTS raw_chunks",
];

/// UUIDs are 16-byte blobs, timestamps RFC 3339 UTC text, as in the other tables.
const UP_SQLITE: Script = &[
    "CREATE TABLE IF NOT EXISTS raw_chunks (
        org_id BLOB NOT NULL,
        hash BLOB NOT NULL,
        size INTEGER NOT NULL,
        data BLOB NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (org_id, hash)
    )",
    "CREATE TABLE IF NOT EXISTS raw_turns (
        id BLOB NOT NULL PRIMARY KEY,
        org_id BLOB NOT NULL,
        request_id TEXT,
        request_key BLOB,
        session_id BLOB REFERENCES sessions(id),
        harness_id TEXT,
        harness_session_id TEXT,
        provider TEXT NOT NULL,
        agent_name TEXT NOT NULL,
        received_at TEXT NOT NULL,
        outcome TEXT NOT NULL CHECK (outcome IN ('accepted', 'rejected')),
        status INTEGER NOT NULL,
        reason TEXT,
        error TEXT,
        head_hash TEXT,
        request_size BIGINT NOT NULL,
        request_levels INTEGER NOT NULL,
        request_list BLOB NOT NULL,
        response TEXT,
        response_reduced BOOLEAN NOT NULL,
        meta TEXT NOT NULL,
        envelope TEXT,
        raw_response BLOB,
        raw_response_encoding TEXT NOT NULL,
        raw_response_dropped BOOLEAN NOT NULL,
        truncated BOOLEAN NOT NULL,
        stored_bytes BIGINT NOT NULL
    )",
    "CREATE UNIQUE INDEX IF NOT EXISTS raw_turns_request_uq ON raw_turns (org_id, request_key)
        WHERE request_key IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS raw_turns_session_idx ON raw_turns (session_id, id)",
    "CREATE INDEX IF NOT EXISTS raw_turns_org_idx ON raw_turns (org_id, id)",
    "CREATE INDEX IF NOT EXISTS raw_turns_outcome_idx ON raw_turns (outcome, received_at)",
    "CREATE TABLE IF NOT EXISTS raw_quota (
        org_id BLOB NOT NULL PRIMARY KEY,
        quarantined_bytes BIGINT NOT NULL DEFAULT 0
    )",
];

scripted_migration! {
    up: (UP_POSTGRES, UP_SQLITE),
    down: (DOWN, DOWN),
}
