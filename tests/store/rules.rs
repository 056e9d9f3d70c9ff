//! The rule set a database records (docs/hashing.md#rule-sets): a database that held chains
//! before rule sets existed is `tapes-f237b6e`; a new one records the configured rules (or
//! the default) the first time it is settled; a configured rule set that differs is refused.

use migration::{Migrator, MigratorTrait};
use reel::merkle::Rules;
use reel::store::{RulesError, record_rules, recorded_rules, settle_rules};

use crate::fixtures::*;
use crate::support::each_backend;

const OLD: &Rules = &Rules::TAPES_F237B6E;
const NEW: &Rules = &Rules::TAPES_6EA4DFC;

/// How many migrations come after the one that records the rule set, itself included.
fn from_chain_rules() -> u32 {
    let all = Migrator::migrations();
    let at = all
        .iter()
        .position(|m| m.name() == "m20261204_000001_chain_rules")
        .expect("the chain rules migration");
    (all.len() - at) as u32
}

#[tokio::test]
async fn a_database_with_chains_before_rule_sets_records_f237b6e() {
    each_backend(|t| async move {
        let db = t.connect().await;
        ingest(
            &db,
            Some(&envelope("claude", "old")),
            &session_fixture("old"),
        )
        .await;
        // Back to the schema before rule sets, with the chains kept, then up again.
        Migrator::down(&db, Some(from_chain_rules())).await.unwrap();
        Migrator::up(&db, None).await.unwrap();
        assert_eq!(recorded_rules(&db).await.unwrap(), Some(OLD));
        // Unset, the server adopts what the database records; set to it, it is accepted.
        assert_eq!(settle_rules(&db, None, NEW).await.unwrap(), OLD);
        assert_eq!(settle_rules(&db, Some(OLD), NEW).await.unwrap(), OLD);
        let refused = settle_rules(&db, Some(NEW), NEW).await.unwrap_err();
        assert!(
            matches!(
                refused,
                RulesError::Mismatch {
                    recorded: "tapes-f237b6e",
                    configured: "tapes-6ea4dfc"
                }
            ),
            "{refused}"
        );
        let message = refused.to_string();
        assert!(
            message.contains("reel rederive --rules tapes-6ea4dfc")
                && message.contains("chain.rules = \"tapes-f237b6e\""),
            "{message}"
        );
        assert_eq!(recorded_rules(&db).await.unwrap(), Some(OLD), "unchanged");
    })
    .await;
}

#[tokio::test]
async fn a_new_database_records_the_configured_rules_or_the_default() {
    each_backend(|t| async move {
        let db = t.connect().await;
        assert_eq!(recorded_rules(&db).await.unwrap(), None, "nothing yet");
        assert_eq!(settle_rules(&db, None, NEW).await.unwrap(), NEW);
        assert_eq!(recorded_rules(&db).await.unwrap(), Some(NEW));
        // Settled once, a later default does not move it.
        assert_eq!(settle_rules(&db, None, OLD).await.unwrap(), NEW);

        let other = t.connect().await;
        record_rules(&other, OLD).await.unwrap();
        assert_eq!(recorded_rules(&db).await.unwrap(), Some(OLD));
    })
    .await;

    each_backend(|t| async move {
        let db = t.connect().await;
        assert_eq!(settle_rules(&db, Some(OLD), NEW).await.unwrap(), OLD);
        assert_eq!(recorded_rules(&db).await.unwrap(), Some(OLD));
    })
    .await;
}
