//! Reference migration 1776773689: the `nodes` table keyed by `hash`, with its indexes.

use sea_orm_migration::prelude::*;

use crate::script::{Script, run};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20260421_121449_baseline_nodes"
    }
}

const UP_POSTGRES: Script = &["CREATE TABLE IF NOT EXISTS nodes (
        hash TEXT PRIMARY KEY,
        parent_hash TEXT REFERENCES nodes(hash) ON DELETE SET NULL,
        bucket JSONB,
        type TEXT,
        role TEXT,
        content JSONB,
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
        created_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP
    )"];

/// SQLite spelling of the same table: JSON as `TEXT`, timestamps as RFC 3339 UTC text.
const UP_SQLITE: Script = &["CREATE TABLE IF NOT EXISTS nodes (
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
    )"];

/// The baseline indexes; the same statements on both backends. Shared with the session
/// tracking migration, which rebuilds the table on SQLite.
pub(crate) const INDEXES: Script = &[
    "CREATE INDEX IF NOT EXISTS node_parent_hash ON nodes (parent_hash)",
    "CREATE INDEX IF NOT EXISTS node_role ON nodes (role)",
    "CREATE INDEX IF NOT EXISTS node_model ON nodes (model)",
    "CREATE INDEX IF NOT EXISTS node_provider ON nodes (provider)",
    "CREATE INDEX IF NOT EXISTS node_agent_name ON nodes (agent_name)",
    "CREATE INDEX IF NOT EXISTS node_role_model ON nodes (role, model)",
    "CREATE INDEX IF NOT EXISTS node_project ON nodes (project)",
    "CREATE INDEX IF NOT EXISTS node_created_at ON nodes (created_at)",
];

const DOWN: Script = &["DROP TABLE IF EXISTS nodes"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, UP_POSTGRES, UP_SQLITE).await?;
        run(manager, INDEXES, INDEXES).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, DOWN, DOWN).await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
