"""coursekit.instructor.class_server: the class's tracking server command, its start-up errors, its stop."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from coursekit.errors import CourseSetupError
from coursekit.instructor.class_server import ClassServer, command, main
from coursekit.ports import first_free


def test_the_command_serves_artifacts_from_the_data_folder(tmp_path: Path) -> None:
    line = command(tmp_path, "0.0.0.0", 5055, workers=2, extra=["--allowed-hosts", "teacher:5055"])  # noqa: S104
    assert line[1] == "server" and line[0].endswith("mlflow")
    assert line[line.index("--backend-store-uri") + 1] == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    assert "--serve-artifacts" in line
    assert line[line.index("--artifacts-destination") + 1] == str(tmp_path.resolve() / "artifacts")
    assert line[line.index("--host") + 1] == "0.0.0.0" and line[line.index("--port") + 1] == "5055"  # noqa: S104
    assert line[line.index("--workers") + 1] == "2"
    assert line[-2:] == ["--allowed-hosts", "teacher:5055"]


def test_the_url_learners_use_on_this_machine(tmp_path: Path) -> None:
    assert ClassServer(tmp_path, host="0.0.0.0", port=5055).url == "http://127.0.0.1:5055"  # noqa: S104
    assert ClassServer(tmp_path, host="192.168.1.20", port=6000).url == "http://192.168.1.20:6000"


@pytest.fixture
def busy_port():
    port = first_free(5190)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        yield port


def test_a_busy_port_is_one_line_before_anything_starts(tmp_path: Path, busy_port: int) -> None:
    server = ClassServer(tmp_path / "class", port=busy_port)
    with pytest.raises(CourseSetupError, match=f"^Port {busy_port} is busy: stop what uses it, or choose another with --port.$"):
        server.start()
    assert not server.running and not (tmp_path / "class").exists()


def test_main_reports_a_busy_port_and_fails(tmp_path: Path, busy_port: int, capsys) -> None:
    assert main(["--data", str(tmp_path), "--port", str(busy_port)]) == 1
    err = capsys.readouterr().err
    assert err.strip() == f"ERROR: Port {busy_port} is busy: stop what uses it, or choose another with --port."


def test_a_server_that_dies_at_start_up_is_a_setup_error(tmp_path: Path) -> None:
    server = ClassServer(tmp_path, port=first_free(5195), extra=["--no-such-option"])
    with pytest.raises(CourseSetupError, match="stopped at start-up: see .*server.log"):
        server.start(timeout=60)
    assert not server.running
    assert "no-such-option" in (tmp_path / "server.log").read_text()
