//! sea-orm entities of reel's schema: `nodes`, `sessions`, `api_keys`, the raw turns
//! (`raw_turns`, `raw_chunks`, `raw_quota`) and the database's own `settings`.
//!
//! The schema itself is written by the `migration` crate; these entities only describe it.
//! How values are stored per backend:
//!
//! * **UUIDs** are `UUID` on Postgres and 16-byte `BLOB`s on SQLite (the encoding sea-orm and
//!   sqlx bind a [`uuid::Uuid`] with). SQLite compares blobs with `memcmp`, i.e. byte by byte
//!   like Postgres compares `uuid`, so equality and ordering agree on both backends and UUIDv7
//!   ids sort by creation time.
//! * **Timestamps** are `TIMESTAMPTZ` on Postgres and RFC 3339 UTC text on SQLite
//!   (`2026-05-21T02:05:42.123456+00:00`). Every timestamp is written in UTC by the store, so
//!   the text sorts chronologically.
//! * **JSON** is `JSONB` on Postgres and `TEXT` on SQLite.
//! * **Cost** is `NUMERIC(28,4)` on Postgres (the reference's `NUMERIC(12,4)` widened so
//!   that no reachable sum overflows); SQLite has no decimal type, so it keeps a `REAL`
//!   rounded to four decimals after every addition.
//! * **Bytes** are `BYTEA` on Postgres and `BLOB` on SQLite.

pub mod api_keys;
pub mod nodes;
pub mod raw_chunks;
pub mod raw_quota;
pub mod raw_turns;
pub mod sessions;
pub mod settings;

pub mod prelude {
    pub use super::api_keys::Entity as ApiKeys;
    pub use super::nodes::Entity as Nodes;
    pub use super::raw_chunks::Entity as RawChunks;
    pub use super::raw_quota::Entity as RawQuota;
    pub use super::raw_turns::Entity as RawTurns;
    pub use super::sessions::Entity as Sessions;
    pub use super::settings::Entity as Settings;
}
