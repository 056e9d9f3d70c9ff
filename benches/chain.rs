//! Payload bytes → chain (decode, provider parse, projection, canonical bytes, SHA-256), on
//! two inputs generated here: small synthetic turns of all three providers, and
//! Claude-Code-sized Anthropic turns (~130 KB: long system prompt, tool schemas, 30
//! messages with tool calls and results).
//!
//! Every input runs under each rule set (`chain/<input>/<rules>`), so the cost of the later
//! rules shows beside the earlier. `cargo bench --bench chain` reports both turns/s and MB/s
//! per input.
//!
//! For instruction counts, `REEL_CHAIN_PROFILE=<input>/<rules>[/<rounds>]` (input `small_turns`
//! or `claude_code_turns`) makes the binary chain that input under those rules `rounds` times
//! (default 10) instead of benching, so that
//! `valgrind --tool=callgrind --toggle-collect='chain::chain_turns'` on it counts exactly
//! `rounds` × the input's turns.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use serde_json::{Value, json};

use reel::merkle::{Rules, build_chain_under};
use reel::wire::decode_turn_under;

/// The allocator the `reel` binary runs with (src/main.rs), so the figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A small deterministic generator (xorshift64*), so every run benches the same bytes.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    /// Prose of about `len` bytes: words, punctuation, some non-ASCII, line breaks.
    fn prose(&mut self, len: usize) -> String {
        const WORDS: &[&str] = &[
            "the",
            "session",
            "file",
            "function",
            "returns",
            "value",
            "when",
            "error",
            "should",
            "must",
            "never",
            "always",
            "tool",
            "user",
            "request",
            "response",
            "café",
            "naïve",
            "—",
            "résumé",
            "config",
            "`cargo test`",
            "\"quoted\"",
            "path/to/file.rs",
            "it’s",
            "database",
            "transaction",
            "commit",
            "branch",
            "review",
            "concise",
            "output",
        ];
        let mut s = String::with_capacity(len + 16);
        while s.len() < len {
            s.push_str(self.pick(WORDS));
            s.push(match self.below(12) {
                0 => '\n',
                1 => ',',
                2 => '.',
                _ => ' ',
            });
        }
        s
    }

    /// Source-code-like text: indentation, quotes, backslashes, braces and newlines.
    fn code(&mut self, len: usize) -> String {
        const LINES: &[&str] = &[
            "fn main() {",
            "    let path = \"C:\\\\work\\\\reel\";",
            "    println!(\"{}\", value);",
            "    if let Some(x) = map.get(&key) {",
            "        return Err(Error::NotFound(format!(\"missing {key}\")));",
            "    }",
            "}",
            "// TODO: handle the <tag> case\t",
            "    const LIMIT: usize = 64 * 1024;",
            "    for (i, line) in lines.iter().enumerate() {",
        ];
        let mut s = String::with_capacity(len + 64);
        while s.len() < len {
            s.push_str(self.pick(LINES));
            s.push('\n');
        }
        s
    }
}

fn tool_schema(g: &mut Gen, name: &str) -> Value {
    let mut properties = serde_json::Map::new();
    for i in 0..(4 + g.below(5)) {
        properties.insert(
            format!("param_{i}"),
            json!({"type": g.pick(&["string", "integer", "boolean", "array"]),
                   "description": g.prose(160)}),
        );
    }
    json!({
        "name": name,
        "description": g.prose(1800),
        "input_schema": {"type": "object", "properties": properties,
                          "required": ["param_0"], "additionalProperties": false,
                          "$schema": "http://json-schema.org/draft-07/schema#"}
    })
}

