"""The Model Context Protocol engine, transport-free: JSON-RPC messages, protocol versions, and
the calculator's tools and events resource mapped onto the application's use cases.

Hand-written rather than built on the official SDK: the tools surface is small, and the SDK's
server serves a third of this service's REST throughput and costs stdio launches 0.75 s of
imports (see issue 7). The SDK's client is what the interoperability tests use.
"""
