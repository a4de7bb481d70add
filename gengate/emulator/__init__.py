"""Emulated upstream providers: real HTTP servers built from the spec files, for the sandbox,
benchmarks and tests. See app.py for the routes and controls, faults.py for fault rules."""

from gengate.emulator.app import EmulatorRuntime, build_emulator_app, serve_emulator
from gengate.emulator.base import EmulatorContext, ProviderEmulator
from gengate.emulator.media import MediaSpec
from gengate.emulator.timeline import Phase, Progress, TaskRecord

__all__ = [
    "EmulatorContext",
    "EmulatorRuntime",
    "MediaSpec",
    "Phase",
    "Progress",
    "ProviderEmulator",
    "TaskRecord",
    "build_emulator_app",
    "serve_emulator",
]
