"""The webhook receiver, now `harness.webhooks`; this name is kept for the tests that import it."""

from harness.webhooks import Hit, Receiver, RecordingProxy, verify_signature

__all__ = ["Hit", "Receiver", "RecordingProxy", "verify_signature"]
