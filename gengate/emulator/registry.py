"""Find every provider emulator: `gengate.providers.<name>.emulator` modules and their `EMULATORS`.

Adding an emulator for a provider means adding that one module; nothing here names a provider.
Only the `emulator` modules are imported (plus, unavoidably, each provider package's `__init__`).
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil

import gengate.providers
from gengate.emulator.base import ProviderEmulator


def discover_emulators() -> list[ProviderEmulator]:
    found: dict[str, ProviderEmulator] = {}
    for module_info in sorted(pkgutil.iter_modules(gengate.providers.__path__), key=lambda m: m.name):
        if not module_info.ispkg:
            continue
        name = f"gengate.providers.{module_info.name}.emulator"
        if importlib.util.find_spec(name) is None:
            continue
        module = importlib.import_module(name)
        for emulator in getattr(module, "EMULATORS", []):
            if emulator.provider in found:
                raise RuntimeError(f"two emulators for provider {emulator.provider!r} (in {name})")
            found[emulator.provider] = emulator
    return list(found.values())
