-- The request wrk sends, from the environment (bench/driver.mjs and bench/pairs.sh set it):
--   BENCH_METHOD       GET unless set
--   BENCH_BODY_FILE    a file whose bytes are the body (none unless set)
--   BENCH_CONTENT_TYPE the body's Content-Type (application/octet-stream unless set)
--   BENCH_PIPELINE     requests per write (1 unless set): N copies of the request, sent together,
--                      and the next N only once all N responses came back
-- The path is the one in wrk's URL argument. wrk adds Host and, with a body, Content-Length.
wrk.method = os.getenv("BENCH_METHOD") or "GET"
local body_file = os.getenv("BENCH_BODY_FILE")
if body_file and body_file ~= "" then
  local file = assert(io.open(body_file, "rb"))
  wrk.body = file:read("*a")
  file:close()
  wrk.headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE") or "application/octet-stream"
end

local depth = tonumber(os.getenv("BENCH_PIPELINE") or "1")
if depth > 1 then
  local batch
  init = function(args)
    local requests = {}
    for i = 1, depth do requests[i] = wrk.format() end
    batch = table.concat(requests)
  end
  request = function() return batch end
end
