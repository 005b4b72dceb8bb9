"""Lua scripts: each one is a single atomic step of a job's life in Redis.

KEYS are always ``JobKeys.all``, in order: job hash, paths list, results hash, blobs
hash, chunks-done set, active-jobs set, attempts hash, large-blobs set (a large file's bytes
are the key ``KEYS[8] .. ':' .. index``); scripts that may end the job get the webhook queue
as KEYS[9] (``JobKeys.ending``), the lease scripts the chunk's lease. Field names of the job hash are
written ``$name`` and filled in from ``JOB_HASH``, so the scripts and the store cannot
disagree about them.
"""

from podium.stores.jobstore.chunk_layout import CHUNK_LAYOUT_LUA
from podium.stores.jobstore.schema import COMPACT_QUEUE_KEY, JOB_HASH

# The key of an upload's large file ``index`` (``JobKeys.large_blob``).
_LARGE_BLOB_KEY = """
local function large_blob(index) return KEYS[8] .. ':' .. index end
"""

# Ends a job: the state, its channel, its keys' TTLs, and its webhook (KEYS[9]) queued.
_END_JOB = (
    _LARGE_BLOB_KEY
    + """
local function end_job(state, err, now, ttl)
  redis.call('HSET', KEYS[1], $state, state, $error, err, $finished_at, now, $updated_at, now, $pending_bytes, 0)
  redis.call('PUBLISH', KEYS[1] .. ':ended', state)
  for _, index in ipairs(redis.call('SMEMBERS', KEYS[8])) do redis.call('DEL', large_blob(index)) end
  redis.call('DEL', KEYS[4], KEYS[5], KEYS[7], KEYS[8])
  -- A completed job with a results sink has every answer in its files: Redis keeps its record only.
  local sink = redis.call('HGET', KEYS[1], $results_url)
  if state == 'completed' and sink and sink ~= '' then redis.call('DEL', KEYS[2], KEYS[3]) end
  local id = redis.call('HGET', KEYS[1], $id)
  if sink and sink ~= '' then redis.call('ZADD', @compact_queue, now, id) end
  -- A delta job that completed is the one its name's next run compares with.
  local delta = redis.call('HGET', KEYS[1], $delta_key)
  if state == 'completed' and delta and delta ~= '' then redis.call('SET', delta, id) end
  redis.call('SREM', KEYS[6], id)
  for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ttl) end
  local hook = redis.call('HGET', KEYS[1], $webhook)
  if hook and hook ~= '' then redis.call('LPUSH', KEYS[9], id) end
  -- A job key names its job as long as the job is kept, not only until the upload's deadline.
  local binding = redis.call('HGET', KEYS[1], $job_key_binding)
  if binding and binding ~= '' and redis.call('GET', binding) == id then redis.call('EXPIRE', binding, ttl) end
end
""".replace("@compact_queue", f"'{COMPACT_QUEUE_KEY}'")
)

# A job is complete when its upload is done and every image has a result.
_COMPLETE_IF_DONE = (
    _END_JOB
    + CHUNK_LAYOUT_LUA
    + """
local function complete_if_done(now, ttl)
  local j = redis.call('HMGET', KEYS[1], $state, $upload_done, $total, $succeeded, $failed, $results_url,
                       $chunk_size, $chunk_layout)
  if j[1] ~= 'running' or j[2] ~= '1' then return end
  if tonumber(j[4]) + tonumber(j[5]) < tonumber(j[3]) then return end
  -- With a results sink, a chunk is done once its file landed (COMPLETE_CHUNK). Every image
  -- has an answer, so every chunk was dispatched: the layout is final.
  if j[6] and j[6] ~= '' and
     redis.call('SCARD', KEYS[5]) < chunk_count(chunk_segments(j[7], j[8]), tonumber(j[3])) then return end
  end_job('completed', '', now, ttl)
end
"""
)

