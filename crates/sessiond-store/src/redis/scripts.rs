//! The Lua scripts that change a bucket atomically.
//!
//! Each script takes one key (`KEYS[1]`, which routes it to the right cluster node) and the key
//! prefix as `ARGV[1]`; every other key it touches carries the same hash tag as `KEYS[1]`, or, on
//! a single server (where slots do not matter), is the pointer `KEYS[1]` leads to. Replies are
//! flat arrays of strings: a status first where there is one.
//!
//! Values read from Redis are checked before use (types, hex names), because a key may hold
//! anything another client wrote: a script never fails half-way on a foreign value.
//!
//! Scripts that end or change sessions publish the invalidation themselves, so a write and its
//! broadcast are one atomic step: no acknowledged write goes unannounced. Plain `PUBLISH` (not
//! the sharded kind): a shard channel would have to share the bucket's slot, and Redis Cluster
//! forwards plain messages to every node.

use redis::Script;

/// Shared functions, placed in front of every script.
const PRELUDE: &str = r"
local P = ARGV[1]
local function skey(bb, sid) return P .. 's:{' .. bb .. '}:' .. sid end
local function kind(k) return redis.call('TYPE', k)['ok'] end
local function ishex(s, n)
  return type(s) == 'string' and #s == n and not string.find(s, '[^0-9a-f]')
end
-- Extends a key's lifetime to at least ttl milliseconds; never shortens it.
local function extend(k, ttl)
  local left = redis.call('PTTL', k)
  if left == -1 or (left >= 0 and left < ttl) then redis.call('PEXPIRE', k, ttl) end
end
-- Where a session lives. The caller passes sid and bucket when it read the pointer itself
-- (cluster); otherwise KEYS[1] is the pointer: a token pointer holds the bucket, an id pointer
-- the bucket and the sid (then sid is passed empty).
local function locate(sid, bb)
  if bb ~= '' then return sid, bb end
  local t = kind(KEYS[1])
  if t == 'none' then return nil, 'none' end
  if t ~= 'string' then return nil, 'bad' end
  local v = redis.call('GET', KEYS[1])
  if sid == '' then
    if not ishex(v, 34) then return nil, 'bad' end
    return string.sub(v, 3), string.sub(v, 1, 2)
  end
  if not ishex(v, 2) then return nil, 'bad' end
  return sid, v
end
-- Tells every instance to drop its cached copies: 'clear', or sids separated by spaces. pcall:
-- a Redis whose ACL forbids the channel must not fail the write (instances that cannot
-- subscribe do not cache).
local function broadcast(msg) redis.pcall('PUBLISH', P .. 'invalidate', msg) end
-- Removes one session and its index entries (and its pointers when they are reachable).
-- Returns {r, t, i} when a session was there.
local function remove(bb, sid, pointers)
  redis.call('ZREM', P .. 'x:{' .. bb .. '}', sid)
  local k = skey(bb, sid)
  if kind(k) ~= 'hash' then return nil end
  local f = redis.call('HMGET', k, 'r', 't', 'i', 'u', 'n', 'm')
  redis.call('DEL', k)
  if ishex(f[4], 32) then redis.call('SREM', P .. 'u:{' .. bb .. '}:' .. f[4], sid) end
  if ishex(f[5], 32) then redis.call('SREM', P .. 'n:{' .. bb .. '}:' .. f[5], sid) end
  if ishex(f[6], 32) then redis.call('SREM', P .. 'm:{' .. bb .. '}:' .. f[6], sid) end
  if pointers == '1' then
    redis.call('DEL', P .. 't:' .. sid)
    if ishex(f[3], 32) then redis.call('DEL', P .. 'i:' .. f[3]) end
  end
  return {f[1] or '', f[2] or '', f[3] or ''}
end
";

