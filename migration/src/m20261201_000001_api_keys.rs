//! reel's `api_keys`: the credentials that bind a client to one org
//! (docs/divergences.md#org-from-the-credential).
//!
//! A key is stored by its short public prefix (how operators name it) and the SHA-256 of the
//! whole secret (how the server finds it); the secret itself is never stored.

use sea_orm_migration::prelude::*;

use crate::script::{Script, scripted_migration};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000001_api_keys"
    }
}

const UP_POSTGRES: Script = &[
    "CREATE TABLE IF NOT EXISTS api_keys (
        prefix TEXT PRIMARY KEY,
        secret_hash TEXT NOT NULL,
        org_id UUID NOT NULL,
        label TEXT,
        created_at TIMESTAMPTZ NOT NULL,
        last_used_at TIMESTAMPTZ,
        expires_at TIMESTAMPTZ,
        revoked_at TIMESTAMPTZ,
        CONSTRAINT api_keys_secret_hash_uq UNIQUE (secret_hash)
    )",
    "CREATE INDEX IF NOT EXISTS api_keys_org_idx ON api_keys (org_id)",
];

const DOWN_POSTGRES: Script = &[
    "DROP INDEX IF EXISTS api_keys_org_idx",
    "DROP TABLE IF EXISTS api_keys",
];

/// Timestamps are RFC 3339 UTC text, UUIDs 16-byte blobs, as in the other tables.
const UP_SQLITE: Script = &[
    "CREATE TABLE IF NOT EXISTS api_keys (
        prefix TEXT NOT NULL PRIMARY KEY,
        secret_hash TEXT NOT NULL,
        org_id BLOB NOT NULL,
        label TEXT,
        created_at TEXT NOT NULL,
        last_used_at TEXT,
        expires_at TEXT,
        revoked_at TEXT,
        CONSTRAINT api_keys_secret_hash_uq UNIQUE (secret_hash)
    )",
    "CREATE INDEX IF NOT EXISTS api_keys_org_idx ON api_keys (org_id)",
];

const DOWN_SQLITE: Script = &[
    "DROP INDEX IF EXISTS api_keys_org_idx",
    "DROP TABLE IF EXISTS api_keys",
];

scripted_migration! {
    up: (UP_POSTGRES, UP_SQLITE),
    down: (DOWN_POSTGRES, DOWN_SQLITE),
}
