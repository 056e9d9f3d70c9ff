//! `sessions.total_cost_usd` holds any sum reel can reach.
//!
//! The reference's `NUMERIC(12,4)` overflows at 10^8 USD, and a session near that refused
//! every later turn. A turn costs at most 4 × 10^9 USD (four token fields of at most 10^9
//! tokens, at most 10^6 USD per million tokens each) and a session counts at most 2^31 - 1
//! turns, so its sum stays below 8.6 × 10^18 USD. `NUMERIC(28,4)` holds that with room to
//! spare and is still read back exactly by the server's 96-bit decimals (28 significant
//! digits). SQLite stores the column as a `REAL`, which already holds such sums (rounded to
//! a double's precision), so its script is empty.

use sea_orm_migration::prelude::*;

use crate::script::{Script, scripted_migration};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000001_session_cost_range"
    }
}

const UP_POSTGRES: Script =
    &["ALTER TABLE sessions ALTER COLUMN total_cost_usd TYPE NUMERIC(28,4)"];

/// Fails when a stored sum no longer fits the reference's type.
const DOWN_POSTGRES: Script =
    &["ALTER TABLE sessions ALTER COLUMN total_cost_usd TYPE NUMERIC(12,4)"];

const SQLITE: Script = &[];

scripted_migration! {
    up: (UP_POSTGRES, SQLITE),
    down: (DOWN_POSTGRES, SQLITE),
}