/// An Anthropic turn the size Claude Code sends: ~130 KB request.
fn claude_code_turn(seed: u64) -> Vec<u8> {
    let mut g = Gen(seed);
    let tools: Vec<Value> = [
        "Task",
        "Bash",
        "Glob",
        "Grep",
        "LS",
        "ExitPlanMode",
        "Read",
        "Edit",
        "MultiEdit",
        "Write",
        "NotebookEdit",
        "WebFetch",
        "TodoWrite",
        "WebSearch",
        "BashOutput",
        "KillShell",
        "SlashCommand",
        "mcp__ide__getDiagnostics",
        "mcp__ide__executeCode",
    ]
    .iter()
    .map(|name| tool_schema(&mut g, name))
    .collect();
    let system = json!([
        {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
        {"type": "text", "text": g.prose(24_000), "cache_control": {"type": "ephemeral"}}
    ]);
    let mut messages = Vec::new();
    for turn in 0..10 {
        let mut user = vec![json!({"type": "text", "text": g.prose(500)})];
        if turn == 0 {
            user.insert(
                0,
                json!({"type": "text", "text": format!(
                "<system-reminder>\n{}\n</system-reminder>", g.prose(2000))}),
            );
        }
        messages.push(json!({"role": "user", "content": user}));
        let id = format!("toolu_{turn:02}{}", g.next() % 100_000);
        let input = match turn % 3 {
            0 => json!({"file_path": "/work/reel/src/lib.rs", "old_string": g.code(700),
                         "new_string": g.code(900), "replace_all": false}),
            1 => json!({"command": "cargo test --lib merkle", "description": g.prose(60),
                         "timeout": 120000}),
            _ => json!({"pattern": "fn build_chain", "path": "/work/reel", "-n": true,
                         "output_mode": "content", "head_limit": 0}),
        };
        messages.push(json!({"role": "assistant", "content": [
            {"type": "text", "text": g.prose(300)},
            {"type": "tool_use", "id": id, "name": g.pick(&["Edit", "Bash", "Grep"]), "input": input}
        ]}));
        messages.push(json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": id, "content": [
                {"type": "text", "text": g.code(2200)},
                {"type": "text", "text": "<system-reminder>Whenever you read a file, consider whether it looks malicious.</system-reminder>"}
            ]}
        ]}));
    }
    let payload = json!({
        "provider": "anthropic",
        "agent_name": "claude-code",
        "request": {"model": "claude-sonnet-4-5", "max_tokens": 32000, "stream": true,
                     "system": system, "tools": tools, "messages": messages,
                     "metadata": {"user_id": "user_abc_account_123_session_456"}},
        "response": {"model": "claude-sonnet-4-5", "done": true, "stop_reason": "tool_use",
            "usage": {"prompt_tokens": 35000, "completion_tokens": 900, "total_tokens": 35900,
                      "cache_read_input_tokens": 30000},
            "message": {"role": "assistant", "content": [
                {"type": "thinking", "thinking": g.prose(400), "thinking_signature": "EqQBCkYIBxgC"},
                {"type": "text", "text": g.prose(200)},
                {"type": "tool_use", "tool_use_id": "toolu_next", "tool_name": "Read",
                 "tool_input": {"file_path": "/work/reel/src/merkle/mod.rs", "limit": 200}}]}},
        "session": {"org_id": "", "harness_id": "claude", "harness_session_id": "5f0c8d2e"}
    });
    serde_json::to_vec(&payload).expect("a generated payload serialises")
}

/// Small turns of every provider: a couple of short messages and a short answer.
fn small_turns(count: usize) -> Vec<Vec<u8>> {
    let mut g = Gen(0x5eed);
    (0..count)
        .map(|i| {
            let (provider, messages) = match i % 3 {
                0 => ("openai", json!([
                    {"role": "system", "content": g.prose(60)},
                    {"role": "user", "content": g.prose(80)},
                ])),
                1 => ("anthropic", json!([
                    {"role": "user", "content": [{"type": "text", "text": g.prose(90)}]},
                    {"role": "assistant", "content": g.prose(50)},
                    {"role": "user", "content": g.prose(40)},
                ])),
                _ => ("ollama", json!([{"role": "user", "content": g.prose(100)}])),
            };
            let payload = json!({
                "provider": provider,
                "agent_name": "bench",
                "request": {"model": "m", "messages": messages},
                "response": {"model": "m", "done": true, "stop_reason": "stop",
                    "usage": {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30},
                    "message": {"role": "assistant", "content": [{"type": "text", "text": g.prose(60)}]}}
            });
            serde_json::to_vec(&payload).expect("a generated payload serialises")
        })
        .collect()
}

#[inline(never)]
fn chain_turns(turns: &[Vec<u8>], rules: &Rules) -> usize {
    let mut nodes = 0;
    for body in turns {
        let (payload, _) =
            decode_turn_under(black_box(body), rules).expect("generated payloads decode");
        let chain = build_chain_under(payload, rules).expect("generated payloads chain");
        nodes += black_box(chain).nodes.len();
    }
    nodes
}

/// Nanoseconds this thread has spent on a CPU (Linux `schedstat`); `None` elsewhere.
fn on_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

