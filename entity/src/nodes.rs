//! One content-addressed node of a conversation, keyed by `(org_id, hash)`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "nodes")]
pub struct Model {
    /// The nil UUID is the "no org" sentinel.
    #[sea_orm(primary_key, auto_increment = false)]
    pub org_id: Uuid,
    /// 64 lowercase hex characters.
    #[sea_orm(primary_key, auto_increment = false)]
    pub hash: String,
    /// `None` for a conversation root. Not a foreign key: a node may arrive before its parent
    /// was ever stored under this org (e.g. after a destructive down migration).
    pub parent_hash: Option<String>,
    /// The stored bucket (v1 JSON of the unprojected bucket).
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub bucket: Option<Json>,
    #[sea_orm(column_name = "type")]
    pub kind: Option<String>,
    pub role: Option<String>,
    /// The bucket's content array (`null` when the message had no content).
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub content: Option<Json>,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub agent_name: Option<String>,
    pub stop_reason: Option<String>,
    pub prompt_tokens: Option<i32>,
    pub completion_tokens: Option<i32>,
    pub total_tokens: Option<i32>,
    pub cache_creation_input_tokens: Option<i32>,
    pub cache_read_input_tokens: Option<i32>,
    pub total_duration_ns: Option<i64>,
    pub prompt_duration_ns: Option<i64>,
    pub project: Option<String>,
    pub created_at: DateTimeUtc,
    /// The session whose commit first inserted this node (first writer wins).
    pub session_id: Option<Uuid>,
    /// True once the node was ingested as the head (response) of a turn; the turn was then
    /// counted in its session.
    pub is_turn_head: bool,
    /// What the node is to its conversation (`main`, `unknown`, `offshoot:*`, `injected:*`)
    /// under rules with node kinds; NULL under `tapes-f237b6e`. Not hashed; first writer wins.
    pub node_kind: Option<String>,
    /// The harness sub-thread (`meta.thread_id`) of the turn that first stored the node;
    /// NULL for the main thread and under rules without node metadata. Not hashed.
    pub thread_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::sessions::Entity",
        from = "Column::SessionId",
        to = "super::sessions::Column::Id"
    )]
    Session,
}

impl Related<super::sessions::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Session.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