# The job's max_failed (podium.core.jobs.FailureLimit): the reason it is exceeded, or nil. A count is
# checked at once, a percentage only once the total is known (upload done). settle: the
# job fails past its limit, or completes if every image has a result.
_OVER_FAILURE_LIMIT = """
local function over_failure_limit()
  local j = redis.call('HMGET', KEYS[1], $failed, $total, $upload_done, $fail_count_limit, $fail_percent_limit)
  local failed, total = tonumber(j[1]), tonumber(j[2])
  local count, percent = tonumber(j[4] or '-1'), tonumber(j[5] or '-1')
  local bound = nil
  if count and count >= 0 and failed > count then bound = tostring(count) end
  if percent and percent >= 0 and j[3] == '1' and total > 0 and failed * 100 > percent * total then
    bound = tostring(percent) .. '% of ' .. total
  end
  if not bound then return nil end
  return failed .. ' images failed, more than the job allows (max_failed ' .. bound .. '); the rest were not processed'
end

local function settle(check_limit, now, ttl)
  local over = check_limit and over_failure_limit()
  if over then
    end_job('failed', over, now, ttl)
  else
    complete_if_done(now, ttl)
  end
end
"""

# One image's result, recorded once: 1 if recorded, 0 if already there (or the job over),
# -1 if the job is gone. Each result settles the job (its failure limit, its completion),
# so an image after the one that ended the job is not recorded.
_RECORD_ONE = """
-- The job's chunk layout if it has a results sink, else false: read once per call, not once
-- per image (recording changes neither).
local sink_segs = nil
local function sink_layout()
  if sink_segs == nil then
    local sink = redis.call('HMGET', KEYS[1], $results_url, $chunk_size, $chunk_layout)
    sink_segs = sink[1] and sink[1] ~= '' and chunk_segments(sink[2], sink[3])
  end
  return sink_segs
end
local function record_one(index, payload, ok, cached, now, ttl)
  if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
  local state = redis.call('HGET', KEYS[1], $state)
  if state ~= 'running' and state ~= 'uploading' then return 0 end
  -- A chunk whose file landed has no records left to guard it (COMPLETE_CHUNK): its done mark does.
  local segs = sink_layout()
  if segs and redis.call('SISMEMBER', KEYS[5], chunk_of(segs, tonumber(index))) == 1 then
    return 0
  end
  if redis.call('HSETNX', KEYS[3], index, payload) == 0 then return 0 end
  redis.call('HINCRBY', KEYS[1], ok == '1' and $succeeded or $failed, 1)
  if cached == '1' then redis.call('HINCRBY', KEYS[1], $cached, 1) end
  redis.call('HSET', KEYS[1], $updated_at, now)
  local size = redis.call('HSTRLEN', KEYS[4], index)
  if size > 0 then
    redis.call('HDEL', KEYS[4], index)
    redis.call('HINCRBY', KEYS[1], $pending_bytes, -size)
  elseif redis.call('SREM', KEYS[8], index) == 1 then
    local large = large_blob(index)
    redis.call('HINCRBY', KEYS[1], $pending_bytes, -redis.call('STRLEN', large))
    redis.call('DEL', large)
  end
  settle(ok ~= '1', now, ttl)
  return 1
end
"""

# ARGV: index, payload, ok ('1'|'0'), now, ttl_s, cached ('1'|'0'). Returns record_one's answer.
RECORD_RESULT = JOB_HASH.lua(
    _COMPLETE_IF_DONE
    + _OVER_FAILURE_LIMIT
    + _RECORD_ONE
    + """
return record_one(ARGV[1], ARGV[2], ARGV[3], ARGV[6], ARGV[4], ARGV[5])
"""
)

