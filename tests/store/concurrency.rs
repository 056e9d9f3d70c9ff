//! Several writers on one session at once: the database, not the caller, makes counting
//! exact. On Postgres this stands for several reel processes sharing one database.

use std::sync::Arc;

use reel::merkle::Chain;
use reel::wire::SessionEnvelope;

use crate::fixtures::*;
use crate::support::each_backend;

const TASKS: usize = 16;
const DISTINCT: usize = 200;
const COPIES: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_writers_count_every_distinct_turn_once() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let env = Arc::new(envelope("claude", "contended"));
        // Distinct turns share their root, so writers also race on inserting that node.
        let mut jobs: Vec<Arc<Chain>> = (0..DISTINCT)
            .map(|i| {
                Arc::new(conversation(
                    &[
                        ("system", "shared root"),
                        ("user", &format!("question {i}")),
                    ],
                    &format!("answer {i}"),
                ))
            })
            .collect();
        let copy = Arc::new(conversation(
            &[("system", "shared root"), ("user", "again")],
            "same",
        ));
        // Interleave so copies of the same turn run concurrently with distinct ones.
        for i in 0..COPIES {
            jobs.insert((i * 2).min(jobs.len()), copy.clone());
        }

        let per_task = jobs.len().div_ceil(TASKS);
        let mut handles = Vec::new();
        for chunk in jobs.chunks(per_task) {
            let (db, env, chunk) = (db.clone(), env.clone(), chunk.to_vec());
            handles.push(tokio::spawn(async move {
                let mut counted = 0;
                for chain in chunk {
                    let env: &SessionEnvelope = &env;
                    let out = try_ingest(&db, Some(env), &chain, TOKENS, None).await?;
                    counted += usize::from(out.counted);
                }
                Ok::<_, reel::store::StoreError>(counted)
            }));
        }
        let mut counted = 0;
        for handle in handles {
            counted += handle
                .await
                .expect("task")
                .unwrap_or_else(|e| panic!("{:?}: a writer failed: {e}", t.backend));
        }

        assert_eq!(counted, DISTINCT + 1, "{:?}", t.backend);
        let rows = all_sessions(&db).await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].turn_count as usize, DISTINCT + 1);
        assert_eq!(rows[0].total_input_tokens, 12 * (DISTINCT as i64 + 1));
        // Root, then per distinct turn a question and an answer, plus the copied turn's two.
        assert_eq!(all_nodes(&db).await.len(), 1 + 2 * DISTINCT + 2);
    })
    .await;
}
