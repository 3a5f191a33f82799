"""One MLflow tracking server for a whole class: runs, models and their files in one place.

``python -m coursekit.instructor.class_server --host 0.0.0.0 --port 5055 --data /srv/mlflow-class`` runs
``mlflow server`` with a SQLite store in the data folder and **proxied artifacts** (``--serve-artifacts``
with ``--artifacts-destination <data>/artifacts``): learners upload model files to the server over HTTP and
never need the instructor's disk. Telemetry is off. It prints what learners set, and Ctrl+C stops it.

Learners then set ``MLFLOW_TRACKING_URI=http://<host>:<port>`` (and ``COURSE_LEARNER=<name>``, default
their login name); see :func:`coursekit.settings.course_name` for how their experiments and models stay
their own. Any other ``mlflow server`` option goes after ``--`` (e.g. ``-- --allowed-hosts my-host:5055``
when learners reach the server by a host name rather than an IP address).
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from pathlib import Path

from coursekit.errors import CourseSetupError
from coursekit.ports import is_free
from coursekit.ui import serve_until_interrupted, start_server, stop_on_signals, stop_server

log = logging.getLogger(__name__)

DEFAULT_PORT = 5055


def command(data_dir: Path, host: str, port: int, workers: int = 1, extra: list[str] | None = None) -> list[str]:
    """The ``mlflow server`` command line for a class store in ``data_dir``."""
    data_dir = data_dir.resolve()
    return [
        str(Path(sys.executable).with_name("mlflow")), "server",
        "--backend-store-uri", f"sqlite:///{data_dir / 'mlflow.db'}",
        "--serve-artifacts", "--artifacts-destination", str(data_dir / "artifacts"),
        "--host", host, "--port", str(port), "--workers", str(workers),
        *(extra or []),
    ]


class ClassServer:
    """A running class tracking server; ``start()`` waits until it answers, ``stop()`` ends its process group."""

    def __init__(self, data_dir: Path, host: str = "127.0.0.1", port: int = DEFAULT_PORT, workers: int = 1,
                 extra: list[str] | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.host, self.port, self.workers, self.extra = host, port, workers, extra or []
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The address learners put in ``MLFLOW_TRACKING_URI`` (loopback when bound to every interface)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host  # noqa: S104 - a display address
        return f"http://{host}:{self.port}"

    @property
    def log_file(self) -> Path:
        """The server's own output."""
        return self.data_dir / "server.log"

    def start(self, timeout: float = 90.0) -> str:
        """Start the server and return its URL once ``/health`` answers; a busy port is a one-line error."""
        if not is_free(self.port, self.host if self.host not in ("0.0.0.0", "::") else ""):  # noqa: S104
            raise CourseSetupError(f"Port {self.port} is busy: stop what uses it, or choose another with --port.")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._process = start_server(command(self.data_dir, self.host, self.port, self.workers, self.extra), self.log_file,
                                     self.url, "The class tracking server", timeout)
        log.info("class tracking server at %s", self.url)
        return self.url

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        """Stop the server and its workers (SIGTERM, then SIGKILL after 10 s)."""
        if self._process is None:
            return
        stop_server(self._process, grace=10)
        self._process = None

    def __enter__(self) -> ClassServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """``python -m coursekit.instructor.class_server``: serve the class store until Ctrl+C."""
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(prog="python -m coursekit.instructor.class_server", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder for the class's database and artifacts")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (0.0.0.0: every one; default: %(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (default: %(default)s)")
    args = parser.parse_args(own)
    server = ClassServer(args.data, args.host, args.port, args.workers, extra)
    stop_on_signals()
    return serve_until_interrupted(server, "The server", lambda url: (
        f"Class tracking server: {url}  (store and artifacts in {args.data.resolve()})\n"
        f"Learners set, before starting JupyterLab:\n"
        f"  export MLFLOW_TRACKING_URI=http://<this machine's address>:{args.port}\n"
        f"  export COURSE_LEARNER=<their name>   # default: their login name\n"
        f"Class progress: python -m coursekit.instructor.progress --tracking-uri {url}\n"
        "Press Ctrl+C to stop it."
    ))


if __name__ == "__main__":
    raise SystemExit(main())
