//! The session ingest transaction (docs/storage.md#the-ingest-transaction): the reference's
//! cases and reel's corrections (docs/divergences.md).

use reel::merkle::Chain;
use reel::store::StoreError;
use sea_orm::prelude::Decimal;
use serde_json::json;
use uuid::Uuid;

use crate::fixtures::*;
use crate::support::each_backend;
use crate::support::reads;

#[tokio::test]
async fn happy_path_creates_the_session_inserts_nodes_and_bumps_counters() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let env = envelope("claude", "harness-happy");
        let chain = session_fixture("hello");

        let out = ingest(&db, Some(&env), &chain).await;

        assert_eq!(out.new_nodes, hashes(&chain), "{:?}", t.backend);
        assert!(out.counted);
        assert_eq!(out.head, chain.head().hash);
        let rows = all_sessions(&db).await;
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row.id, out.session_id);
        assert_eq!(row.org_id, Uuid::nil());
        assert_eq!(row.harness_id, "claude");
        assert_eq!(row.harness_session_id, "harness-happy");
        assert_eq!(row.auth_subject, "tester@example.com");
        assert_eq!(
            (
                row.turn_count,
                row.total_input_tokens,
                row.total_output_tokens
            ),
            (1, 12, 8)
        );
        assert_eq!(row.harness_metadata, json!({}));
        assert_eq!(row.started_at, row.last_seen_at);
        let stored = all_nodes(&db).await;
        assert_eq!(stored.len(), 2);
        assert!(stored.iter().all(|n| n.session_id == Some(row.id)));
    })
    .await;
}

#[tokio::test]
async fn stored_node_columns_follow_the_reference_mapping() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let chain = session_fixture("columns");
        ingest(&db, Some(&envelope("claude", "cols")), &chain).await;

        let root = node(&db, Uuid::nil(), &chain.root().hash).await;
        assert_eq!(root.parent_hash, None);
        assert_eq!(root.role.as_deref(), Some("user"));
        assert_eq!(root.kind.as_deref(), Some("message"));
        assert_eq!(root.agent_name.as_deref(), Some("tester"));
        assert_eq!(root.stop_reason, None);
        assert_eq!(root.prompt_tokens, None);
        assert_eq!(root.project, None, "no project configured");
        assert!(!root.is_turn_head);
        assert_eq!(
            root.content,
            Some(json!([{"type": "text", "text": "columns"}]))
        );
        assert_eq!(
            root.bucket,
            Some(json!({
                "type": "message", "role": "user",
                "content": [{"type": "text", "text": "columns"}],
                "model": "claude-test", "provider": "anthropic", "agent_name": "tester"
            }))
        );

        let head = node(&db, Uuid::nil(), &chain.head().hash).await;
        assert_eq!(
            head.parent_hash.as_deref(),
            Some(chain.root().hash.as_str())
        );
        assert!(head.is_turn_head);
        assert_eq!(head.stop_reason.as_deref(), Some("stop"));
        assert_eq!(
            (
                head.prompt_tokens,
                head.completion_tokens,
                head.total_tokens
            ),
            (Some(12), Some(8), Some(20))
        );
        assert_eq!(head.cache_read_input_tokens, Some(0), "zeros are stored");
        assert_eq!(head.total_duration_ns, Some(0));
        assert!(
            head.created_at > root.created_at,
            "chain order is creation order"
        );
    })
    .await;
}

/// A node without content stores JSON `null` in `content`, never SQL NULL, on both backends.
#[tokio::test]
async fn a_node_without_content_stores_json_null() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let root = message_node(None, "user", "empty reply");
        let mut reply = message_node(Some(&root.hash), "assistant", "");
        reply.bucket.content = None;
        reply.stop_reason = "stop".into();
        let chain = Chain {
            nodes: vec![root, reply],
        };
        ingest(&db, Some(&envelope("claude", "no-content")), &chain).await;
        let head = node(&db, Uuid::nil(), &chain.head().hash).await;
        assert_eq!(
            head.content,
            Some(serde_json::Value::Null),
            "{:?}",
            t.backend
        );
        assert!(head.bucket.is_some());
    })
    .await;
}

