"""`hybridlens dashboard`: Streamlit in a child process, pointed at one warehouse.

A child process rather than Streamlit's API in this one, so `hybridlens demo` can go on
generating and loading while the pages are served, and Ctrl-C reaches both.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from warehouse.db import Warehouse


def serve_dashboard(warehouse: Warehouse, config: Path | None, host: str, port: int) -> int:
    server = start_dashboard(warehouse, config, host, port)
    try:
        return server.wait()
    except KeyboardInterrupt:
        return stop_dashboard(server)


def start_dashboard(
    warehouse: Warehouse, config: Path | None, host: str, port: int
) -> subprocess.Popen[bytes]:
    """`streamlit run dashboard/app.py` on this warehouse, in a child process."""
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
