-- wrk script: validate a session the way an app does on each of its requests,
--   POST /api/v1/sessions/authenticate  with  Authorization: Bearer <token>
-- The token comes from the TOKEN environment variable, or from the file named by TOKEN_FILE
-- (first line). Usage:
--   TOKEN=... wrk -t1 -c32 -d10s -s bench/wrk/authenticate.lua http://127.0.0.1:8470
--
-- Two optional variables, for run-scale.sh:
--   TOKENS_FILE=<file>  many tokens, one per line, sent in turn (round-robin) instead of one;
--   DELAY_MS=<ms>       pause of each connection between its requests (fractions are spread
--                       over requests), so that C connections ask about C * 1000 / DELAY_MS
--                       requests per second at most: wrk's way to hold a rate below its maximum.

local function read_token()
  local token = os.getenv("TOKEN")
  if token ~= nil and token ~= "" then
    return token
  end
  local path = os.getenv("TOKEN_FILE")
  if path ~= nil and path ~= "" then
    local file = assert(io.open(path, "r"), "cannot open TOKEN_FILE " .. path)
    token = file:read("*l")
    file:close()
    if token ~= nil and token ~= "" then
      return token
    end
  end
  error("set TOKEN to a session token, or TOKEN_FILE to a file holding one")
end

wrk.method = "POST"
wrk.path = "/api/v1/sessions/authenticate"
wrk.headers["Content-Type"] = "application/json"
wrk.body = "{}"

local tokens_file = os.getenv("TOKENS_FILE")
if tokens_file ~= nil and tokens_file ~= "" then
  local tokens = {}
  for line in io.lines(tokens_file) do
    if line ~= "" then
      tokens[#tokens + 1] = line
    end
  end
  if #tokens == 0 then
    error("TOKENS_FILE " .. tokens_file .. " holds no tokens")
  end
  -- Each wrk thread starts at its own random place, so threads do not ask in lockstep.
  local next_token = 0
  function init(args)
    math.randomseed(os.time() + math.floor(os.clock() * 1e6))
    next_token = math.random(#tokens) - 1
  end
  function request()
    next_token = next_token % #tokens + 1
    wrk.headers["Authorization"] = "Bearer " .. tokens[next_token]
    return wrk.format()
  end
else
  wrk.headers["Authorization"] = "Bearer " .. read_token()
end

local delay_ms = tonumber(os.getenv("DELAY_MS") or "")
if delay_ms ~= nil and delay_ms > 0 then
  local whole = math.floor(delay_ms)
  local fraction = delay_ms - whole
  function delay()
    if math.random() < fraction then
      return whole + 1
    end
    return whole
  end
end
