"""The Lua scripts of the stream slots: each runs atomically, so racing instances agree.

They read the hashes of other processes by name, keys not passed in ``KEYS``: fine on one Redis
(or a primary with replicas), not on Redis Cluster.
"""

ACQUIRE = """
-- KEYS[1]: the set of holders. ARGV: the holders' hash prefix, this holder, the client's field,
-- this holder's count for the client and in total once the slot is taken, the limit per
-- client, the total limit, the lease (ms).
local client, total = 0, 0
for _, holder in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if holder ~= ARGV[2] then
    local held = redis.call('HMGET', ARGV[1] .. holder, ARGV[3], 'total')
    if held[2] then
      client = client + (tonumber(held[1]) or 0)
      total = total + tonumber(held[2])
    else
      redis.call('SREM', KEYS[1], holder)  -- its lease lapsed: that process is gone
    end
  end
end
if client + tonumber(ARGV[4]) > tonumber(ARGV[6]) then return 1 end
if total + tonumber(ARGV[5]) > tonumber(ARGV[7]) then return 2 end
local mine = ARGV[1] .. ARGV[2]
redis.call('HSET', mine, ARGV[3], ARGV[4], 'total', ARGV[5])
redis.call('PEXPIRE', mine, ARGV[8])
redis.call('SADD', KEYS[1], ARGV[2])
return 0
"""

WRITE = """
-- KEYS[1]: the set of holders, KEYS[2]: this holder's hash. ARGV: this holder, the lease (ms),
-- 1 to rewrite the hash whole, the total, then pairs of a client's field and its count.
if ARGV[3] == '1' or tonumber(ARGV[4]) == 0 then redis.call('DEL', KEYS[2]) end
if tonumber(ARGV[4]) == 0 then
  redis.call('SREM', KEYS[1], ARGV[1])
  return 0
end
for i = 5, #ARGV, 2 do
  if tonumber(ARGV[i + 1]) == 0 then
    redis.call('HDEL', KEYS[2], ARGV[i])
  else
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  end
end
redis.call('HSET', KEYS[2], 'total', ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[1], ARGV[1])
return 0
"""