/// Two sessions of one org sending the same conversation in one transaction (as a group
/// commit writes them): the head is stored once and counted once, for the first session,
/// as when they commit one after the other.
#[tokio::test]
async fn identical_turns_of_two_sessions_in_one_transaction_count_once() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let chain = session_fixture("same words");
        let turns = [
            turn(Some(&envelope("claude", "twin-a")), &chain, TOKENS),
            turn(Some(&envelope("claude", "twin-b")), &chain, TOKENS),
        ];
        let committed = store(&db)
            .transaction(&turns, &KnownHashes::default())
            .await
            .expect("commit");
        assert_eq!(
            committed.iter().map(|c| c.counted).collect::<Vec<_>>(),
            [true, false],
            "{:?}",
            t.backend
        );
        assert_eq!(committed[0].new_nodes.len(), 2);
        assert!(committed[1].new_nodes.is_empty());
        let mut counts: Vec<(String, i32)> = all_sessions(&db)
            .await
            .into_iter()
            .map(|s| (s.harness_session_id, s.turn_count))
            .collect();
        counts.sort();
        assert_eq!(counts, [("twin-a".to_owned(), 1), ("twin-b".to_owned(), 0)]);
    })
    .await;
}

#[tokio::test]
async fn a_retried_turn_is_idempotent() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let env = envelope("claude", "harness-retry");
        let chain = session_fixture("retry");
        let tokens = Tokens {
            input: 10,
            output: 5,
            cost_usd: 0.25,
        };

        let first = ingest_with(&db, Some(&env), &chain, tokens).await;
        let before = session(&db, first.session_id).await;
        let second = ingest_with(&db, Some(&env), &chain, tokens).await;

        assert_eq!(second.session_id, first.session_id, "{:?}", t.backend);
        assert!(second.new_nodes.is_empty());
        assert!(!second.counted);
        assert_eq!(all_sessions(&db).await.len(), 1);
        let after = session(&db, first.session_id).await;
        assert_eq!((after.turn_count, after.total_input_tokens), (1, 10));
        // A full-duplicate retry changes nothing at all, not even last_seen_at
        // (docs/divergences.md#idempotent-retries).
        assert_eq!(after, before);
    })
    .await;
}

#[tokio::test]
async fn a_full_duplicate_retry_does_not_bump_counters() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let env = envelope("claude", "harness-dup");
        let chain = session_fixture("dup");
        ingest(&db, Some(&env), &chain).await;
        let again = ingest(&db, Some(&env), &chain).await;
        assert!(!again.counted);
        assert_eq!(session(&db, again.session_id).await.turn_count, 1);
    })
    .await;
}

#[tokio::test]
async fn a_turn_without_envelope_gets_the_unknown_harness_and_a_synthetic_id() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let chain = session_fixture("synthetic");
        let out = ingest(&db, None, &chain).await;
        let row = session(&db, out.session_id).await;
        assert_eq!(row.harness_id, "unknown");
        assert_eq!(row.harness_session_id, chain.root().hash[..16]);
        assert!(
            row.harness_session_id
                .bytes()
                .all(|b| b.is_ascii_hexdigit())
        );
        assert_eq!(row.org_id, Uuid::nil());
        assert_eq!(row.auth_subject, "");
    })
    .await;
}

#[tokio::test]
async fn an_envelope_without_session_id_keeps_its_harness_with_a_synthetic_id() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let chain = session_fixture("claude synthetic");
        let out = ingest(&db, Some(&envelope("claude", "")), &chain).await;
        let row = session(&db, out.session_id).await;
        assert_eq!(
            (row.harness_id.as_str(), row.harness_session_id.as_str()),
            ("claude", &chain.root().hash[..16])
        );
    })
    .await;
}

#[tokio::test]
async fn turns_of_a_conversation_insert_only_their_new_nodes_and_count_once_each() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let env = envelope("claude", "conversation");
        let turn1 = session_fixture("first");
        let turn2 = next_turn(&turn1, "second", "ok: second");

        let out1 = ingest(&db, Some(&env), &turn1).await;
        let out2 = ingest(&db, Some(&env), &turn2).await;

        assert_eq!(out2.new_nodes, hashes(&turn2)[2..].to_vec());
        assert!(out2.counted);
        let row = session(&db, out1.session_id).await;
        assert_eq!((row.turn_count, row.total_input_tokens), (2, 24));
        assert!(row.last_seen_at >= row.started_at);
        // Turn 1's head stays a head with its usage, though turn 2 re-sent it without.
        let head1 = node(&db, Uuid::nil(), &turn1.head().hash).await;
        assert!(head1.is_turn_head);
        assert_eq!(head1.prompt_tokens, Some(12));
    })
    .await;
}

