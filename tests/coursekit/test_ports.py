"""Free-port helpers: a busy port is skipped, never an error."""

from __future__ import annotations

import socket
import time

import pytest

from coursekit.ports import first_free, is_free, main


@pytest.fixture
def busy_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_listening_port_is_busy(busy_port: int) -> None:
    assert is_free(busy_port) is False
    assert main([str(busy_port)]) == 1


def test_first_free_skips_the_busy_port(busy_port: int) -> None:
    port = first_free(busy_port)
    assert port > busy_port
    assert is_free(port)
    assert main([str(port)]) == 0


def test_no_free_port_in_range_is_one_clear_error(busy_port: int) -> None:
    with pytest.raises(OSError, match=f"No free port between {busy_port} and {busy_port}"):
        first_free(busy_port, attempts=1)


def _port_in_time_wait() -> int:
    """A port whose server stopped a moment ago, leaving a connection in TIME_WAIT (as JupyterLab does)."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Tornado and uvicorn do
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server closes first: its side of the connection goes to TIME_WAIT
        client.recv(1)
        client.close()
    time.sleep(0.2)  # let the last ACK arrive: FIN_WAIT_2 -> TIME_WAIT
    return port


def test_a_port_in_time_wait_is_free_as_the_server_sees_it():
    port = _port_in_time_wait()
    # The real servers bind with SO_REUSEADDR and succeed; so must the check.
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
    assert is_free(port) is True
    assert main([str(port)]) == 0
    # A bind without SO_REUSEADDR (the old check) would have called it busy.
    with socket.socket() as naive, pytest.raises(OSError):
        naive.bind(("127.0.0.1", port))
