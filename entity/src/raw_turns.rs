//! A captured turn kept verbatim: accepted (its nodes are stored, `session_id` and
//! `head_hash` name them) or rejected (quarantined with its error, no nodes).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "raw_turns")]
pub struct Model {
    /// UUIDv7 minted by the server when the row is inserted.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    /// `meta.request_id`; NULL when none was sent. Unique per org where present.
    pub request_id: Option<String>,
    /// SHA-256 of `request_id`, the unique key (ids have no length limit, index entries do).
    pub request_key: Option<Vec<u8>>,
    /// The session of an accepted turn.
    pub session_id: Option<Uuid>,
    pub harness_id: Option<String>,
    pub harness_session_id: Option<String>,
    pub provider: String,
    pub agent_name: String,
    pub received_at: DateTimeUtc,
    /// `accepted` or `rejected`.
    pub outcome: String,
    /// The HTTP status answered: 202 or 422.
    pub status: i32,
    /// Error class of a rejected turn.
    pub reason: Option<String>,
    /// Full error text of a rejected turn.
    pub error: Option<String>,
    pub head_hash: Option<String>,
    /// Bytes of the request as received.
    pub request_size: i64,
    /// List levels under `request_list`.
    pub request_levels: i32,
    /// The request's top chunk list: concatenated SHA-256 hashes.
    pub request_list: Vec<u8>,
    /// JSON text.
    pub response: Option<String>,
    pub response_reduced: bool,
    /// JSON text, `{}` when none was sent.
    pub meta: String,
    /// JSON text of the session envelope as sent.
    pub envelope: Option<String>,
    /// Still under `raw_response_encoding`.
    pub raw_response: Option<Vec<u8>>,
    pub raw_response_encoding: String,
    pub raw_response_dropped: bool,
    pub truncated: bool,
    /// Bytes this row added to storage: its own values and the chunks it inserted.
    pub stored_bytes: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
