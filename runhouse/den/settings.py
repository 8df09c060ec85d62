"""How one Den is run: its database, data folder, address and limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PORT = 8900
DEFAULT_MAX_BODY = 1024 * 1024  # bytes of one request body: configs are small
DB_FILE = "den.sqlite"
ADMIN_TOKEN_FILE = "admin_token"
MASTER_KEY_FILE = "master_key"


def default_data_dir() -> Path:
    """Where Den keeps its files unless told otherwise (``~/.rh/den``)."""
    return Path.home() / ".rh" / "den"


@dataclass(frozen=True)
class DenSettings:
    """One Den's settings; ``db_url`` None means SQLite in the data folder."""

    data_dir: Path = field(default_factory=default_data_dir)
    db_url: str | None = None
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    tls: bool = False
    certfile: str | None = None
    keyfile: str | None = None
    insecure: bool = False
    max_body: int = DEFAULT_MAX_BODY
    # The operator's master key file; None: DATA_DIR/master_key, made at the first start.
    master_key_file: Path | None = None

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL of the database (the default SQLite file if none was given)."""
        return self.db_url or f"sqlite:///{self.data_dir / DB_FILE}"

    @property
    def admin_token_file(self) -> Path:
        """The file (mode 600) that keeps the first admin's token."""
        return self.data_dir / ADMIN_TOKEN_FILE

    @property
    def master_key_path(self) -> Path:
        """The file (mode 600) that keeps the master key sealing secrets' data keys."""
        return self.master_key_file or self.data_dir / MASTER_KEY_FILE
