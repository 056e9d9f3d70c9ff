//! Reference migration 1779329142: the `sessions` table, and `nodes` re-keyed by
//! `(org_id, hash)` with a `session_id` link.
//!
//! The down migration is the reference's, destructive by design
//! (docs/divergences.md#destructive-down-migration): each hash keeps one row (the nil-org row
//! when there is one), and re-adding the parent foreign key fails when a node's parent is not
//! stored.

use sea_orm_migration::prelude::*;

use crate::m20260421_121449_baseline_nodes::INDEXES as BASELINE_INDEXES;
use crate::script::{Script, run};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20260521_020542_session_tracking"
    }
}

const UP_POSTGRES: Script = &[
    "CREATE TABLE IF NOT EXISTS sessions (
        id UUID PRIMARY KEY,
        org_id UUID NOT NULL,
        auth_subject TEXT NOT NULL,
        harness_id TEXT NOT NULL,
        harness_session_id TEXT NOT NULL,
        name TEXT,
        cwd TEXT,
        harness_version TEXT,
        parent_session_id UUID REFERENCES sessions(id),
        started_at TIMESTAMPTZ NOT NULL,
        last_seen_at TIMESTAMPTZ NOT NULL,
        ended_at TIMESTAMPTZ,
        harness_metadata JSONB NOT NULL DEFAULT '{}'::jsonb,
        total_input_tokens BIGINT NOT NULL DEFAULT 0,
        total_output_tokens BIGINT NOT NULL DEFAULT 0,
        total_cost_usd NUMERIC(12,4) NOT NULL DEFAULT 0,
        turn_count INT NOT NULL DEFAULT 0,
        CONSTRAINT sessions_harness_uq UNIQUE (org_id, harness_id, harness_session_id)
    )",
    "CREATE INDEX IF NOT EXISTS sessions_org_lastseen_idx ON sessions (org_id, last_seen_at DESC)",
    "CREATE INDEX IF NOT EXISTS sessions_auth_subject_idx ON sessions (auth_subject)",
    "CREATE INDEX IF NOT EXISTS sessions_parent_idx ON sessions (parent_session_id)",
    "ALTER TABLE nodes DROP CONSTRAINT IF EXISTS nodes_parent_hash_fkey",
    "ALTER TABLE nodes ADD COLUMN IF NOT EXISTS session_id UUID NULL REFERENCES sessions(id)",
    "ALTER TABLE nodes ADD COLUMN IF NOT EXISTS org_id UUID NOT NULL
        DEFAULT '00000000-0000-0000-0000-000000000000'",
    "ALTER TABLE nodes DROP CONSTRAINT IF EXISTS nodes_pkey",
    "ALTER TABLE nodes ADD CONSTRAINT nodes_pkey PRIMARY KEY (org_id, hash)",
];

const TRACKING_INDEXES: Script = &[
    "CREATE INDEX IF NOT EXISTS nodes_session_idx ON nodes (session_id)",
    "CREATE INDEX IF NOT EXISTS nodes_hash_idx ON nodes (hash)",
];

const DOWN_POSTGRES: Script = &[
    "DROP INDEX IF EXISTS nodes_hash_idx",
    // One row per hash: the nil-org row when there is one, else the first physical row.
    "DELETE FROM nodes WHERE ctid IN (
        SELECT ctid FROM (
            SELECT ctid, ROW_NUMBER() OVER (
                PARTITION BY hash
                ORDER BY (org_id = '00000000-0000-0000-0000-000000000000'::uuid) DESC, ctid
            ) AS keep_rank
            FROM nodes
        ) ranked
        WHERE ranked.keep_rank > 1
    )",
    "ALTER TABLE nodes DROP CONSTRAINT IF EXISTS nodes_pkey",
    "ALTER TABLE nodes ADD CONSTRAINT nodes_pkey PRIMARY KEY (hash)",
    "ALTER TABLE nodes ADD CONSTRAINT nodes_parent_hash_fkey
        FOREIGN KEY (parent_hash) REFERENCES nodes(hash) ON DELETE SET NULL",
    "ALTER TABLE nodes DROP COLUMN IF EXISTS org_id",
    "DROP INDEX IF EXISTS nodes_session_idx",
    "ALTER TABLE nodes DROP COLUMN IF EXISTS session_id",
    "DROP INDEX IF EXISTS sessions_org_lastseen_idx",
    "DROP INDEX IF EXISTS sessions_auth_subject_idx",
    "DROP INDEX IF EXISTS sessions_parent_idx",
    "DROP TABLE IF EXISTS sessions",
];

