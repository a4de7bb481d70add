"""The layering rules, read from the source with `ast` (nothing is imported):

- gengate.core imports neither gengate.web nor gengate.providers (the core names no provider);
- an emulator (gengate/emulator/**, gengate/providers/*/emulator.py) never reaches an adaptor, the
  adaptor contract (gengate.core.adaptor) or gengate.core.engine, not even through another module or
  a package's `__init__` (importing `a.b.c` runs `a/__init__.py` and `a/b/__init__.py` first).

Every import counts: at module level, inside functions and under `if TYPE_CHECKING:`.
"""

from __future__ import annotations

import ast
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "gengate"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))
                            if "migrations" not in p.relative_to(ROOT).parts}


def _parents(name: str) -> list[str]:
    """The packages whose `__init__` runs before `name`: a, a.b for a.b.c."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def direct_imports(name: str) -> set[str]:
    """The gengate modules that module `name` imports (a `from X import y` names X.y when that is a
    module, else X)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            found.add(source)
            found.update(f"{source}.{alias.name}" for alias in node.names if f"{source}.{alias.name}" in MODULES)
    return {m for m in found if m == "gengate" or m.startswith("gengate.")}


def _loaded_with(name: str) -> set[str]:
    """What importing `name` runs: its direct imports, each with its parent packages."""
    out: set[str] = set()
    for m in direct_imports(name):
        out.update(p for p in [*_parents(m), m] if p in MODULES)
    return out


def import_chain(start: str, forbidden: set[str]) -> list[str] | None:
    """The shortest chain of imports from `start` (with its parent packages) to a forbidden module."""
    first = [p for p in [*_parents(start), start] if p in MODULES]
    came_from: dict[str, str | None] = {m: None for m in first}
    queue = deque(first)
    while queue:
        current = queue.popleft()
        if current in forbidden:
            chain = [current]
            while came_from[chain[-1]] is not None:
                chain.append(came_from[chain[-1]])  # type: ignore[arg-type]
            return chain[::-1]
        for nxt in sorted(_loaded_with(current)):
            if nxt not in came_from:
                came_from[nxt] = current
                queue.append(nxt)
    return None


def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_the_walk_sees_the_package() -> None:
    assert "gengate.core.engine" in MODULES and "gengate.emulator.app" in MODULES
    assert "gengate.providers.vidu.emulator" in MODULES
    assert "gengate.core.states" in direct_imports("gengate.core.engine.base")  # a known edge is seen


def test_core_imports_neither_web_nor_providers() -> None:
    bad = {f"{name} imports {target}"
           for name in MODULES if _under(name, "gengate.core")
           for target in direct_imports(name)
           if _under(target, "gengate.web") or _under(target, "gengate.providers")}
    assert not bad, "\n".join(sorted(bad))


def test_emulators_never_reach_an_adaptor() -> None:
    forbidden = {m for m in MODULES if m == "gengate.core.adaptor" or _under(m, "gengate.core.engine")
                 or (m.startswith("gengate.providers.") and m.endswith(".adaptor"))}
    emulators = [m for m in MODULES if _under(m, "gengate.emulator")
                 or (m.startswith("gengate.providers.") and m.endswith(".emulator"))]
    assert "gengate.providers.vidu.emulator" in emulators and "gengate.providers.vidu.adaptor" in forbidden
    bad = [" -> ".join(chain) for m in emulators if (chain := import_chain(m, forbidden))]
    assert not bad, "\n".join(bad)