# ARGV: now, ttl_s, then (index, payload, ok, cached) per image: a chunk's results in one
# call, each exactly as RECORD_RESULT records it. Returns record_one's answer per image.
RECORD_RESULTS = JOB_HASH.lua(
    _COMPLETE_IF_DONE
    + _OVER_FAILURE_LIMIT
    + _RECORD_ONE
    + """
local answers = {}
for i = 3, #ARGV, 4 do
  answers[#answers + 1] = record_one(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[1], ARGV[2])
end
return answers
"""
)

# ARGV: now, new total, number of paths n, the n paths, the number m of large files, their m
# indices (each one staged whole by STAGE_LARGE_BLOB), then (index, bytes) pairs of the other
# uploaded files. Appends while the job is uploading (a job cancelled meanwhile gets no key
# back without a TTL); returns 1, or 0 when the job is not uploading.
APPEND_FILES = JOB_HASH.lua(
    _LARGE_BLOB_KEY
    + """
if redis.call('HGET', KEYS[1], $state) ~= 'uploading' then return 0 end
local unpack = unpack or table.unpack
local n = tonumber(ARGV[3])
for first = 4, 3 + n, 500 do
  redis.call('RPUSH', KEYS[2], unpack(ARGV, first, math.min(first + 499, 3 + n)))
end
local bytes = 0
local m = tonumber(ARGV[4 + n])
for i = 5 + n, 4 + n + m do bytes = bytes + redis.call('STRLEN', large_blob(ARGV[i])) end
for i = 5 + n + m, #ARGV, 2 do
  redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1])
  bytes = bytes + string.len(ARGV[i + 1])
end
redis.call('HINCRBY', KEYS[1], $pending_bytes, bytes)
redis.call('HSET', KEYS[1], $total, ARGV[2], $updated_at, ARGV[1])
return 1
"""
)

# ARGV: index, offset, size, piece. Writes ``piece`` at ``offset`` of an upload's large file
# while the job is uploading: offset 0 starts the file (listed in KEYS[8], its string made
# ``size`` bytes long at once, so later pieces never move it). A file too large for one
# command goes in pieces: a command's time, and the append-only file's write after it, stay
# bounded for every other client. Returns 1, or 0 when the job is not uploading (or ended
# and took the file's key with it).
STAGE_LARGE_BLOB = JOB_HASH.lua(
    _LARGE_BLOB_KEY
    + """
if redis.call('HGET', KEYS[1], $state) ~= 'uploading' then return 0 end
local large = large_blob(ARGV[1])
if ARGV[2] == '0' then
  redis.call('SADD', KEYS[8], ARGV[1])
  redis.call('DEL', large)
  redis.call('SETRANGE', large, tonumber(ARGV[3]) - 1, string.char(0))
elseif redis.call('SISMEMBER', KEYS[8], ARGV[1]) == 0 then
  return 0
end
redis.call('SETRANGE', large, ARGV[2], ARGV[4])
return 1
"""
)

# ARGV: now, ttl_s. Marks the upload finished; an empty job completes at once, and one
# already past a percentage max_failed fails.
FINISH_UPLOAD = JOB_HASH.lua(
    _COMPLETE_IF_DONE
    + _OVER_FAILURE_LIMIT
    + """
if redis.call('HGET', KEYS[1], $state) ~= 'uploading' then return 0 end
redis.call('HSET', KEYS[1], $state, 'running', $upload_done, '1', $updated_at, ARGV[1])
settle(true, ARGV[1], ARGV[2])
return 1
"""
)

