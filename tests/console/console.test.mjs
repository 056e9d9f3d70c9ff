// The admin console in headless Chromium against a live `reel serve`: a fresh SQLite file
// and port, an admin token configured, turns posted over HTTP (one the server quarantines),
// then the page is driven as a person would: give the token, see the actors, find the
// session, open its transcript and fork tree, stop an actor, reprocess the quarantined turn,
// read the ingest charts. Screenshots go to target/console-screenshots/. Exits non-zero on
// the first failed expectation.
//
// A second server in keys mode checks that the sessions views read with the API key the page
// is given.
//
// REEL_BIN (default target/debug/reel) and CHROMIUM (default /usr/bin/chromium) choose the
// binaries.

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, openSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const bin = process.env.REEL_BIN || join(repo, "target", "debug", "reel");
const browserPath = process.env.CHROMIUM || "/usr/bin/chromium";
const shots = join(repo, "target", "console-screenshots");
const TOKEN = "console-admin-token";
const MODEL = "claude-sonnet-4-5-20250929";

function freePort() {
  return new Promise((ok, err) => {
    const server = createServer();
    server.once("error", err);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

function turn(session, questions, extra = {}) {
  const messages = [];
  questions.forEach((q, i) => {
    messages.push({ role: "user", content: q });
    if (i < questions.length - 1) {
      messages.push({ role: "assistant", content: [{ type: "text", text: `answer to ${q}` }] });
    }
  });
  const last = questions[questions.length - 1];
  return {
    provider: "anthropic",
    agent_name: "console-test",
    request: { model: MODEL, max_tokens: 256, messages },
    response: {
      model: MODEL, done: true, stop_reason: "end_turn",
      message: { role: "assistant", content: [{ type: "text", text: `answer to ${last}` }] },
      usage: { prompt_tokens: 40, completion_tokens: 8, total_tokens: 48 },
    },
    meta: { request_id: `${session}-${questions.length}` },
    session: { harness_id: "claude", harness_session_id: session, auth_subject: "dev@example.com", ...extra },
  };
}

const work = mkdtempSync(join(tmpdir(), "reel-console-"));
const servers = [];
let browser = null;

// Starts `reel serve` on a fresh SQLite file and port with `env`; answers its base URL once
// it answers /ping.
async function serve(name, env) {
  const port = await freePort();
  const url = `sqlite://${join(work, `${name}.db`)}?mode=rwc`;
  const log = openSync(join(work, `${name}.log`), "w");
  const child = spawn(bin, ["serve"], {
    env: { ...process.env, REEL_LISTEN: `127.0.0.1:${port}`, REEL_DATABASE_URL: url, REEL_LOG: "info", ...env },
    stdio: ["ignore", log, log],
  });
  servers.push(child);
  const at = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`reel serve exited with ${child.exitCode}`);
    if (await fetch(`${at}/ping`).then((r) => r.ok, () => false)) return at;
    await sleep(100);
  }
  throw new Error("reel serve did not answer /ping");
}

// Runs `reel <args>` against the SQLite file of server `name`; answers its stdout.
function reel(name, args) {
  const url = `sqlite://${join(work, `${name}.db`)}?mode=rwc`;
  const out = spawnSync(bin, args, { env: { ...process.env, REEL_DATABASE_URL: url }, encoding: "utf8" });
  assert.equal(out.status, 0, `reel ${args.join(" ")}: ${out.stderr}`);
  return out.stdout;
}

async function cleanup() {
  if (browser) await browser.close().catch(() => {});
  for (const child of servers) {
    child.kill("SIGTERM");
    await new Promise((ok) => (child.exitCode !== null ? ok() : child.once("exit", ok)));
  }
  rmSync(work, { recursive: true, force: true });
}

let base = "";

async function post(path, body, headers = {}) {
  const res = await fetch(base + path, {
    method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

async function admin(path) {
  const res = await fetch(base + path, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(res.status, 200, `${path}: ${res.status}`);
  return res.json();
}

try {
  base = await serve("token", { REEL_ADMIN_TOKEN: TOKEN, REEL_AUTH_MODE: "none" });

  // Turns over HTTP: a two-turn session, its fork child, another session, and a turn of a
  // provider reel has no parser for, which the server quarantines (422).
  for (const t of [
    turn("console-parent", ["how do I list files?"]),
    turn("console-parent", ["how do I list files?", "and hidden ones?"]),
    turn("console-child", ["a forked question"], { parent_harness_session_id: "console-parent" }),
    turn("console-other", ["unrelated"]),
  ]) {
    const res = await post("/v1/ingest", t);
    assert.equal(res.status, 202, JSON.stringify(res.body));
  }
  const gemini = { ...turn("console-gemini", ["a turn reel cannot parse"]), provider: "gemini" };
  const quarantined = await post("/v1/ingest", gemini);
  assert.equal(quarantined.status, 422, JSON.stringify(quarantined.body));
  const rawId = quarantined.body.raw_turn_id;
  assert.ok(rawId, "the 422 names its raw turn");

  mkdirSync(shots, { recursive: true });
  browser = await chromium.launch({ executablePath: browserPath, headless: true, args: ["--no-sandbox"] });
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));

  // The page itself loads without the token; its first admin call answers 401, so it asks.
  const res = await page.goto(`${base}/admin/`);
  assert.equal(res.status(), 200);
  await page.locator("#credentials").waitFor({ state: "visible" });
  await page.locator("#status").filter({ hasText: "401" }).waitFor();
  await page.fill("#credentials [name=admin_token]", TOKEN);
  await page.click("#credentials button[type=submit]");
  await page.locator("#credentials").waitFor({ state: "hidden" });

  // Actors: one per session that took turns, refreshing.
  const actorRows = page.locator("#actors-table tbody tr");
  await page.locator("#actors-table tbody tr", { hasText: "console-parent" }).waitFor();
  assert.equal(await actorRows.count(), 3);
  assert.equal(await page.textContent("#actors-count"), "(3)");
  await page.screenshot({ path: join(shots, "actors.png"), fullPage: true });

  // Sessions: sorted by the server, searched in the page.
  await page.click("nav a[data-view=sessions]");
  const sessionRows = page.locator("#sessions-table tbody tr");
  await page.locator("#sessions-table tbody tr", { hasText: "console-parent" }).waitFor();
  assert.equal(await sessionRows.count(), 3);
  await page.selectOption("#sessions-form [name=sort]", "turn_count");
  await page.waitForFunction(() =>
    document.querySelector("#sessions-table tbody tr td")?.textContent === "console-parent");
  await page.fill("#sessions-form [name=search]", "child");
  await page.waitForFunction(() => document.querySelectorAll("#sessions-table tbody tr").length === 1);
  assert.match(await sessionRows.first().textContent(), /console-child/);
  await page.fill("#sessions-form [name=search]", "");
  await page.screenshot({ path: join(shots, "sessions.png"), fullPage: true });

  // The parent's transcript: two user questions and two answers, its child in the tree.
  await page.click("#sessions-table tbody tr:has-text('console-parent')");
  await page.locator("#transcript li").nth(3).waitFor();
  const transcript = await page.locator("#transcript li").allTextContents();
  assert.equal(transcript.length, 4, transcript.join("\n"));
  assert.match(transcript[0], /^user.*how do I list files\?/s);
  assert.match(transcript[3], /^assistant.*answer to and hidden ones\?/s);
  assert.match(await page.textContent("#session-tree"), /console-parent \(this session\).*console-child/s);
  await page.screenshot({ path: join(shots, "transcript.png"), fullPage: true });

  // The child's page shows its parent above it.
  await page.click("#session-tree a:has-text('console-child')");
  await page.locator("#session-title", { hasText: "console-child" }).waitFor();
  await page.locator("#transcript li").nth(1).waitFor();
  assert.match(await page.textContent("#session-tree"), /console-parent.*console-child \(this session\)/s);
  await page.screenshot({ path: join(shots, "fork-tree.png"), fullPage: true });

  // Stop the parent's actor: it leaves the list, in the page and on the server.
  await page.click("nav a[data-view=actors]");
  const parentRow = page.locator("#actors-table tbody tr", { hasText: "console-parent" });
  await parentRow.locator("button.stop").click();
  await parentRow.waitFor({ state: "detached" });
  assert.equal(await actorRows.count(), 2);
  const live = await admin("/admin/actors");
  assert.deepEqual(live.actors.map((a) => a.harness_session_id).sort(), ["console-child", "console-other"]);
  await page.screenshot({ path: join(shots, "actor-stopped.png"), fullPage: true });

  // The quarantine: the gemini turn, which reprocessing still rejects; it stays listed.
  await page.click("nav a[data-view=quarantine]");
  const rawRow = page.locator(`#quarantine-table tbody tr[data-raw="${rawId}"]`);
  await rawRow.waitFor();
  assert.match(await rawRow.textContent(), /gemini.*console-gemini.*422.*unsupported_provider/s);
  await rawRow.locator("button.reprocess").click();
  await page.locator("#quarantine-result", { hasText: "still failing" }).waitFor();
  assert.match(await page.textContent("#quarantine-result"), new RegExp(`${rawId} still failing: .*unsupported provider`));
  await rawRow.waitFor();
  const quarantine = await admin("/admin/quarantine");
  assert.deepEqual(quarantine.raw_turns.map((r) => r.id), [rawId]);
  await page.screenshot({ path: join(shots, "quarantine.png"), fullPage: true });

  // Ingest: four accepted turns and one rejected over the last minutes, drawn as bars.
  await page.click("nav a[data-view=ingest]");
  await page.locator("#ingest-totals", { hasText: "4 accepted, 1 rejected" }).waitFor();
  assert.ok(await page.locator("#chart-rate rect.bar").count() >= 1);
  assert.ok(await page.locator("#chart-errors rect.bar").count() >= 1);
  await page.screenshot({ path: join(shots, "ingest.png"), fullPage: true });

  // Keys mode on a loopback listener without an admin token: the admin routes are open, and
  // the sessions views read with the API key the page is given, as X-Api-Key.
  reel("keys", ["migrate"]);
  const key = reel("keys", ["keys", "create", "--org", "22222222-2222-2222-2222-222222222222"]).split("\n")[0].trim();
  base = await serve("keys", { REEL_AUTH_MODE: "keys" });
  const keyed = await post("/v1/ingest", turn("console-keyed", ["a keyed question"]), { "x-api-key": key });
  assert.equal(keyed.status, 202, JSON.stringify(keyed.body));
  await page.goto(`${base}/admin/#sessions`);
  await page.locator("#status", { hasText: "401: unauthorized: missing API key" }).waitFor();
  await page.fill("#credentials [name=admin_token]", "");
  await page.fill("#credentials [name=api_key]", key);
  await page.click("#credentials button[type=submit]");
  await page.locator("#sessions-table tbody tr", { hasText: "console-keyed" }).waitFor();
  assert.equal(await page.locator("#sessions-table tbody tr").count(), 1);
  await page.screenshot({ path: join(shots, "sessions-keys.png"), fullPage: true });

  assert.deepEqual(errors, [], "the page raised no script errors");
  console.log(`console test passed; screenshots in ${shots}`);
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  await cleanup();
}