/// Turn 2 (which carries turn 1's head as history) commits first; turn 1 arriving later is
/// still counted, and its head gets its usage and stop reason
/// (docs/divergences.md#counted-once).
#[tokio::test]
async fn a_turn_whose_head_arrived_first_as_history_is_counted_once_when_it_lands() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let env = envelope("claude", "out-of-order");
        let turn1 = session_fixture("early");
        let turn2 = next_turn(&turn1, "late", "ok: late");

        let out2 = ingest(&db, Some(&env), &turn2).await;
        assert!(out2.counted);
        let as_history = node(&db, Uuid::nil(), &turn1.head().hash).await;
        assert!(!as_history.is_turn_head);
        assert_eq!(as_history.prompt_tokens, None);
        assert_eq!(as_history.stop_reason, None);

        let before = session(&db, out2.session_id).await;
        let out1 = ingest(&db, Some(&env), &turn1).await;
        assert!(out1.counted, "{:?}", t.backend);
        assert!(out1.new_nodes.is_empty());
        let head1 = node(&db, Uuid::nil(), &turn1.head().hash).await;
        assert!(head1.is_turn_head);
        assert_eq!(head1.stop_reason.as_deref(), Some("stop"));
        assert_eq!(
            (head1.prompt_tokens, head1.completion_tokens),
            (Some(12), Some(8))
        );
        let after = session(&db, out2.session_id).await;
        assert_eq!(
            (
                after.turn_count,
                after.total_input_tokens,
                after.total_output_tokens
            ),
            (2, 24, 16)
        );
        assert!(after.last_seen_at >= before.last_seen_at);

        // And only once.
        let again = ingest(&db, Some(&env), &turn1).await;
        assert!(!again.counted);
        assert_eq!(session(&db, out2.session_id).await.turn_count, 2);
    })
    .await;
}

#[tokio::test]
async fn known_hashes_are_not_inserted_again_and_do_not_decide_counting() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let env = envelope("claude", "known");
        let turn1 = session_fixture("one");
        let turn2 = next_turn(&turn1, "two", "ok: two");
        let out1 = ingest(&db, Some(&env), &turn1).await;

        assert_eq!(out1.new_nodes, hashes(&turn1));
        let mut known = KnownHashes::with_capacity(usize::MAX);
        known.remember(&turn1);
        let out2 = try_ingest(&db, Some(&env), &turn2, TOKENS, Some(&known))
            .await
            .unwrap();
        assert_eq!(out2.new_nodes, hashes(&turn2)[2..].to_vec());
        assert!(out2.counted);

        // Everything known, head included: the head is still checked and counted once.
        let turn3 = next_turn(&turn2, "three", "ok: three");
        ingest(&db, Some(&env), &next_turn(&turn3, "four", "ok: four")).await;
        let mut all = KnownHashes::with_capacity(usize::MAX);
        all.remember(&turn3);
        let out3 = try_ingest(&db, Some(&env), &turn3, TOKENS, Some(&all))
            .await
            .unwrap();
        assert!(out3.new_nodes.is_empty());
        assert!(out3.counted, "{:?}", t.backend);
        let out3_again = try_ingest(&db, Some(&env), &turn3, TOKENS, Some(&all))
            .await
            .unwrap();
        assert!(!out3_again.counted);
        assert_eq!(session(&db, out1.session_id).await.turn_count, 4);
    })
    .await;
}

#[tokio::test]
async fn cost_is_added_with_four_decimals() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let env = envelope("claude", "cost");
        let turn1 = session_fixture("c1");
        let turn2 = next_turn(&turn1, "c2", "ok: c2");
        let turn3 = next_turn(&turn2, "c3", "ok: c3");
        let tokens = |cost_usd| Tokens {
            input: 1,
            output: 1,
            cost_usd,
        };
        ingest_with(&db, Some(&env), &turn1, tokens(0.1)).await;
        ingest_with(&db, Some(&env), &turn2, tokens(0.2)).await;
        let out = ingest_with(&db, Some(&env), &turn3, tokens(0.00004)).await;
        let row = session(&db, out.session_id).await;
        assert_eq!(
            row.total_cost_usd.round_dp(4),
            Decimal::new(3000, 4),
            "{:?}",
            t.backend
        );

        let bad = try_ingest(
            &db,
            Some(&env),
            &next_turn(&turn3, "x", "y"),
            tokens(f64::NAN),
            None,
        )
        .await;
        assert!(matches!(bad, Err(StoreError::InvalidTurn(_))), "{bad:?}");
    })
    .await;
}