# ARGV: max chunks queued per job; the size its next chunks grow to (0 or no larger than now:
# they keep theirs; chunk_layout); the parts its last images are shared in (0: none) and the
# fewest images a chunk of them gets; '1' (held by its limits) or '2' (by Redis's memory) to
# send an upload's files that arrived as a chunk even if they fill none, when none of its
# chunks is in flight (chunk_layout.HeldBack). Claims the next chunks to
# enqueue, returns their numbers.
DISPATCH_CHUNKS = JOB_HASH.lua(
    CHUNK_LAYOUT_LUA
    + """
local j = redis.call('HMGET', KEYS[1], $state, $upload_done, $total, $dispatched, $chunk_size, $chunk_layout)
if j[1] ~= 'running' and j[1] ~= 'uploading' then return {} end
local total, dispatched = tonumber(j[3]), tonumber(j[4])
local segs = chunk_segments(j[5], j[6])
local grow = tonumber(ARGV[2] or '0') or 0
local parts, fewest = tonumber(ARGV[3] or '0') or 0, tonumber(ARGV[4] or '1') or 1
local layout = j[6] or ''
local in_flight = dispatched - redis.call('SCARD', KEYS[5])
local out = {}
while in_flight < tonumber(ARGV[1]) do
  local first, size = chunk_span(segs, dispatched)
  if first >= total then break end
  local wanted = math.max(size, grow)
  if parts > 0 and j[1] == 'running' then
    -- Near the end, each chunk takes a share of what is left, so the workers finish together
    -- instead of one running a whole large chunk while the others idle.
    wanted = math.min(wanted, math.max(fewest, math.ceil((total - first) / parts)))
  end
  if wanted ~= size and first + math.min(size, wanted) < total then
    -- The chunks from here on have another size: a segment starts at the frontier.
    segs[#segs + 1] = {dispatched, first, wanted}
    layout = layout .. ' ' .. dispatched .. ':' .. first .. ':' .. wanted
    size = wanted
  end
  if first + size > total and j[2] ~= '1' then
    -- An upload whose next chunk has not all its files yet. Held back by its limits on files
    -- not yet processed with none of its chunks in flight (so none will make room), it sends
    -- those that arrived as a smaller chunk now: a chunk larger than the room would never
    -- fill. What arrived is the room; the chunks after it take a quarter of it, and growth
    -- stops there, so the job streams on in whole chunks and its layout gains two segments
    -- per fourfold cut, not two per chunk. Held by Redis's memory instead, what arrived says
    -- little of the room (a passing high-water mark may find two files in): they keep at
    -- least half their size, so a passing hold costs a halving, not the job's speed, and
    -- holds that persist still shrink them, two segments per halving.
    local held = ARGV[5] or '0'
    if (held ~= '1' and held ~= '2') or in_flight > 0 then break end
    local arrived = total - first
    local after = math.floor(arrived / 4)
    if held == '2' then after = math.max(after, math.floor(size / 2)) end
    after = math.max(1, math.min(size, after))
    segs[#segs + 1] = {dispatched, first, arrived}
    segs[#segs + 1] = {dispatched + 1, total, after}
    layout = layout .. ' ' .. dispatched .. ':' .. first .. ':' .. arrived
    layout = layout .. ' ' .. (dispatched + 1) .. ':' .. total .. ':' .. after
    redis.call('HSET', KEYS[1], $max_chunk_size, after)
    table.insert(out, dispatched)
    dispatched = dispatched + 1
    break
  end
  table.insert(out, dispatched)
  dispatched = dispatched + 1
  in_flight = in_flight + 1
end
redis.call('HSET', KEYS[1], $dispatched, dispatched)
if layout ~= (j[6] or '') then redis.call('HSET', KEYS[1], $chunk_layout, layout) end
return out
"""
)

# ARGV: new state ('cancelled'|'failed'), error, now, ttl_s. Ends a job that is not over.
END_JOB = JOB_HASH.lua(
    _END_JOB
    + """
local state = redis.call('HGET', KEYS[1], $state)
if not state then return -1 end
if state == 'completed' or state == 'cancelled' or state == 'failed' then return 0 end
end_job(ARGV[1], ARGV[2], ARGV[3], ARGV[4])
return 1
"""
)

