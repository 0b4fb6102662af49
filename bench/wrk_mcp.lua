-- wrk script: MCP tools/call of `add` (a=5, b=3) over Streamable HTTP, stateless 2026-07-28
-- era (no initialize, no session: version and capabilities travel in the request's _meta),
-- JSON response. The bearer token is the first script argument; bench/run.py requests it from
-- POST /token with resource=<the server's MCP endpoint> (a token for another audience is
-- refused at /mcp) and checks one call answers 200 with structuredContent.result == 8 first.
-- Usage: wrk --latency -s bench/wrk_mcp.lua http://127.0.0.1:PORT/mcp -- TOKEN
wrk.method = "POST"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add",'
  .. '"arguments":{"a":5,"b":3},"_meta":{"io.modelcontextprotocol/protocolVersion":'
  .. '"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2026-07-28"
wrk.headers["Mcp-Method"] = "tools/call"
wrk.headers["Mcp-Name"] = "add"

function init(args)
  local token = args[1]
  if token == nil or token == "" then
    error("usage: wrk -s bench/wrk_mcp.lua URL -- TOKEN")
  end
  wrk.headers["Authorization"] = "Bearer " .. token
end