/// ARGV: prefix, sid, bucket, r, t, id tag, realm-user tag, user tag, realm tag,
/// pointer deadline, expires_at, ttl ms, pointer ttl ms, set pointers here ('1'/'0').
/// Reply: 'ok' or 'conflict'.
const CREATE: &str = r"
local sid, bb = ARGV[2], ARGV[3]
local k = skey(bb, sid)
local tptr, iptr = P .. 't:' .. sid, P .. 'i:' .. ARGV[6]
if ARGV[14] == '1' and redis.call('EXISTS', tptr, iptr) > 0 then return 'conflict' end
if redis.call('EXISTS', k) == 1 then return 'conflict' end
if ARGV[14] == '1' then
  redis.call('SET', tptr, bb, 'PX', ARGV[13])
  redis.call('SET', iptr, bb .. sid, 'PX', ARGV[13])
end
local ttl = tonumber(ARGV[12])
redis.call('HSET', k, 'r', ARGV[4], 't', ARGV[5], 'i', ARGV[6], 'u', ARGV[7], 'n', ARGV[8], 'm', ARGV[9], 'p', ARGV[10])
redis.call('PEXPIRE', k, ttl)
for _, s in ipairs({P .. 'u:{' .. bb .. '}:' .. ARGV[7], P .. 'n:{' .. bb .. '}:' .. ARGV[8],
                    P .. 'm:{' .. bb .. '}:' .. ARGV[9]}) do
  redis.call('SADD', s, sid)
  extend(s, ttl)
end
local x = P .. 'x:{' .. bb .. '}'
redis.call('ZADD', x, ARGV[11], sid)
extend(x, ttl)
return 'ok'
";

/// ARGV: prefix, sid, bucket. Reply: {'ok', sid, bucket, r, t} | {'none'} | {'bad'} |
/// {'foreign', sid, bucket}.
const READ: &str = r"
local sid, bb = locate(ARGV[2], ARGV[3])
if not sid then return {bb} end
local k = skey(bb, sid)
local t = kind(k)
if t == 'none' then return {'none'} end
if t ~= 'hash' then return {'foreign', sid, bb} end
local f = redis.call('HMGET', k, 'r', 't')
return {'ok', sid, bb, f[1] or '', f[2] or ''}
";

/// ARGV: prefix, sid, bucket, t, expires_at, ttl ms. Reply: {'ok'} | {'none'} | {'bad'} |
/// {'extend', id tag}: the pointers must now live `ttl` too (only when the caller located the
/// session itself; otherwise the script extends them).
const TOUCH: &str = r"
local via_pointer = ARGV[3] == ''
local sid, bb = locate(ARGV[2], ARGV[3])
if not sid then return {bb} end
local k = skey(bb, sid)
if kind(k) ~= 'hash' then return {'none'} end
local ttl = tonumber(ARGV[6])
redis.call('HSET', k, 't', ARGV[4])
redis.call('PEXPIRE', k, ttl)
broadcast(sid)
local x = P .. 'x:{' .. bb .. '}'
redis.call('ZADD', x, ARGV[5], sid)
extend(x, ttl)
local f = redis.call('HMGET', k, 'u', 'n', 'm', 'p', 'i')
if ishex(f[1], 32) then extend(P .. 'u:{' .. bb .. '}:' .. f[1], ttl) end
if ishex(f[2], 32) then extend(P .. 'n:{' .. bb .. '}:' .. f[2], ttl) end
if ishex(f[3], 32) then extend(P .. 'm:{' .. bb .. '}:' .. f[3], ttl) end
local p = tonumber(f[4])
if p == nil or tonumber(ARGV[5]) > p then
  redis.call('HSET', k, 'p', ARGV[5])
  if not via_pointer then return {'extend', f[5] or ''} end
  redis.call('PEXPIRE', KEYS[1], ttl, 'GT')
  if ishex(f[5], 32) then redis.call('PEXPIRE', P .. 'i:' .. f[5], ttl, 'GT') end
end
return {'ok'}
";