#[tokio::test]
async fn envelope_fields_merge_like_the_reference() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let mut env = envelope("claude", "merge");
        env.name = "first name".into();
        env.cwd = "/work".into();
        env.harness_metadata = raw_json(r#"{"a": {"x": 1}, "b": 1}"#);
        let turn1 = session_fixture("m1");
        let out = ingest(&db, Some(&env), &turn1).await;

        // Blank fields do not erase; metadata merges shallowly and keeps explicit nulls.
        env.name = "   ".into();
        env.cwd = String::new();
        env.harness_version = "2.0".into();
        env.auth_subject = "someone-else".into();
        env.harness_metadata = raw_json(r#"{"a": {"y": 2}, "c": null}"#);
        let turn2 = next_turn(&turn1, "m2", "ok: m2");
        ingest(&db, Some(&env), &turn2).await;

        let row = session(&db, out.session_id).await;
        assert_eq!(row.name.as_deref(), Some("first name"), "{:?}", t.backend);
        assert_eq!(row.cwd.as_deref(), Some("/work"));
        assert_eq!(row.harness_version.as_deref(), Some("2.0"));
        assert_eq!(row.auth_subject, "someone-else");
        assert_eq!(
            row.harness_metadata,
            json!({"a": {"y": 2}, "b": 1, "c": null})
        );
    })
    .await;
}

/// `harness_metadata: null` is absent, never stored as JSON null
/// (docs/divergences.md#null-metadata).
#[tokio::test]
async fn null_metadata_leaves_the_column_an_object() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let mut env = envelope("claude", "null-metadata");
        env.harness_metadata = raw_json("null");
        let turn1 = session_fixture("n1");
        let out = ingest(&db, Some(&env), &turn1).await;
        assert_eq!(
            session(&db, out.session_id).await.harness_metadata,
            json!({})
        );

        env.harness_metadata = raw_json(r#"{"title": "hello"}"#);
        let turn2 = next_turn(&turn1, "n2", "ok: n2");
        ingest(&db, Some(&env), &turn2).await;
        env.harness_metadata = raw_json("null");
        ingest(&db, Some(&env), &next_turn(&turn2, "n3", "ok: n3")).await;
        assert_eq!(
            session(&db, out.session_id).await.harness_metadata,
            json!({"title": "hello"}),
            "{:?}",
            t.backend
        );

        env.harness_metadata = raw_json("[1, 2]");
        let refused = try_ingest(&db, Some(&env), &session_fixture("n4"), TOKENS, None).await;
        assert!(
            matches!(refused, Err(StoreError::InvalidTurn(_))),
            "{refused:?}"
        );
    })
    .await;
}

/// NUL is stored as U+FFFD on both backends, and counted (docs/divergences.md#nul-characters).
#[tokio::test]
async fn nul_text_is_stored_as_replacement_characters() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let mut env = envelope("claude", "n\0ul");
        env.name = "na\0me".into();
        env.harness_metadata = raw_json(r#"{"k\u0000": "v\u0000"}"#);
        let chain = session_fixture("a\0b");
        let hash = chain.root().hash.clone();

        let out = ingest(&db, Some(&env), &chain).await;

        // Session id: 1. Root: 1 in bucket + 1 in content. Head "ok: a\0b": 2 more.
        // Name: 1. Metadata: 2.
        assert_eq!(out.nul_replacements, 8, "{:?}", t.backend);
        let root = node(&db, Uuid::nil(), &hash).await;
        assert_eq!(
            root.content,
            Some(json!([{"type": "text", "text": "a\u{FFFD}b"}]))
        );
        assert_eq!(root.bucket.unwrap()["content"][0]["text"], "a\u{FFFD}b");
        let row = session(&db, out.session_id).await;
        assert_eq!(row.harness_session_id, "n\u{FFFD}ul");
        assert_eq!(row.name.as_deref(), Some("na\u{FFFD}me"));
        assert_eq!(row.harness_metadata, json!({"k\u{FFFD}": "v\u{FFFD}"}));

        // The same key finds the same session again, through ingest and through reads.
        let again = ingest(&db, Some(&env), &next_turn(&chain, "more", "ok")).await;
        assert_eq!(again.session_id, out.session_id);
        let key = reel::turn::SessionKey::resolve(Some(&env), &chain);
        let read = reads::session_by_key(&db, &key).await.unwrap();
        assert_eq!(read.map(|s| s.id), Some(out.session_id));
    })
    .await;
}