/// Throughput per second of CPU time, beside criterion's wall-clock figures: on a shared
/// machine the wall clock also counts the time other processes held the core.
fn report_on_cpu(name: &str, turns: &[Vec<u8>], rules: &Rules) {
    let bytes: usize = turns.iter().map(Vec::len).sum();
    let Some(cpu_start) = on_cpu_ns() else {
        return;
    };
    let wall = Instant::now();
    let mut rounds = 0u64;
    while wall.elapsed() < Duration::from_secs(3) {
        black_box(chain_turns(turns, rules));
        rounds += 1;
    }
    let Some(cpu_end) = on_cpu_ns() else {
        return;
    };
    let cpu = (cpu_end - cpu_start) as f64 / 1e9;
    let wall = wall.elapsed().as_secs_f64();
    let total = (rounds * bytes as u64) as f64;
    let count = (rounds * turns.len() as u64) as f64;
    eprintln!(
        "chain/{name}/{} per CPU second: {:.0} MB/s, {:.0} turns/s (wall clock: {:.0} MB/s, on CPU {:.0}% of it)",
        rules.name,
        total / cpu / 1e6,
        count / cpu,
        total / wall / 1e6,
        100.0 * cpu / wall
    );
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("chain");

    let small = small_turns(300);
    let small_bytes: usize = small.iter().map(Vec::len).sum();
    group.throughput(Throughput::ElementsAndBytes {
        elements: small.len() as u64,
        bytes: small_bytes as u64,
    });
    for rules in &Rules::ALL {
        let name = format!("small_turns/{}", rules.name);
        group.bench_function(name, |b| b.iter(|| chain_turns(&small, rules)));
    }

    let large: Vec<Vec<u8>> = (0..4).map(|i| claude_code_turn(0xc0de + i)).collect();
    let large_bytes: usize = large.iter().map(Vec::len).sum();
    eprintln!(
        "inputs: {} small turns averaging {} B; {} Claude-Code-sized turns averaging {} KB",
        small.len(),
        small_bytes / small.len(),
        large.len(),
        large_bytes / large.len() / 1024
    );
    group.throughput(Throughput::ElementsAndBytes {
        elements: large.len() as u64,
        bytes: large_bytes as u64,
    });
    for rules in &Rules::ALL {
        let name = format!("claude_code_turns/{}", rules.name);
        group.bench_function(name, |b| b.iter(|| chain_turns(&large, rules)));
    }

    // `reel chain` over a file of small payloads: line reading, chains, JSON output.
    let lines: Vec<u8> = small
        .iter()
        .flat_map(|t| t.iter().chain(b"\n"))
        .copied()
        .collect();
    group.throughput(Throughput::ElementsAndBytes {
        elements: small.len() as u64,
        bytes: lines.len() as u64,
    });
    for rules in &Rules::ALL {
        group.bench_function(format!("reel_chain_lines/{}", rules.name), |b| {
            b.iter(|| {
                let mut out = Vec::with_capacity(256 * 1024);
                reel::chain_cli::run(black_box(&lines[..]), &mut out, rules)
                    .expect("writes to a Vec");
                out.len()
            })
        });
    }

    group.finish();
    for rules in &Rules::ALL {
        report_on_cpu("small_turns", &small, rules);
        report_on_cpu("claude_code_turns", &large, rules);
    }
}

/// `REEL_CHAIN_PROFILE`: one input under one rule set, a fixed number of rounds.
fn profile(spec: &str) {
    let mut parts = spec.split('/');
    let (input, rules, rounds) = (parts.next(), parts.next(), parts.next());
    let turns = match input {
        Some("small_turns") => small_turns(300),
        Some("claude_code_turns") => (0..4).map(|i| claude_code_turn(0xc0de + i)).collect(),
        other => panic!("REEL_CHAIN_PROFILE: unknown input {other:?}"),
    };
    let rules = rules
        .and_then(Rules::named)
        .unwrap_or_else(|| panic!("REEL_CHAIN_PROFILE: unknown rules {rules:?}"));
    let rounds: usize = rounds.map_or(10, |r| r.parse().expect("rounds is a number"));
    let mut nodes = 0;
    for _ in 0..rounds {
        nodes += chain_turns(&turns, rules);
    }
    eprintln!(
        "{} rounds of {} turns under {}: {nodes} nodes",
        rounds,
        turns.len(),
        rules.name
    );
}

criterion_group!(benches, bench);

fn main() {
    if let Ok(spec) = std::env::var("REEL_CHAIN_PROFILE") {
        profile(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
