"""The Litestar driving adapter: REST, OAuth token endpoint, SSE event stream, OpenAPI docs."""
