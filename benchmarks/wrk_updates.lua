-- wrk script: POST distinct Telegram updates to /webhooks/telegram.
--   wrk -s wrk_updates.lua URL -- BASE_UPDATE_ID SECRET FAQ_TEXTS ESCALATION_TEXTS
-- Texts are "|"-separated. Every request carries a new update_id (base + thread offset +
-- counter). Six in seven are FAQ questions from 500 recurring chats; one in seven asks for a
-- person (or cancels, complains...) from a new chat, so every request takes the full path
-- (store, classify, decide, queue the reply) instead of being forwarded to an open handoff.

local thread_count = 0

function setup(thread)
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
end

local function split(s)
  local out = {}
  for part in string.gmatch(s, "([^|]+)") do
    out[#out + 1] = part
  end
  return out
end

function init(args)
  base = tonumber(args[1])
  headers = {}
  headers["Content-Type"] = "application/json"
  headers["X-Telegram-Bot-Api-Secret-Token"] = args[2]
  faq = split(args[3])
  escalations = split(args[4])
  counter = 0
  offset = base + (thread_index or 0) * 10000000
end

function request()
  counter = counter + 1
  local update_id = offset + counter
  local chat, text
  if counter % 7 == 0 then
    chat = 900000000 + update_id
    text = escalations[(counter / 7) % #escalations + 1]
  else
    chat = 100000 + update_id % 500
    text = faq[counter % #faq + 1]
  end
  local body = string.format(
    '{"update_id":%d,"message":{"message_id":%d,"from":{"id":%d,"is_bot":false,' ..
    '"first_name":"Bench","language_code":"en"},"chat":{"id":%d,"first_name":"Bench",' ..
    '"type":"private"},"date":%d,"text":"%s"}}',
    update_id, counter, chat, chat, os.time(), text)
  return wrk.format("POST", "/webhooks/telegram", headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'JSON:{"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
