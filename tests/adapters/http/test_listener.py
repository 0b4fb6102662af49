"""The per-worker listening sockets of ``calcmcp serve --workers N`` (Linux's SO_REUSEPORT)."""

from __future__ import annotations

import pickle
import socket

import pytest

from src.adapters.http.listener import REUSE_PORT, ReusePortListener

pytestmark = pytest.mark.skipif(not REUSE_PORT, reason="SO_REUSEPORT balancing is Linux's")


def test_port_zero_is_resolved_and_reserved_without_listening() -> None:
    listener = ReusePortListener("127.0.0.1", 0)
    try:
        assert listener.port > 0
        with pytest.raises(ConnectionRefusedError):  # reserved, but nothing accepts yet
            socket.create_connection(("127.0.0.1", listener.port), timeout=2).close()
    finally:
        listener.close()


@pytest.mark.parametrize(
    ("host", "family"), [("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6)]
)
def test_each_unpickling_is_a_socket_of_its_own_on_the_same_port(
    host: str, family: socket.AddressFamily
) -> None:
    listener = ReusePortListener(host, 0)
    # what uvicorn's supervisor does for every worker it spawns
    workers = [pickle.loads(pickle.dumps(listener)) for _ in range(2)]  # noqa: S301 (our own)
    try:
        for worker in workers:
            assert isinstance(worker, socket.socket)
            assert worker.family == family
            assert worker.getsockname()[1] == listener.port
            assert worker.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
            worker.listen()
        assert len({worker.fileno() for worker in workers}) == 2
        with socket.create_connection((host, listener.port), timeout=2):
            pass  # one of the two accepts it
    finally:
        for worker in workers:
            worker.close()
        listener.close()


def test_a_port_taken_by_another_server_is_refused() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError, match="in use"):
            ReusePortListener("127.0.0.1", taken.getsockname()[1])