/// SQLite cannot change a primary key in place: `nodes` is rebuilt. Foreign keys are checked
/// at commit (`defer_foreign_keys`), so the copy may insert rows in any order.
const UP_SQLITE: Script = &[
    "PRAGMA defer_foreign_keys = ON",
    "CREATE TABLE IF NOT EXISTS sessions (
        id BLOB NOT NULL PRIMARY KEY,
        org_id BLOB NOT NULL,
        auth_subject TEXT NOT NULL,
        harness_id TEXT NOT NULL,
        harness_session_id TEXT NOT NULL,
        name TEXT,
        cwd TEXT,
        harness_version TEXT,
        parent_session_id BLOB REFERENCES sessions(id),
        started_at TEXT NOT NULL,
        last_seen_at TEXT NOT NULL,
        ended_at TEXT,
        harness_metadata TEXT NOT NULL DEFAULT '{}',
        total_input_tokens BIGINT NOT NULL DEFAULT 0,
        total_output_tokens BIGINT NOT NULL DEFAULT 0,
        total_cost_usd REAL NOT NULL DEFAULT 0,
        turn_count INTEGER NOT NULL DEFAULT 0,
        CONSTRAINT sessions_harness_uq UNIQUE (org_id, harness_id, harness_session_id)
    )",
    "CREATE INDEX IF NOT EXISTS sessions_org_lastseen_idx ON sessions (org_id, last_seen_at DESC)",
    "CREATE INDEX IF NOT EXISTS sessions_auth_subject_idx ON sessions (auth_subject)",
    "CREATE INDEX IF NOT EXISTS sessions_parent_idx ON sessions (parent_session_id)",
    "ALTER TABLE nodes RENAME TO nodes_baseline",
    "CREATE TABLE nodes (
        hash TEXT NOT NULL,
        parent_hash TEXT,
        bucket TEXT,
        type TEXT,
        role TEXT,
        content TEXT,
        model TEXT,
        provider TEXT,
        agent_name TEXT,
        stop_reason TEXT,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        total_tokens INTEGER,
        cache_creation_input_tokens INTEGER,
        cache_read_input_tokens INTEGER,
        total_duration_ns BIGINT,
        prompt_duration_ns BIGINT,
        project TEXT,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
        session_id BLOB REFERENCES sessions(id),
        org_id BLOB NOT NULL DEFAULT X'00000000000000000000000000000000',
        CONSTRAINT nodes_pkey PRIMARY KEY (org_id, hash)
    )",
    "INSERT INTO nodes (hash, parent_hash, bucket, type, role, content, model, provider,
            agent_name, stop_reason, prompt_tokens, completion_tokens, total_tokens,
            cache_creation_input_tokens, cache_read_input_tokens, total_duration_ns,
            prompt_duration_ns, project, created_at)
        SELECT hash, parent_hash, bucket, type, role, content, model, provider,
            agent_name, stop_reason, prompt_tokens, completion_tokens, total_tokens,
            cache_creation_input_tokens, cache_read_input_tokens, total_duration_ns,
            prompt_duration_ns, project, created_at
        FROM nodes_baseline",
    // The old table's indexes go with it; the rebuilt table gets them back below.
    "DROP TABLE nodes_baseline",
];

const DOWN_SQLITE: Script = &[
    "PRAGMA defer_foreign_keys = ON",
    "DROP INDEX IF EXISTS nodes_hash_idx",
    "DELETE FROM nodes WHERE rowid IN (
        SELECT rowid FROM (
            SELECT rowid, ROW_NUMBER() OVER (
                PARTITION BY hash
                ORDER BY (org_id = X'00000000000000000000000000000000') DESC, rowid
            ) AS keep_rank
            FROM nodes
        ) ranked
        WHERE ranked.keep_rank > 1
    )",
    "ALTER TABLE nodes RENAME TO nodes_tracked",
    "CREATE TABLE nodes (
        hash TEXT NOT NULL PRIMARY KEY,
        parent_hash TEXT REFERENCES nodes(hash) ON DELETE SET NULL,
        bucket TEXT,
        type TEXT,
        role TEXT,
        content TEXT,
        model TEXT,
        provider TEXT,
        agent_name TEXT,
        stop_reason TEXT,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        total_tokens INTEGER,
        cache_creation_input_tokens INTEGER,
        cache_read_input_tokens INTEGER,
        total_duration_ns BIGINT,
        prompt_duration_ns BIGINT,
        project TEXT,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'))
    )",
    "INSERT INTO nodes (hash, parent_hash, bucket, type, role, content, model, provider,
            agent_name, stop_reason, prompt_tokens, completion_tokens, total_tokens,
            cache_creation_input_tokens, cache_read_input_tokens, total_duration_ns,
            prompt_duration_ns, project, created_at)
        SELECT hash, parent_hash, bucket, type, role, content, model, provider,
            agent_name, stop_reason, prompt_tokens, completion_tokens, total_tokens,
            cache_creation_input_tokens, cache_read_input_tokens, total_duration_ns,
            prompt_duration_ns, project, created_at
        FROM nodes_tracked",
    "DROP TABLE nodes_tracked",
    "DROP TABLE IF EXISTS sessions",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, UP_POSTGRES, UP_SQLITE).await?;
        // Postgres altered the table in place and kept its indexes; SQLite rebuilt it.
        run(manager, &[], BASELINE_INDEXES).await?;
        run(manager, TRACKING_INDEXES, TRACKING_INDEXES).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, DOWN_POSTGRES, DOWN_SQLITE).await?;
        // The rebuilt SQLite table lost its indexes; Postgres kept them.
        run(manager, &[], BASELINE_INDEXES).await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
