"""`hybridlens dashboard`: Streamlit in a child process, pointed at one warehouse.

A child process rather than Streamlit's API in this one, so `hybridlens demo` can go on
generating and loading while the pages are served, and Ctrl-C reaches both.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from hybridlens.errors import UsageError

if TYPE_CHECKING:
    from warehouse.db import Warehouse


def serve_dashboard(warehouse: Warehouse, config: Path | None, host: str, port: int) -> int:
    server = start_dashboard(warehouse, config, host, port)
    try:
        return server.wait()
    except KeyboardInterrupt:
        return stop_dashboard(server)


def check_port(host: str, port: int) -> None:
    """A UsageError when the dashboard could not listen on host:port (another one serving
    there, an address not of this machine), said before anything claims to serve it:
    Streamlit says so only after starting, and exits 1."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as exc:
        raise UsageError(f"cannot serve the dashboard on {host}:{port}: {exc}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # as Tornado binds it, so a port whose old connections linger (TIME_WAIT) still counts
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise UsageError(
                f"cannot serve the dashboard on {host}:{port}: {exc.strerror or exc} (is a "
                f"dashboard already running there? open http://{host}:{port}, or pass --port "
                "with a free one)"
            ) from None


def start_dashboard(
    warehouse: Warehouse, config: Path | None, host: str, port: int
) -> subprocess.Popen[bytes]:
    """`streamlit run dashboard/app.py` on this warehouse, in a child process."""
    check_port(host, port)
    app = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
    env = dict(os.environ, HYBRIDLENS_WAREHOUSE=str(warehouse.path.absolute()))
    if config:
        env["HYBRIDLENS_CONFIG"] = str(Path(config).absolute())
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--theme.base",
        "light",
    ]
    print(f"serving the dashboard on http://{host}:{port} (Ctrl-C stops it)", file=sys.stderr)
    return subprocess.Popen(cmd, env=env)


def stop_dashboard(server: subprocess.Popen[bytes]) -> int:
    """Stop the dashboard: after a Ctrl-C it has had one too, from the terminal; else ask."""
    if server.poll() is None:
        server.terminate()
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    return 0
