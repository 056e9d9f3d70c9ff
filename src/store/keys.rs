//! API keys: minting, listing, revoking, and the lookup the HTTP layer authenticates with.
//!
//! A key reads `reel_<prefix>_<secret>`: the 8-hex-digit prefix names the key in listings
//! and logs, the 64-hex-digit secret is 256 bits from the OS generator. Only the SHA-256 of
//! the whole key is stored, and a presented key is found by that hash, so nothing compares
//! secrets byte by byte and a database dump holds no usable credential.

use std::fmt;

use chrono::{DateTime, Utc};
use entity::api_keys;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::StoreError;

/// What every key starts with, so secret scanners and humans recognise one.
pub const KEY_PREFIX: &str = "reel_";
const PREFIX_BYTES: usize = 4;
const SECRET_BYTES: usize = 32;

/// A whole key as the client presents it. Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: impl Into<String>) -> Self {
        Secret(text.into())
    }

    /// The key itself: only for printing it once at creation.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The SHA-256 the database stores and the lookup uses.
    pub fn hash(&self) -> SecretHash {
        SecretHash(Sha256::digest(self.0.as_bytes()).into())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

/// The SHA-256 of a key: what caches and the database are keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    fn to_hex(self) -> String {
        hex::encode(self.0)
    }
}

/// A stored key, without anything secret.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    pub prefix: String,
    pub org_id: Uuid,
    pub label: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// Whether the key authenticates at `now`: not revoked and not expired.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| now < at)
    }
}

impl From<api_keys::Model> for ApiKey {
    fn from(m: api_keys::Model) -> Self {
        ApiKey {
            prefix: m.prefix,
            org_id: m.org_id,
            label: m.label,
            created_at: m.created_at,
            last_used_at: m.last_used_at,
            expires_at: m.expires_at,
            revoked_at: m.revoked_at,
        }
    }
}

/// Why a key could not be minted.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the OS random generator failed: {0}")]
    Random(getrandom::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A freshly minted key: the only time its secret exists outside the client.
#[derive(Debug)]
pub struct CreatedKey {
    pub key: ApiKey,
    pub secret: Secret,
}

/// Mints a key for `org_id` and stores its hash.
pub async fn create_key(
    db: &DatabaseConnection,
    org_id: Uuid,
    label: Option<String>,
    expires_at: Option<DateTime<Utc>>,
) -> Result<CreatedKey, KeyError> {
    let mut bytes = [0u8; PREFIX_BYTES + SECRET_BYTES];
    getrandom::fill(&mut bytes).map_err(KeyError::Random)?;
    let prefix = hex::encode(&bytes[..PREFIX_BYTES]);
    let secret = Secret(format!(
        "{KEY_PREFIX}{prefix}_{}",
        hex::encode(&bytes[PREFIX_BYTES..])
    ));
    // Whole seconds: SQLite keeps timestamps as text, Postgres as microseconds, and a listing
    // should read the same on both.
    let now = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap_or_else(Utc::now);
    let model = api_keys::ActiveModel {
        prefix: Set(prefix),
        secret_hash: Set(secret.hash().to_hex()),
        org_id: Set(org_id),
        label: Set(label),
        created_at: Set(now),
        last_used_at: Set(None),
        expires_at: Set(expires_at),
        revoked_at: Set(None),
    }
    .insert(db)
    .await
    .map_err(StoreError::from)?;
    Ok(CreatedKey {
        key: model.into(),
        secret,
    })
}

/// Every key, or those of `org_id`, oldest first.
pub async fn list_keys(
    db: &DatabaseConnection,
    org_id: Option<Uuid>,
) -> Result<Vec<ApiKey>, StoreError> {
    let mut query = api_keys::Entity::find();
    if let Some(org) = org_id {
        query = query.filter(api_keys::Column::OrgId.eq(org));
    }
    let rows = query
        .order_by_asc(api_keys::Column::CreatedAt)
        .order_by_asc(api_keys::Column::Prefix)
        .all(db)
        .await?;
    Ok(rows.into_iter().map(ApiKey::from).collect())
}

/// Revokes the key named `prefix`; `false` when there is no such key or it was revoked
/// already (the first revocation time is kept).
pub async fn revoke_key(db: &DatabaseConnection, prefix: &str) -> Result<bool, StoreError> {
    let result = api_keys::Entity::update_many()
        .col_expr(api_keys::Column::RevokedAt, Utc::now().into())
        .filter(api_keys::Column::Prefix.eq(prefix))
        .filter(api_keys::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected > 0)
}

/// The key whose secret hashes to `hash`, revoked and expired ones included (the caller
/// decides with [`ApiKey::is_active`]).
pub async fn find_key(
    db: &DatabaseConnection,
    hash: SecretHash,
) -> Result<Option<ApiKey>, StoreError> {
    let row = api_keys::Entity::find()
        .filter(api_keys::Column::SecretHash.eq(hash.to_hex()))
        .one(db)
        .await?;
    Ok(row.map(ApiKey::from))
}

/// Records that the key was used at `at`.
pub async fn touch_key(
    db: &DatabaseConnection,
    prefix: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    api_keys::Entity::update_many()
        .col_expr(api_keys::Column::LastUsedAt, at.into())
        .filter(api_keys::Column::Prefix.eq(prefix))
        .exec(db)
        .await?;
    Ok(())
}
