"""The tables, as SQLAlchemy Core metadata. Each table has one job; times are Unix seconds (float).

Alembic migrations in `gengate/db/migrations` must match this file (a test runs Alembic's compare).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

# Small named values shared by every process: the URL signing key, the config version that tells
# running servers the CLI changed keys or channels.
settings_kv = Table(
    "settings_kv",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

keys = Table(
    "keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("key_hint", String(16), nullable=False),
    Column("credits", BigInteger, nullable=True),  # NULL = unlimited
    Column("models", Text, nullable=True),  # comma-separated fnmatch patterns; NULL = every model
    Column("expires_at", Float, nullable=True),
    Column("revoked_at", Float, nullable=True),
    Column("rpm", Integer, nullable=True),  # requests per minute; NULL = no limit
    Column("disabled", Boolean, nullable=False, server_default=text("false")),  # 401 until enabled again
    Column("webhook_secret_enc", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

channels = Table(
    "channels",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("provider", String(32), nullable=False),
    Column("base_url", Text, nullable=False),
    Column("models", Text, nullable=True),
    Column("priority", Integer, nullable=False, server_default="0"),
    Column("weight", Integer, nullable=False, server_default="1"),
    Column("options", Text, nullable=False, server_default="{}"),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("status_reason", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("deleted_at", Float, nullable=True),  # out of routing; tasks bound to its secrets finish on them
    Column("model_map", Text, nullable=True),  # JSON {client model: upstream model}; NULL = no renaming
)

channel_secrets = Table(
    "channel_secrets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("channel_id", Integer, ForeignKey("channels.id", ondelete="CASCADE"), nullable=False),
    Column("secret_enc", Text, nullable=False),
    Column("fingerprint", String(16), nullable=False),
    Column("max_concurrency", Integer, nullable=True),  # NULL = no cap
    Column("running", Integer, nullable=False, server_default="0"),
    Column("backoff_until", Float, nullable=False, server_default="0"),
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("status_reason", Text, nullable=True),
    Index("ix_channel_secrets_channel", "channel_id"),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("public_id", String(64), nullable=False, unique=True),
    Column("key_id", Integer, ForeignKey("keys.id"), nullable=False),
    Column("provider", String(32), nullable=False),
    Column("action", String(64), nullable=False),
    Column("model", String(200), nullable=False),
    Column("state", String(16), nullable=False),
    Column("upstream_state", String(64), nullable=True),
    Column("progress", Integer, nullable=True),
    Column("channel_id", Integer, nullable=True),
    Column("secret_id", Integer, nullable=True),
    Column("pinned", Boolean, nullable=False, server_default=text("false")),  # child task: parent's secret
    Column("slot_held", Boolean, nullable=False, server_default=text("false")),
    Column("last_channel_id", Integer, nullable=True),
    Column("upstream_id", String(200), nullable=True),
    Column("marker", String(64), nullable=True),  # what gengate sent that lets it find the job again
    Column("request", Text, nullable=False),  # the client's body, as the provider's reply echoes it
    Column("upstream_request", Text, nullable=False),  # the body sent upstream (ids mapped)
    Column("upstream_reply", Text, nullable=True),
    Column("units", Text, nullable=False, server_default="{}"),  # what the price is computed from
    Column("callback_url", Text, nullable=True),  # the client's webhook; never sent upstream
    Column("error_code", String(200), nullable=True),
    Column("error_message", Text, nullable=True),
    Column("reserved", BigInteger, nullable=False, server_default="0"),
    Column("settled", BigInteger, nullable=True),
    Column("parent_task_id", Integer, nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    # Consecutive creates of this task that the upstream refused with a 5xx or a garbled reply: at
    # GENGATE_SUBMIT_ATTEMPTS the task fails (one payload must not hold a shared secret forever).
    Column("submit_errors", Integer, nullable=False, server_default="0"),
    Column("slots", Integer, nullable=False, server_default="1"),  # concurrency units held upstream
    Column("origin", String(32), nullable=True),  # the view it was created through; NULL: the provider's own
    Column("deleted_at", Float, nullable=True),  # deleted by its client: 404 from then on
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("submitted_at", Float, nullable=True),
    Column("deadline_at", Float, nullable=False),
    Column("next_poll_at", Float, nullable=True),  # NULL once terminal: nothing left to do
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", Float, nullable=True),
    Index("ix_tasks_due", "next_poll_at", postgresql_where=text("next_poll_at IS NOT NULL"),
          sqlite_where=text("next_poll_at IS NOT NULL")),
    Index("ix_tasks_key", "key_id", "created_at"),
)

# What a task produced, re-hosted. `public_id` is gengate's own id for it (a Vidu creation id),
# mapped to the upstream's id so that child tasks (upscale) can refer to it.
outputs = Table(
    "outputs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", Integer, ForeignKey("tasks.id"), nullable=False),
    Column("idx", Integer, nullable=False),
    Column("public_id", String(64), nullable=False, unique=True),
    Column("upstream_id", String(200), nullable=True),
    Column("kind", String(16), nullable=False),
    Column("files", Text, nullable=False),  # JSON {field: storage key}
    Column("meta", Text, nullable=False),  # JSON, the provider's other fields for this output
    Column("created_at", Float, nullable=False),
    UniqueConstraint("task_id", "idx", name="uq_outputs_task_idx"),
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key_id", Integer, ForeignKey("keys.id"), nullable=False),
    Column("task_id", Integer, ForeignKey("tasks.id"), nullable=True),
    Column("kind", String(16), nullable=False),  # reserve | settle | refund | usage
    Column("amount", BigInteger, nullable=False),  # credits taken (+) or given back (-)
    Column("created_at", Float, nullable=False),
    # A second settle or refund of one task is impossible in the database itself.
    UniqueConstraint("task_id", "kind", name="uq_ledger_task_kind"),
    Index("ix_ledger_key", "key_id"),
)

# A slice of a limited key's balance that one process may spend on synchronous calls without a
# database write per call (gengate/core/leases.py). It takes no credits: it marks them as spoken for.
credit_leases = Table(
    "credit_leases",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key_id", Integer, ForeignKey("keys.id"), nullable=False),
    Column("owner", String(64), nullable=False),  # the process (host:pid:random)
    Column("amount", BigInteger, nullable=False),  # claimed, minus the charges written
    Column("expires_at", Float, nullable=False),  # renewed while the process uses it
    Column("created_at", Float, nullable=False),
    Index("ix_credit_leases_key", "key_id"),
    Index("ix_credit_leases_owner", "owner"),
)

# One row per synchronous call (chat, embeddings, images, responses), written in batches.
usage_records = Table(
    "usage_records",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", Float, nullable=False),
    Column("key_id", Integer, nullable=False),
    Column("route", String(64), nullable=False),
    Column("model", String(200), nullable=False),  # the model the client sent (a GPT's real name)
    Column("price_model", String(200), nullable=False),  # the name it is priced and reported under
    Column("channel_id", Integer, nullable=True),
    Column("status", Integer, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("input_tokens", Integer, nullable=False, server_default="0"),
    Column("output_tokens", Integer, nullable=False, server_default="0"),
    Column("credits", BigInteger, nullable=False, server_default="0"),
    Column("stream", Boolean, nullable=False, server_default=text("false")),
    Column("error", Text, nullable=True),
    Index("ix_usage_records_created", "created_at"),
    Index("ix_usage_records_key", "key_id"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key_id", Integer, nullable=False),
    Column("route", String(200), nullable=False),
    Column("value", String(255), nullable=False),
    Column("body_hash", String(64), nullable=False),
    Column("task_id", Integer, nullable=True),
    Column("locked_until", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("key_id", "route", "value", name="uq_idempotency"),
)

task_events = Table(
    "task_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", Integer, nullable=False),
    Column("from_state", String(16), nullable=True),
    Column("to_state", String(16), nullable=False),
    Column("reason", Text, nullable=True),
    Column("at", Float, nullable=False),
    Index("ix_task_events_task", "task_id", "id"),
)

stored_objects = Table(
    "stored_objects",
    metadata,
    Column("key", String(400), primary_key=True),
    Column("task_id", Integer, nullable=True),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("content_type", String(100), nullable=False),
    Column("created_at", Float, nullable=False),
)

# One row per webhook delivery: the provider-shaped task object at one state change, signed at send
# time. Retried with backoff until a 2xx or 24 h; a task's deliveries go out in order (by id).
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", Integer, nullable=False),
    Column("key_id", Integer, nullable=False),
    Column("webhook_id", String(64), nullable=False, unique=True),
    Column("url", Text, nullable=False),
    Column("state", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", Float, nullable=True),  # NULL once delivered or given up
    Column("lease_until", Float, nullable=True),
    Column("delivered_at", Float, nullable=True),
    Column("dead", Boolean, nullable=False, server_default=text("false")),
    Column("last_status", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Index("ix_webhooks_due", "next_attempt_at", postgresql_where=text("next_attempt_at IS NOT NULL"),
          sqlite_where=text("next_attempt_at IS NOT NULL")),
    Index("ix_webhooks_task", "task_id", "id"),
    Index("ix_webhooks_key", "key_id", "id"),
)

# Files uploaded through `/v1/files` (openai.md §6). The bytes live in storage under `storage_key`;
# for `purpose=file-extract` the extracted text (Kimi's JSON) under `extract_key`. Only `key_id`
# may see a row.
files = Table(
    "files",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("public_id", String(64), nullable=False, unique=True),
    Column("key_id", Integer, ForeignKey("keys.id"), nullable=False),
    Column("filename", Text, nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("content_type", String(100), nullable=False),
    Column("storage_key", String(400), nullable=False),
    Column("extract_key", String(400), nullable=True),
    Column("status", String(16), nullable=False),  # uploaded | processed | error
    Column("status_details", Text, nullable=True),  # why extraction failed
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=True),
    Index("ix_files_key", "key_id", "id"),
)
