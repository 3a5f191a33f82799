"""Free-port helpers for the local servers the course starts (JupyterLab, the MLflow UI)."""

from __future__ import annotations

import socket
import sys


def is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on ``host:port`` and we may bind it.

    Binds the way the servers themselves do (Tornado for JupyterLab, uvicorn for the MLflow
    UI): with ``SO_REUSEADDR``, so connections still in TIME_WAIT after a server stopped do
    not count as busy; only a real listener does.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if hasattr(socket, "SO_REUSEADDR") and sys.platform != "win32":  # on Windows it would allow stealing the port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def first_free(start: int, host: str = "127.0.0.1", attempts: int = 50) -> int:
    """The first free port at or after ``start``; a busy port is not an error."""
    for port in range(start, start + attempts):
        if is_free(port, host):
            return port
    raise OSError(f"No free port between {start} and {start + attempts - 1} on {host}: stop a server or pick another port.")


def main(argv: list[str] | None = None) -> int:
    """``python -m coursekit.ports PORT``: exit 0 if the port is free, 1 if busy."""
    args = sys.argv[1:] if argv is None else argv
    return 0 if is_free(int(args[0])) else 1


if __name__ == "__main__":
    raise SystemExit(main())
