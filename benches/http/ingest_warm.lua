-- wrk script: POST /v1/ingest with warm 20-message turns: in each of 64 sessions per wrk
-- thread, the first 19 messages are the session's history (already stored after its first
-- turn) and only the last message and the response are new, as when a harness re-sends a
-- conversation. Each commit inserts 2 nodes: the common steady state.
--
--   wrk -t2 -c8 -d30s --latency -s benches/http/ingest_warm.lua http://127.0.0.1:8082

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local filler = string.rep("lorem ipsum dolor sit amet ", 6)
local counter = 0
-- REEL_KEY=<api key> measures a server in auth.mode = "keys".
local headers = { ["Content-Type"] = "application/json" }
if os.getenv("REEL_KEY") then
  headers["Authorization"] = "Bearer " .. os.getenv("REEL_KEY")
end

function request()
  counter = counter + 1
  local session = counter % 64
  local tag = string.format("%d-%d", tid, counter)
  local history = string.format("%d-s%d", tid, session)
  local messages = {}
  for i = 1, 19 do
    local role = (i % 2 == 1) and "user" or "assistant"
    messages[i] = string.format('{"role":"%s","content":"%s message %d: %s"}', role, history, i, filler)
  end
  messages[20] = string.format('{"role":"user","content":"%s new message: %s"}', tag, filler)
  local body = '{"provider":"anthropic","request":{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":['
    .. table.concat(messages, ",")
    .. ']},"response":{"model":"claude-sonnet-4-5","done":true,"stop_reason":"end_turn",'
    .. '"message":{"role":"assistant","content":[{"type":"text","text":"answer ' .. tag .. '"}]},'
    .. '"usage":{"prompt_tokens":1200,"completion_tokens":80}},'
    .. '"session":{"org_id":"","auth_subject":"bench","harness_id":"claude","harness_session_id":"bench-'
    .. tid .. '-' .. session .. '"}}'
  return wrk.format("POST", "/v1/ingest", headers, body)
end
