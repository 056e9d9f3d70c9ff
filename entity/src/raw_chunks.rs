//! A chunk of raw request bytes, or of a hash list that orders such chunks, addressed per
//! org by the SHA-256 of its uncompressed bytes.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "raw_chunks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub org_id: Uuid,
    /// SHA-256 of the uncompressed bytes (32 bytes).
    #[sea_orm(primary_key, auto_increment = false)]
    pub hash: Vec<u8>,
    /// Uncompressed size in bytes.
    pub size: i32,
    /// The bytes, zstd-compressed.
    pub data: Vec<u8>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