/// ARGV: prefix, sid, bucket. Reply: {'ok', sid, bucket, r, t, id tag} | {'none'} | {'bad'}.
const DELETE: &str = r"
local via_pointer = ARGV[3] == ''
local sid, bb = locate(ARGV[2], ARGV[3])
if not sid then return {bb} end
local f = remove(bb, sid, via_pointer and '1' or '0')
if not f then
  if via_pointer then redis.call('DEL', KEYS[1]) end
  return {'none'}
end
broadcast(sid)
return {'ok', sid, bb, f[1], f[2], f[3]}
";

/// KEYS[1]: a set of sids in one bucket. ARGV: prefix, bucket, sid to keep ('' for none),
/// delete pointers here ('1'/'0'), return the sealed fields ('1'/'0'), broadcast the sids ('s')
/// or 'clear' ('c').
/// Reply: sid, r, t, id tag for each deleted session.
const DELETE_SET: &str = r"
local out = {}
if kind(KEYS[1]) ~= 'set' then return out end
local gone = {}
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if sid ~= ARGV[3] then
    redis.call('SREM', KEYS[1], sid)
    if ishex(sid, 32) then
      local f = remove(ARGV[2], sid, ARGV[4])
      if f then
        table.insert(gone, sid)
        if ARGV[5] == '1' then
          table.insert(out, sid); table.insert(out, f[1]); table.insert(out, f[2]); table.insert(out, f[3])
        else
          table.insert(out, sid); table.insert(out, ''); table.insert(out, ''); table.insert(out, f[3])
        end
      end
    end
  end
end
if #gone > 0 then
  if ARGV[6] == 's' then broadcast(table.concat(gone, ' ')) else broadcast('clear') end
end
return out
";

