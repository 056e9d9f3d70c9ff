//! One harness session, keyed naturally by `(org_id, harness_id, harness_session_id)`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    /// UUIDv7 minted by the server when the row is first inserted.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub auth_subject: String,
    pub harness_id: String,
    pub harness_session_id: String,
    pub name: Option<String>,
    pub cwd: Option<String>,
    pub harness_version: Option<String>,
    /// The fork parent, possibly a placeholder row created by the child.
    pub parent_session_id: Option<Uuid>,
    pub started_at: DateTimeUtc,
    /// Moves only when a commit stored something new (nodes or a newly counted turn).
    pub last_seen_at: DateTimeUtc,
    /// Never written (as in the reference).
    pub ended_at: Option<DateTimeUtc>,
    /// Always a JSON object; turns shallow-merge theirs into it.
    #[sea_orm(column_type = "JsonBinary")]
    pub harness_metadata: Json,
    pub total_input_tokens: i64,
    pub total_output_tokens: i64,
    #[sea_orm(column_type = "Decimal(Some((28, 4)))")]
    pub total_cost_usd: Decimal,
    pub turn_count: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::nodes::Entity")]
    Nodes,
    #[sea_orm(
        belongs_to = "Entity",
        from = "Column::ParentSessionId",
        to = "Column::Id"
    )]
    Parent,
}

impl Related<super::nodes::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Nodes.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
