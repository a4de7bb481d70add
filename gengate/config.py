"""One Settings object. Precedence: CLI flags > GENGATE_* environment > config file > defaults.

The config file is TOML, found at `--config`, `GENGATE_CONFIG`, or `<data-dir>/gengate.toml`.
Keys are the field names below (`poll_interval = 2.0`), plus a `[prices]` table that overrides the
shipped price table (`"vidu:text2video" = 40000`).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass
class Settings:
    data_dir: Path = Path("./gengate-data")
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    sandbox: bool = False
    public_url: str | None = None
    database_url: str | None = None
    redis_url: str | None = None
    redis_prefix: str = "gengate:"  # every Redis key and channel starts with it (tests use a random one)
    # How often each process reads the database for changes made by other processes: `config_version`
    # (keys, channels) and the tasks its streams wait on. With Redis these are the safety net.
    config_check_interval: float = 1.0
    change_check_interval: float = 1.0
    storage_url: str | None = None
    secret_key: str | None = None
    admin_token: str | None = None
    log_level: str = "info"

    # Task engine timings (seconds). All configurable so tests run in seconds.
    poll_interval: float = 3.0  # default wait between two polls of one task
    poll_jitter: float = 0.2  # +- fraction of the interval
    poller_tick: float = 0.25  # how often the poller looks for due work when idle
    poller_batch: int = 64  # tasks leased per round
    lease_seconds: float = 30.0
    credit_lease_seconds: float = 30.0  # a limited key's credit lease outlives a killed process this long
    submit_timeout: float = 20.0  # read timeout of an upstream create (default)
    submit_timeouts: dict[str, float] = field(default_factory=dict)  # per provider: GENGATE_SUBMIT_TIMEOUTS="suno=150"
    submit_attempts: int = 10  # consecutive 5xx/garbled refusals of one task's create before it fails
    request_timeout: float = 15.0  # read timeout of polls, cancels, lists
    connect_timeout: float = 5.0
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    ambiguity_grace: float = 30.0
    idempotency_ttl: float = 24 * 3600.0
    idempotency_release: float = 30.0
    task_deadline: float = 3600.0  # default; per provider in `deadlines`
    deadlines: dict[str, float] = field(default_factory=dict)
    webhook_backoff_base: float = 1.0  # first retry within this many seconds, doubling, capped at 1 h
    media_url_ttl: int = 7 * 24 * 3600
    image_wait: float = 120.0  # /v1/images/generations: how long a task-backed image is awaited
    sandbox_task_seconds: float = 10.0
    sandbox_concurrency: int = 8
    max_body_bytes: int = 1024 * 1024
    max_media_body_bytes: int = 20 * 1024 * 1024  # routes that take inline media (base64 images)
    max_file_bytes: int = 100 * 1024 * 1024  # /v1/files uploads
    # The file service (/v1/files) per key, and text extraction (purpose=file-extract), which runs in a
    # subprocess with these limits so that a zip bomb or a huge PDF cannot take the server down.
    max_files_per_key: int = 1000
    max_file_storage_per_key: int = 10 * 1024 * 1024 * 1024
    extract_timeout: float = 60.0  # seconds of wall time per file
    extract_memory_mb: int = 2048  # address-space cap of the extraction process
    extract_max_chars: int = 5_000_000  # extracted text kept per file (longer text is cut there)
    extract_concurrency: int = 2  # extraction processes at once, per server process
    # URL analysis (/r/{url}, /v1/scrape): how long a fetched page is reused, and the longest timeout.
    reader_cache_seconds: float = 60.0
    reader_max_timeout: float = 30.0
    # HTTP server limits (gengate/web/server.py): 431 above these, close after these timeouts.
    max_header_bytes: int = 64 * 1024  # request line + headers
    max_headers: int = 100
    header_timeout: float = 60.0  # seconds to send complete request headers
    body_timeout: float = 30.0  # longest pause between two chunks of a request body
    prices: dict[str, int] = field(default_factory=dict)

    @property
    def resolved_public_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'gengate.db').resolve()}"

    def deadline_for(self, provider: str) -> float:
        return self.deadlines.get(provider, self.task_deadline)

    def submit_timeout_for(self, provider: str) -> float:
        return self.submit_timeouts.get(provider, self.submit_timeout)


_COERCE: dict[str, type] = {f.name: f.type for f in fields(Settings)}  # type: ignore[misc]


def _coerce(name: str, raw: Any) -> Any:
    kind = str(_COERCE[name])
    if isinstance(raw, str):
        if "Path" in kind:
            return Path(raw)
        if kind.startswith("bool"):
            return raw.strip().lower() in ("1", "true", "yes", "on")
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            return float(raw)
        if kind.startswith("dict"):
            return {k.strip(): float(v) for k, v in (p.split("=", 1) for p in raw.split(",") if "=" in p)}
    if "Path" in kind and raw is not None:
        return Path(raw)
    return raw


def load_settings(overrides: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> Settings:
    """Build Settings from defaults, then the config file, then GENGATE_* env, then `overrides`."""
    env = dict(os.environ if env is None else env)
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    values: dict[str, Any] = {}

    data_dir = overrides.get("data_dir") or env.get("GENGATE_DATA_DIR") or Settings.data_dir
    config_path = overrides.pop("config", None) or env.get("GENGATE_CONFIG")
    path = Path(config_path) if config_path else Path(data_dir) / "gengate.toml"
    if path.is_file():
        with path.open("rb") as fh:
            for name, raw in tomllib.load(fh).items():
                if name in _COERCE:
                    values[name] = _coerce(name, raw)
    for name in _COERCE:
        raw = env.get(f"GENGATE_{name.upper()}")
        if raw is not None and raw != "":
            values[name] = _coerce(name, raw)
    for name, raw in overrides.items():
        if name in _COERCE:
            values[name] = _coerce(name, raw)
    settings = Settings(**values)
    settings.data_dir = Path(settings.data_dir)
    return settings
