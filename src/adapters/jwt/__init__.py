"""Access tokens as signed JWTs (RFC 9068), on pyjwt."""