/// KEYS[1]: a bucket's expiry index. ARGV: prefix, bucket, now, limit, delete pointers here.
/// Reply: how many due entries were looked at, then sid and id tag of each deleted session.
const SWEEP: &str = r"
if kind(KEYS[1]) ~= 'zset' then return {'0'} end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[3], 'LIMIT', 0, tonumber(ARGV[4]))
local out = {tostring(#due)}
local gone = {}
for _, sid in ipairs(due) do
  if ishex(sid, 32) then
    local f = remove(ARGV[2], sid, ARGV[5])
    if f then table.insert(out, sid); table.insert(out, f[3]); table.insert(gone, sid) end
  else
    redis.call('ZREM', KEYS[1], sid)
  end
end
if #gone > 0 then broadcast(table.concat(gone, ' ')) end
return out
";

/// KEYS[1]: a set of sids, or a bucket's expiry index. ARGV: prefix, bucket.
/// Reply: sid, r, t for each session; members whose session is gone leave the set.
const LIST: &str = r"
local t = kind(KEYS[1])
local members
if t == 'set' then members = redis.call('SMEMBERS', KEYS[1])
elseif t == 'zset' then members = redis.call('ZRANGE', KEYS[1], 0, -1)
else return {} end
local out = {}
for _, sid in ipairs(members) do
  if ishex(sid, 32) then
    local k = skey(ARGV[2], sid)
    local kt = kind(k)
    if kt == 'hash' then
      local f = redis.call('HMGET', k, 'r', 't')
      table.insert(out, sid); table.insert(out, f[1] or ''); table.insert(out, f[2] or '')
    elseif kt == 'none' and t == 'set' then
      redis.call('SREM', KEYS[1], sid)
    end
  end
end
return out
";

/// Reads a string key without failing on another type. Reply: {'ok', value} | {'none'} | {'bad'}.
const GET: &str = r"
local t = kind(KEYS[1])
if t == 'none' then return {'none'} end
if t ~= 'string' then return {'bad'} end
return {'ok', redis.call('GET', KEYS[1])}
";

/// Stores the sealed index key `ARGV[2]` unless one is there. Reply: {'created'} | {'found', value}
/// | {'bad'}.
const INDEX_KEY: &str = r"
local t = kind(KEYS[1])
if t == 'none' then
  redis.call('SET', KEYS[1], ARGV[2])
  return {'created'}
end
if t ~= 'string' then return {'bad'} end
return {'found', redis.call('GET', KEYS[1])}
";

/// Replaces `ARGV[2]` by `ARGV[3]` only if the key still holds `ARGV[2]`. Reply: 1 or 0.
const REPLACE: &str = r"
if kind(KEYS[1]) == 'string' and redis.call('GET', KEYS[1]) == ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[3])
  return 1
end
return 0
";

/// Writes entry `KEYS[1]` (value `ARGV[2]`, lifetime `ARGV[3]` ms, `0` for none) and lists it in
/// its kind's index `KEYS[2]`. Reply: 1.
const ENTRY_PUT: &str = r"
redis.call('SET', KEYS[1], ARGV[2])
if tonumber(ARGV[3]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
redis.call('SADD', KEYS[2], KEYS[1])
return 1
";

/// Compare and swap of entry `KEYS[1]` (index `KEYS[2]`): proceeds only when the key holds
/// exactly the value read before (`ARGV[2]` = 'none' for no string key, else 'some' and `ARGV[3]` the
/// stored bytes), then writes `ARGV[4]` with lifetime `ARGV[5]` ms, or deletes the entry when
/// `ARGV[4]` is empty. Reply: 1 when swapped, 0 when the entry changed in between.
const ENTRY_SWAP: &str = r"
local t = kind(KEYS[1])
if ARGV[2] == 'none' then
  -- A key of another type was read as absent, and is replaced like one.
  if t == 'string' then return 0 end
elseif t ~= 'string' or redis.call('GET', KEYS[1]) ~= ARGV[3] then
  return 0
end
if ARGV[4] == '' then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[4])
  if tonumber(ARGV[5]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[5]) end
  redis.call('SADD', KEYS[2], KEYS[1])
end
return 1
";

/// Deletes entry `KEYS[1]` and its place in index `KEYS[2]`. Reply: 1 when it existed.
const ENTRY_DELETE: &str = r"
redis.call('SREM', KEYS[2], KEYS[1])
return redis.call('DEL', KEYS[1])
";

/// Every entry of the index `KEYS[1]` that still exists, as {name, value, ...}; names whose
/// key expired or holds another type leave the index.
const ENTRY_LIST: &str = r"
local out = {}
for _, k in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if kind(k) == 'string' then
    table.insert(out, k)
    table.insert(out, redis.call('GET', k))
  else
    redis.call('SREM', KEYS[1], k)
  end
end
return out
";

/// Every script, hashed once.
pub(crate) struct Scripts {
    pub(crate) create: Script,
    pub(crate) read: Script,
    pub(crate) touch: Script,
    pub(crate) delete: Script,
    pub(crate) delete_set: Script,
    pub(crate) sweep: Script,
    pub(crate) list: Script,
    pub(crate) get: Script,
    pub(crate) index_key: Script,
    pub(crate) replace: Script,
    pub(crate) entry_put: Script,
    pub(crate) entry_swap: Script,
    pub(crate) entry_delete: Script,
    pub(crate) entry_list: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        let with_prelude = |body: &str| Script::new(&format!("{PRELUDE}{body}"));
        Self {
            create: with_prelude(CREATE),
            read: with_prelude(READ),
            touch: with_prelude(TOUCH),
            delete: with_prelude(DELETE),
            delete_set: with_prelude(DELETE_SET),
            sweep: with_prelude(SWEEP),
            list: with_prelude(LIST),
            get: with_prelude(GET),
            index_key: with_prelude(INDEX_KEY),
            replace: with_prelude(REPLACE),
            entry_put: with_prelude(ENTRY_PUT),
            entry_swap: with_prelude(ENTRY_SWAP),
            entry_delete: with_prelude(ENTRY_DELETE),
            entry_list: with_prelude(ENTRY_LIST),
        }
    }
}
