//! An API key: a credential bound to one org, found by the SHA-256 of its secret.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    /// The key's public identifier (`reel_<prefix>_…`), shown by `reel keys list`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub prefix: String,
    /// Lowercase hex SHA-256 of the whole secret; the secret itself is never stored.
    pub secret_hash: String,
    pub org_id: Uuid,
    pub label: Option<String>,
    pub created_at: DateTimeUtc,
    /// Written at most about once a minute per key and server.
    pub last_used_at: Option<DateTimeUtc>,
    pub expires_at: Option<DateTimeUtc>,
    pub revoked_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
