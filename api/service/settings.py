"""Service configuration: constructor arguments, or ``REDWOOD_*`` environment variables."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"REDWOOD_{name}", default)


@dataclass
class Settings:
    """``db_url``: SQLAlchemy URL (SQLite file by default, ``postgresql+psycopg://...`` for PostgreSQL).
    ``policy_dir``: the only directory checkpoints may be registered from. ``secret``: HMAC key for API-key
    hashes (kept next to the default database when not given, so keys survive restarts).
    ``bootstrap_key``: an admin key accepted and stored (hashed) at start-up, for the first key.
    ``max_decision_seconds``: the solver time limit of a decision sent without ``deadline_seconds``.
    ``max_batch_states``: most states in one batch decision request (422 beyond)."""

    db_url: str = "sqlite:///redwood.db"
    policy_dir: Path = field(default_factory=lambda: Path("policies"))
    secret: str | None = None
    bootstrap_key: str | None = None
    max_body_bytes: int = 8 * 1024 * 1024
    engine_pool: int = 2
    sqlite_synchronous: str = "FULL"
    log_synchronous: str = "NORMAL"
    key_cache_seconds: float = 5.0
    max_decision_seconds: float = 30.0
    # bounded work per request (api.service.limits): estimated seconds a request may ask for, by the key's highest
    # scope, counted from its arrival; and the memory one chunk of work may take
    work_budget_seconds: dict[str, float] = field(default_factory=lambda: {"read": 3.5, "decide": 3.5, "admin": 3.5})
    max_work_bytes: int = 400 * 2**20
    max_batch_states: int = 100

    def __post_init__(self) -> None:
        self.policy_dir = Path(self.policy_dir)

    @classmethod
    def from_env(cls, **overrides) -> Settings:
        """Settings from ``REDWOOD_DB_URL``, ``REDWOOD_POLICY_DIR``, ``REDWOOD_SECRET``, ``REDWOOD_BOOTSTRAP_KEY``,
        ``REDWOOD_MAX_BODY_BYTES``, ``REDWOOD_ENGINE_POOL``, ``REDWOOD_MAX_BATCH_STATES``; explicit non-None
        ``overrides`` win."""
        values: dict[str, Any] = {
            "db_url": _env("DB_URL", cls.db_url),
            "policy_dir": Path(_env("POLICY_DIR", "policies") or "policies"),
            "secret": _env("SECRET"),
            "bootstrap_key": _env("BOOTSTRAP_KEY"),
            "max_body_bytes": int(_env("MAX_BODY_BYTES", str(cls.max_body_bytes)) or cls.max_body_bytes),
            "engine_pool": int(_env("ENGINE_POOL", str(cls.engine_pool)) or cls.engine_pool),
            "max_batch_states": int(_env("MAX_BATCH_STATES", str(cls.max_batch_states)) or cls.max_batch_states),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        if isinstance(values["policy_dir"], str):
            values["policy_dir"] = Path(values["policy_dir"])
        return cls(**values)

    def work_budget(self, scopes: frozenset[str] | set[str]) -> float:
        """Seconds of work a request may ask for with a key of ``scopes`` (the largest budget among them)."""
        return max((self.work_budget_seconds.get(s, 0.0) for s in scopes), default=0.0)

    def resolved_secret(self) -> str:
        """The HMAC secret: explicit, else a ``.secret`` file beside a SQLite database (created once, 0600)."""
        if self.secret:
            return self.secret
        if self.db_url.startswith("sqlite:///") and self.db_url != "sqlite:///:memory:":
            path = Path(self.db_url.removeprefix("sqlite:///") + ".secret")
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                except FileExistsError:
                    return path.read_text().strip()
                with os.fdopen(fd, "w") as f:
                    f.write(secrets.token_hex(32))
            return path.read_text().strip()
        raise ValueError("secret: set REDWOOD_SECRET (or Settings.secret) when the database is not a SQLite file")