#[tokio::test]
async fn a_malformed_chain_is_refused_before_anything_is_written() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let mut chain = conversation(&[("user", "a"), ("user", "b")], "c");
        chain.nodes.swap(1, 2);
        let err = try_ingest(&db, Some(&envelope("claude", "bad")), &chain, TOKENS, None)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidChain(_)), "{err:?}");
        assert!(err.to_string().contains("does not chain"), "{err}");

        let empty = Chain { nodes: vec![] };
        let empty_turn = Turn {
            key: SessionKey {
                org_id: Uuid::nil(),
                harness_id: "claude".into(),
                harness_session_id: "empty".into(),
            },
            envelope: None,
            chain: empty,
            input_tokens: 0,
            output_tokens: 0,
            cost_usd: 0.0,
            raw: None,
        };
        let err = store(&db).commit_turn(&empty_turn).await.unwrap_err();
        assert_eq!(err.to_string(), "ingest turn: no nodes supplied");
        assert!(all_sessions(&db).await.is_empty());
        assert!(all_nodes(&db).await.is_empty());
    })
    .await;
}

#[tokio::test]
async fn several_turns_commit_together_in_order() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let env = envelope("claude", "batch");
        let turn1 = session_fixture("b1");
        let turn2 = next_turn(&turn1, "b2", "ok: b2");
        let turns = [
            turn(Some(&env), &turn1, TOKENS),
            turn(Some(&env), &turn2, TOKENS),
        ];
        let outs = store(&db)
            .transaction(&turns, &KnownHashes::default())
            .await
            .unwrap();
        assert_eq!(outs.len(), 2);
        assert_eq!(outs[0].session_id, outs[1].session_id);
        assert_eq!(outs[0].new_nodes.len(), 2);
        assert_eq!(outs[1].new_nodes.len(), 2);
        assert!(outs.iter().all(|o| o.counted));
        assert_eq!(session(&db, outs[0].session_id).await.turn_count, 2);
        // The commit's clock ticks once per node row written or skipped: a microsecond
        // apart means turn 2 did not write turn 1's nodes again as its history.
        let mut nodes = all_nodes(&db).await;
        nodes.sort_by_key(|n| n.created_at);
        for pair in nodes.windows(2) {
            let gap = pair[1].created_at - pair[0].created_at;
            assert_eq!(gap.num_microseconds(), Some(1), "{:?}", t.backend);
        }
    })
    .await;
}

#[tokio::test]
async fn the_project_is_stamped_on_inserted_nodes_and_blank_is_null() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let env = envelope("claude", "projects");
        let first = session_fixture("project one");
        let stamping = |project: &str| {
            Store::new(
                db.clone(),
                CommitOptions {
                    project: Some(project.into()),
                    ..CommitOptions::default()
                },
            )
        };
        stamping("reel")
            .commit_turn(&turn(Some(&env), &first, TOKENS))
            .await
            .unwrap();
        // A blank project is NULL, as the reference's TrimSpace check has it.
        let second = session_fixture("project two");
        stamping("  ")
            .commit_turn(&turn(Some(&env), &second, TOKENS))
            .await
            .unwrap();
        // A node already stored keeps the project it was stored with.
        stamping("other")
            .commit_turn(&turn(Some(&env), &first, TOKENS))
            .await
            .unwrap();

        for (chain, want) in [(&first, Some("reel")), (&second, None)] {
            for n in &chain.nodes {
                let row = node(&db, Uuid::nil(), &n.hash).await;
                assert_eq!(row.project.as_deref(), want, "{:?}", t.backend);
            }
        }
    })
    .await;
}

/// Token columns are 32-bit (clamped), durations 64-bit
/// (docs/storage.md#column-values-of-a-node).
#[tokio::test]
async fn usage_columns_clamp_tokens_and_keep_64_bit_durations() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let mut chain = session_fixture("big numbers");
        let head = chain.nodes.last_mut().unwrap();
        head.usage = Some(reel::llm::Usage {
            prompt_tokens: 5_000_000_000,
            completion_tokens: -5_000_000_000,
            total_tokens: 7,
            total_duration_ns: 9_000_000_000_000,
            prompt_duration_ns: 1,
            ..Default::default()
        });
        ingest(&db, None, &chain).await;
        let stored = node(&db, Uuid::nil(), &chain.head().hash).await;
        assert_eq!(stored.prompt_tokens, Some(i32::MAX), "{:?}", t.backend);
        assert_eq!(stored.completion_tokens, Some(i32::MIN));
        assert_eq!(stored.total_tokens, Some(7));
        assert_eq!(stored.total_duration_ns, Some(9_000_000_000_000));
        assert_eq!(stored.prompt_duration_ns, Some(1));
    })
    .await;
}
