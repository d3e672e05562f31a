-- wrk script for run-soak.sh: a steady mix of what users do, with every answer checked.
--
-- Run it with one connection per thread (-t N -c N): each thread then knows which request an
-- answer belongs to. Each thread keeps its own signed-in users:
--   login   POST /api/v1/authenticate (username and password callbacks): expects 200 and a
--           session_token; the new session joins the thread's active sessions. When more than
--           ACTIVE are active, the oldest is abandoned: never used again, it must expire.
--   verify  POST /api/v1/sessions/authenticate with Authorization: Bearer <an active token>:
--           expects 200. A 401 counts as an expected expiry only when the session was last
--           seen longer ago than INACTIVITY_S minus the touch throttle; otherwise it is an error.
--   logout  DELETE /api/v1/sessions/current with the oldest active token: expects 204 or 200
--           (or a 401 under the same rule as a verify's).
--   expiry  POST /api/v1/sessions/authenticate with an abandoned token idle for longer than
--           INACTIVITY_S plus a margin: expects 401 (a 200 is an error: an expired session let in).
-- Every other status, and any answer to a request of the wrong kind, is an error.
--
-- Environment: USERS (names, comma-separated), PASSWORD, INACTIVITY_S (the realm's inactivity,
-- seconds), DELAY_MS (pause between a connection's requests), COUNTS_DIR (each thread writes its
-- counters to COUNTS_DIR/thread-<n> every few seconds, for the sampler), ACTIVE (default 20).
-- Weights: 3% logins, 1% logouts, 1% expiry checks (when one is due), the rest verifies.

local users = {}
for name in string.gmatch(os.getenv("USERS") or "", "[^,]+") do
  users[#users + 1] = name
end
local password = os.getenv("PASSWORD") or ""
local inactivity = tonumber(os.getenv("INACTIVITY_S") or "60")
local delay_ms = tonumber(os.getenv("DELAY_MS") or "0")
local counts_dir = os.getenv("COUNTS_DIR")
local max_active = tonumber(os.getenv("ACTIVE") or "20")

local threads = {}
local next_id = 0
function setup(thread)
  next_id = next_id + 1
  thread:set("id", next_id)
  threads[#threads + 1] = thread
end

-- Per-thread state (each wrk thread has its own Lua state).
local active = {}    -- { token = ..., seen = os.time() of its last 200 }
local abandoned = {} -- { token = ..., seen = ... }, oldest first
local pending = nil  -- { kind = ..., entry = ... }: the request on the wire
local counts = {
  login = 0, verify = 0, logout = 0, expiry = 0,
  expired_on_verify = 0, errors = 0,
}
local last_flush = 0
local error_samples = {}

local login_body
local function json_string(s)
  return '"' .. s:gsub('\\', '\\\\'):gsub('"', '\\"') .. '"'
end

function init(args)
  math.randomseed(os.time() * 1000 + (id or 0))
  if #users == 0 then
    error("set USERS to the users to sign in as")
  end
end

local function flush(force)
  local now = os.time()
  if counts_dir == nil or (not force and now - last_flush < 5) then
    return
  end
  last_flush = now
  local file = io.open(counts_dir .. "/thread-" .. tostring(id), "w")
  if file == nil then
    return
  end
  file:write(string.format("login=%d verify=%d logout=%d expiry=%d expired_on_verify=%d errors=%d\n",
    counts.login, counts.verify, counts.logout, counts.expiry, counts.expired_on_verify, counts.errors))
  for _, sample in ipairs(error_samples) do
    file:write("error " .. sample .. "\n")
  end
  file:close()
end

local function fail(what)
  counts.errors = counts.errors + 1
  if #error_samples < 20 then
    error_samples[#error_samples + 1] = os.date("!%H:%M:%S") .. " " .. what
  end
end

local function login_request()
  local user = users[math.random(#users)]
  local body = '{"callbacks":[{"type":"username","value":' .. json_string(user) ..
    '},{"type":"password","value":' .. json_string(password) .. '}]}'
  pending = { kind = "login" }
  return wrk.format("POST", "/api/v1/authenticate", { ["Content-Type"] = "application/json" }, body)
end

local function bearer(method, path, entry, kind)
  pending = { kind = kind, entry = entry }
  local headers = { ["Authorization"] = "Bearer " .. entry.token }
  local body = nil
  if method == "POST" then
    headers["Content-Type"] = "application/json"
    body = "{}"
  end
  return wrk.format(method, path, headers, body)
end

function request()
  local now = os.time()
  local roll = math.random(100)
  if #active == 0 or roll <= 3 then
    return login_request()
  end
  if roll == 4 then
    local entry = table.remove(active, 1)
    return bearer("DELETE", "/api/v1/sessions/current", entry, "logout")
  end
  if roll == 5 and #abandoned > 0 and now - abandoned[1].seen > inactivity + 5 then
    local entry = table.remove(abandoned, 1)
    return bearer("POST", "/api/v1/sessions/authenticate", entry, "expiry")
  end
  local entry = active[math.random(#active)]
  return bearer("POST", "/api/v1/sessions/authenticate", entry, "verify")
end

local function drop_active(entry)
  for i, other in ipairs(active) do
    if other == entry then
      table.remove(active, i)
      return
    end
  end
end

function response(status, headers, body)
  local now = os.time()
  local sent = pending
  pending = nil
  if sent == nil then
    fail("answer " .. status .. " with no request pending")
    return
  end
  local kind = sent.kind
  counts[kind] = counts[kind] + 1
  if kind == "login" then
    local token = status == 200 and string.match(body or "", '"session_token"%s*:%s*"([^"]+)"')
    if token then
      active[#active + 1] = { token = token, seen = now }
      if #active > max_active then
        abandoned[#abandoned + 1] = table.remove(active, 1)
        -- Checks are rarer than abandonments: forget the oldest unchecked ones (the server
        -- still has to expire them; nobody asks).
        if #abandoned > 1000 then
          table.remove(abandoned, 1)
        end
      end
    else
      fail("login answered " .. status)
    end
  elseif kind == "verify" then
    if status == 200 then
      sent.entry.seen = now
    elseif status == 401 and now - sent.entry.seen >= inactivity - inactivity / 10 - 2 then
      counts.expired_on_verify = counts.expired_on_verify + 1
      drop_active(sent.entry)
    else
      fail("verify answered " .. status .. " " .. (now - sent.entry.seen) .. " s after the last 200")
      drop_active(sent.entry)
    end
  elseif kind == "logout" then
    if status == 401 and now - sent.entry.seen >= inactivity - inactivity / 10 - 2 then
      counts.expired_on_verify = counts.expired_on_verify + 1
    elseif status ~= 204 and status ~= 200 then
      fail("logout answered " .. status)
    end
  elseif kind == "expiry" then
    if status ~= 401 then
      fail("a session idle for " .. (now - sent.entry.seen) .. " s answered " .. status)
    end
  end
  flush(false)
end

if delay_ms > 0 then
  local whole = math.floor(delay_ms)
  local fraction = delay_ms - whole
  function delay()
    if math.random() < fraction then
      return whole + 1
    end
    return whole
  end
end

function done(summary, latency, requests)
  local total = { login = 0, verify = 0, logout = 0, expiry = 0, expired_on_verify = 0, errors = 0 }
  for _, thread in ipairs(threads) do
    for key, _ in pairs(total) do
      total[key] = total[key] + (tonumber(thread:get("count_" .. key)) or 0)
    end
  end
  io.write(string.format("soak totals: login=%d verify=%d logout=%d expiry=%d expired_on_verify=%d errors=%d\n",
    total.login, total.verify, total.logout, total.expiry, total.expired_on_verify, total.errors))
end

-- thread:get reads globals of the thread's state: mirror the counters there after each answer.
local respond = response
function response(status, headers, body)
  respond(status, headers, body)
  for key, value in pairs(counts) do
    _G["count_" .. key] = value
  end
end
