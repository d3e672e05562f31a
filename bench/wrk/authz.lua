-- wrk script: forward auth as nginx's auth_request asks it,
--   GET /api/authz/auth-request  with the session cookie and X-Forwarded-Proto/Host/URI
-- The token comes from TOKEN or the file named by TOKEN_FILE (first line); the cookie name from
-- COOKIE_NAME; the original host from AUTHZ_HOST (default 127.0.0.1). Usage:
--   TOKEN=... COOKIE_NAME=sd_1234abcd wrk -t1 -c32 -d10s -s bench/wrk/authz.lua http://127.0.0.1:8470

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

local cookie_name = os.getenv("COOKIE_NAME")
if cookie_name == nil or cookie_name == "" then
  error("set COOKIE_NAME to the realm's session cookie name")
end

wrk.method = "GET"
wrk.path = "/api/authz/auth-request"
wrk.headers["Cookie"] = cookie_name .. "=" .. read_token()
wrk.headers["X-Forwarded-Proto"] = "http"
wrk.headers["X-Forwarded-Host"] = os.getenv("AUTHZ_HOST") or "127.0.0.1"
wrk.headers["X-Forwarded-URI"] = "/app/index.html?page=1"
wrk.headers["X-Forwarded-Method"] = "GET"
