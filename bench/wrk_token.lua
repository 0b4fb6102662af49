-- wrk script: POST /token with the client-credentials form of the dev client.
-- Usage: wrk --latency -s bench/wrk_token.lua http://127.0.0.1:PORT/token
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&client_id=example_client_id"
  .. "&client_secret=example_client_secret&scope=calculator+sse"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
