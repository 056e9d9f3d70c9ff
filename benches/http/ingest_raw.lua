-- wrk script: POST /v1/ingest with warm raw-only turns, as today's capture proxies send
-- them: the same 20-message requests as ingest_warm.lua (19 messages of session history, one
-- new), no reduced response but the provider's SSE bytes as `raw_response` (base64) and a
-- `meta` block with a unique request id, so the server reduces every turn, stores its raw
-- turn and looks its request id up.
--
--   wrk -t2 -c8 -d30s --latency -s benches/http/ingest_raw.lua http://127.0.0.1:8082

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local filler = string.rep("lorem ipsum dolor sit amet ", 6)
local counter = 0
-- An Anthropic Messages SSE stream (message_start, two text deltas, message_delta, message_stop).
local raw_response = "ZXZlbnQ6IG1lc3NhZ2Vfc3RhcnQKZGF0YTogeyJ0eXBlIjoibWVzc2FnZV9zdGFydCIsIm1lc3NhZ2UiOnsiaWQiOiJtc2dfMSIsInR5cGUiOiJtZXNzYWdlIiwicm9sZSI6ImFzc2lzdGFudCIsImNvbnRlbnQiOltdLCJtb2RlbCI6ImNsYXVkZS1zb25uZXQtNC01IiwidXNhZ2UiOnsiaW5wdXRfdG9rZW5zIjoxMjAwLCJvdXRwdXRfdG9rZW5zIjoxfX19CgpldmVudDogY29udGVudF9ibG9ja19zdGFydApkYXRhOiB7InR5cGUiOiJjb250ZW50X2Jsb2NrX3N0YXJ0IiwiaW5kZXgiOjAsImNvbnRlbnRfYmxvY2siOnsidHlwZSI6InRleHQiLCJ0ZXh0IjoiIn19CgpldmVudDogY29udGVudF9ibG9ja19kZWx0YQpkYXRhOiB7InR5cGUiOiJjb250ZW50X2Jsb2NrX2RlbHRhIiwiaW5kZXgiOjAsImRlbHRhIjp7InR5cGUiOiJ0ZXh0X2RlbHRhIiwidGV4dCI6ImFuIGFuc3dlciBzdHJlYW1lZCAifX0KCmV2ZW50OiBjb250ZW50X2Jsb2NrX2RlbHRhCmRhdGE6IHsidHlwZSI6ImNvbnRlbnRfYmxvY2tfZGVsdGEiLCJpbmRleCI6MCwiZGVsdGEiOnsidHlwZSI6InRleHRfZGVsdGEiLCJ0ZXh0IjoiaW4gdHdvIHBhcnRzIn19CgpldmVudDogY29udGVudF9ibG9ja19zdG9wCmRhdGE6IHsidHlwZSI6ImNvbnRlbnRfYmxvY2tfc3RvcCIsImluZGV4IjowfQoKZXZlbnQ6IG1lc3NhZ2VfZGVsdGEKZGF0YTogeyJ0eXBlIjoibWVzc2FnZV9kZWx0YSIsImRlbHRhIjp7InN0b3BfcmVhc29uIjoiZW5kX3R1cm4ifSwidXNhZ2UiOnsib3V0cHV0X3Rva2VucyI6ODB9fQoKZXZlbnQ6IG1lc3NhZ2Vfc3RvcApkYXRhOiB7InR5cGUiOiJtZXNzYWdlX3N0b3AifQoK"
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
    .. ']},"raw_response":"' .. raw_response .. '",'
    .. '"meta":{"request_id":"bench-' .. tag .. '","content_type":"text/event-stream","elapsed_seconds":1.5},'
    .. '"session":{"org_id":"","auth_subject":"bench","harness_id":"claude","harness_session_id":"bench-'
    .. tid .. '-' .. session .. '"}}'
  return wrk.format("POST", "/v1/ingest", headers, body)
end
