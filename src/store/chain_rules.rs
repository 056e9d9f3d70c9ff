//! The rule set a database's chains are hashed by, as the database records it
//! (docs/hashing.md#rule-sets): one row of `settings`, written by the migration for a
//! database that held chains before rule sets existed, by the first server or `reel
//! migrate` for a new one, and by `reel rederive` once every chain is rebuilt.

use entity::settings;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, EntityTrait, Set};

use super::StoreError;
use crate::merkle::Rules;

/// The `settings` row that names the rule set.
const SETTING: &str = "chain_rules";

/// Why a server or command cannot use a database's rule set.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error(
        "the database's chains are hashed by {recorded} but chain.rules is {configured}: run \
         `reel rederive --rules {configured}` to rebuild them under {configured}, or set \
         chain.rules = \"{recorded}\" (REEL_CHAIN_RULES) to keep serving them"
    )]
    Mismatch {
        recorded: &'static str,
        configured: &'static str,
    },
    #[error(
        "the database records the rule set {0:?}, which this build of reel does not know; \
         run a reel that knows it"
    )]
    Unknown(String),
    #[error("the database did not keep the rule set just recorded")]
    Lost,
    #[error("cannot read the database's rule set: {0}")]
    Store(#[from] StoreError),
}

/// The rule set the database records, if it records one.
pub async fn recorded_rules<C: ConnectionTrait>(
    db: &C,
) -> Result<Option<&'static Rules>, RulesError> {
    let row = settings::Entity::find_by_id(SETTING)
        .one(db)
        .await
        .map_err(StoreError::from)?;
    row.map(|row| Rules::named(&row.value).ok_or(RulesError::Unknown(row.value)))
        .transpose()
}

/// The rule set a server (or `reel migrate`) uses on this database: the one it records;
/// for a database that records none, `configured` or else `default`, recorded now. When
/// `configured` is given and the database records another, the answer is
/// [`RulesError::Mismatch`]. Two processes starting on a new database at once record the
/// same rules or one of them is refused: the row is inserted only when absent, then read.
pub async fn settle_rules<C: ConnectionTrait>(
    db: &C,
    configured: Option<&'static Rules>,
    default: &'static Rules,
) -> Result<&'static Rules, RulesError> {
    let recorded = match recorded_rules(db).await? {
        Some(rules) => rules,
        None => {
            let proposed = configured.unwrap_or(default);
            settings::Entity::insert(row(proposed))
                .on_conflict(
                    OnConflict::column(settings::Column::Name)
                        .do_nothing()
                        .to_owned(),
                )
                .exec_without_returning(db)
                .await
                .map_err(StoreError::from)?;
            recorded_rules(db).await?.ok_or(RulesError::Lost)?
        }
    };
    match configured {
        Some(configured) if configured != recorded => Err(RulesError::Mismatch {
            recorded: recorded.name,
            configured: configured.name,
        }),
        _ => Ok(recorded),
    }
}

/// Records `rules` as the database's rule set, replacing what it recorded.
pub async fn record_rules<C: ConnectionTrait>(db: &C, rules: &Rules) -> Result<(), StoreError> {
    settings::Entity::insert(row(rules))
        .on_conflict(
            OnConflict::column(settings::Column::Name)
                .update_column(settings::Column::Value)
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

fn row(rules: &Rules) -> settings::ActiveModel {
    settings::ActiveModel {
        name: Set(SETTING.to_owned()),
        value: Set(rules.name.to_owned()),
    }
}
