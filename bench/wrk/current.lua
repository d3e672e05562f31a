-- wrk script: read the caller's session,
--   GET /api/v1/sessions/current  with  Authorization: Bearer <token>
-- The token comes from the TOKEN environment variable, or from the file named by TOKEN_FILE
-- (first line). Usage:
--   TOKEN=... wrk -t1 -c32 -d10s -s bench/wrk/current.lua http://127.0.0.1:8470

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

wrk.method = "GET"
wrk.path = "/api/v1/sessions/current"
wrk.headers["Authorization"] = "Bearer " .. read_token()
