"""Listening sockets for ``calcmcp serve --workers N``: one per worker, balanced by the kernel.

uvicorn's supervisor binds one socket and hands the same socket to every worker. They then race
to ``accept`` from its single queue, and the winner (uvloop accepts all that is queued at once)
takes a burst of connections: measured here, one of two workers served most of a load balancer's
keep-alive connections while the other idled, so two workers gave 1.1x one worker's calls per
second. With ``SO_REUSEPORT`` each worker listens on a socket of its own on the same port and
the kernel spreads new connections over them by their addresses' hash (Linux), which is what
nginx's ``reuseport`` and gunicorn's ``--reuse-port`` do.

uvicorn has no option for it (its supervisor pickles its socket list into each worker it
spawns), so :class:`ReusePortListener` stands in that list: the parent holds a bound socket
that reserves the port (and resolves port 0) but never listens, and each worker, restarted ones
included, unpickles it into a socket of its own, bound to the same address with
``SO_REUSEPORT``, on which uvicorn listens as on any socket it is given.
"""

from __future__ import annotations

import ipaddress
import socket
import sys

REUSE_PORT = sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")
"""Whether the kernel balances connections over ``SO_REUSEPORT`` sockets (Linux; elsewhere
the option exists but one socket gets them all, so uvicorn's shared socket is kept)."""


def _family(host: str) -> socket.AddressFamily:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:  # a name: resolved as IPv4, as uvicorn does
        return socket.AF_INET
    return socket.AF_INET6 if address.version == 6 else socket.AF_INET


def bind_reuse_port(host: str, port: int, family: socket.AddressFamily) -> socket.socket:
    """A TCP socket bound to ``host:port`` that shares the port with others like it."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host.strip("[]"), port))
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


class ReusePortListener:
    """The parent's placeholder for a per-worker socket on ``host:port`` (see the module).

    Raises:
        OSError: the address cannot be bound (in use by a server without ``SO_REUSEPORT``,
            not an address of this machine, a privileged port).
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.family = _family(host)
        self._reservation = bind_reuse_port(host, port, self.family)
        self.port: int = self._reservation.getsockname()[1]

    def __reduce__(self) -> tuple[object, tuple[str, int, socket.AddressFamily]]:
        """Unpickled in a worker: a socket of its own on the same address."""
        return bind_reuse_port, (self.host, self.port, self.family)

    def close(self) -> None:
        """Give the port up (the workers have stopped)."""
        self._reservation.close()
