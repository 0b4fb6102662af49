-- wrk script: authenticated POST /calculator/add (put a=5&b=3 in the URL).
-- The bearer token is the first script argument; bench/run.py fetches it from POST /token
-- first. Without an argument no Authorization header is sent (the `bare` target needs none).
-- Usage: wrk --latency -s bench/wrk_add.lua "http://127.0.0.1:PORT/calculator/add?a=5&b=3" -- TOKEN
wrk.method = "POST"

function init(args)
  local token = args[1]
  if token ~= nil and token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
  end
end