# ARGV: chunk number, now, ttl_s. Counts a chunk as done while the job runs (a finished job
# keeps no set); with a results sink, the chunk's file has landed: its records leave Redis,
# and the last chunk completes the job. Returns 1 if the chunk was counted, 2 if that
# completed the job, 0 if it was counted before or the job is over.
COMPLETE_CHUNK = JOB_HASH.lua(
    _COMPLETE_IF_DONE
    + """
local state = redis.call('HGET', KEYS[1], $state)
if state ~= 'running' and state ~= 'uploading' then return 0 end
if redis.call('SADD', KEYS[5], ARGV[1]) == 0 then return 0 end
local j = redis.call('HMGET', KEYS[1], $results_url, $chunk_size, $chunk_layout)
if j[1] and j[1] ~= '' then
  local first, size = chunk_span(chunk_segments(j[2], j[3]), tonumber(ARGV[1]))
  local fields = {}
  for i = first, first + size - 1 do fields[#fields + 1] = i end
  local unpack = unpack or table.unpack
  for first = 1, #fields, 500 do
    redis.call('HDEL', KEYS[3], unpack(fields, first, math.min(first + 499, #fields)))
  end
end
complete_if_done(ARGV[2], ARGV[3])
if redis.call('HGET', KEYS[1], $state) == 'completed' then return 2 end
return 1
"""
)

# ARGV: field, increment. Counts starts of an image in the attempts hash while the job
# runs (a finished job's hash is gone and must not come back without a TTL). Returns the
# new count, or -1.
COUNT_ATTEMPT = JOB_HASH.lua("""
local state = redis.call('HGET', KEYS[1], $state)
if state ~= 'running' and state ~= 'uploading' then return -1 end
return redis.call('HINCRBY', KEYS[7], ARGV[1], ARGV[2])
""")

# KEYS[9]: the chunk's lease. ARGV: chunk, token, lease_s. Takes the chunk for one worker:
# {'ended'} job over, {'done'} chunk finished, {'busy', ttl_ms} another live worker holds
# it, {'ok', n} taken, n-1 = earlier starts that ended without releasing (their worker died).
ACQUIRE_CHUNK = JOB_HASH.lua("""
local state = redis.call('HGET', KEYS[1], $state)
if state ~= 'running' and state ~= 'uploading' then return {'ended', 0} end
if redis.call('SISMEMBER', KEYS[5], ARGV[1]) == 1 then return {'done', 0} end
if not redis.call('SET', KEYS[9], ARGV[2], 'NX', 'EX', ARGV[3]) then
  return {'busy', redis.call('PTTL', KEYS[9])}
end
local starts = redis.call('HINCRBY', KEYS[7], 'c:' .. ARGV[1], 1)
if starts > 1 then redis.call('HINCRBY', KEYS[1], $retries, 1) end
return {'ok', starts}
""")

# KEYS[9]: the lease. ARGV: token, lease_s. Extends the lease if this worker still holds it.
RENEW_CHUNK = """
if redis.call('GET', KEYS[9]) ~= ARGV[1] then return 0 end
return redis.call('EXPIRE', KEYS[9], ARGV[2])
"""

# KEYS[9]: the lease. ARGV: chunk, token. The start ended without the process dying: it
# is not counted as a crash, and the lease is free for the next start.
RELEASE_CHUNK = JOB_HASH.lua("""
if redis.call('GET', KEYS[9]) ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[9])
local state = redis.call('HGET', KEYS[1], $state)
if state == 'running' or state == 'uploading' then
  redis.call('HINCRBY', KEYS[7], 'c:' .. ARGV[1], -1)
end
return 1
""")


# KEYS[1]: a job key's binding. ARGV: job id, ttl_s. Binds the key unless it is bound to a
# job already; returns the job it is bound to (one of two concurrent submits wins).
BIND_JOB_KEY = """
local bound = redis.call('GET', KEYS[1])
if bound then return bound end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return ARGV[1]
"""

# KEYS[1]: a job key's binding. ARGV: job id. Removes it if it still names that job.
UNBIND_JOB_KEY = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
