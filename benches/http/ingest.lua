-- wrk script: POST /v1/ingest with 20-message turns (19 messages of history plus the new
-- user message in the request, and the response). Every request is a new turn with its own
-- content, so each commit inserts all 21 nodes: the write path at its heaviest.
--
--   wrk -t2 -c8 -d30s --latency -s benches/http/ingest.lua http://127.0.0.1:8082
--
-- Turns spread over 64 sessions per wrk thread.

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
  local tag = string.format("%d-%d", tid, counter)
  local messages = {}
  for i = 1, 20 do
    local role = (i % 2 == 1) and "user" or "assistant"
    messages[i] = string.format('{"role":"%s","content":"%s message %d: %s"}', role, tag, i, filler)
  end
  local body = '{"provider":"anthropic","request":{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":['
    .. table.concat(messages, ",")
    .. ']},"response":{"model":"claude-sonnet-4-5","done":true,"stop_reason":"end_turn",'
    .. '"message":{"role":"assistant","content":[{"type":"text","text":"answer ' .. tag .. '"}]},'
    .. '"usage":{"prompt_tokens":1200,"completion_tokens":80}},'
    .. '"session":{"org_id":"","auth_subject":"bench","harness_id":"claude","harness_session_id":"bench-'
    .. tid .. '-' .. (counter % 64) .. '"}}'
  return wrk.format("POST", "/v1/ingest", headers, body)
end
