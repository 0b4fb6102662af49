"""Protocol versions: which eras this server speaks, and how a version is negotiated."""

from __future__ import annotations

MODERN = "2026-07-28"
"""The current, stateless revision: version and capabilities travel in every request's _meta."""

HANDSHAKE = ("2025-11-25", "2025-06-18", "2025-03-26")
"""Revisions with an initialize handshake and sessions (newest first)."""

HTTP_SSE = "2024-11-05"
"""The deprecated HTTP+SSE transport's revision (also negotiable over stdio)."""

SUPPORTED = (MODERN, *HANDSHAKE)
NEGOTIABLE = (*HANDSHAKE, HTTP_SSE)

META_VERSION = "io.modelcontextprotocol/protocolVersion"
META_CAPABILITIES = "io.modelcontextprotocol/clientCapabilities"
META_CLIENT_INFO = "io.modelcontextprotocol/clientInfo"
META_SERVER_INFO = "io.modelcontextprotocol/serverInfo"
CLIENT_CREDENTIALS_EXTENSION = "io.modelcontextprotocol/oauth-client-credentials"


def negotiate(requested: str) -> str:
    """The version to answer ``initialize`` with: the requested one if spoken, else the newest."""
    return requested if requested in NEGOTIABLE else HANDSHAKE[0]


def priming_supported(version: str) -> bool:
    """Whether SSE streams start with an empty-data priming event (2025-11-25 on)."""
    return version >= "2025-11-25"
