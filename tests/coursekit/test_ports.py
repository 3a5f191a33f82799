"""Free-port helpers: a busy port is skipped, never an error."""

from __future__ import annotations

import socket

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
