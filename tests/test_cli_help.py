"""Every command and option of the `gengate` CLI explains itself, and flags show no value metavar."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from gengate.cli import app


def _commands(cmd: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, cmd
    for name, sub in getattr(cmd, "commands", {}).items():  # typer 0.29 vendors its own click
        yield from _commands(sub, (*path, name))


COMMANDS = list(_commands(typer.main.get_command(app)))


def test_the_walk_finds_every_command() -> None:
    names = {" ".join(p) for p, _ in COMMANDS}
    assert {"serve", "emulate", "keys create", "keys revoke", "channels add", "tasks watch", "usage"} <= names


@pytest.mark.parametrize("path,cmd", COMMANDS, ids=[" ".join(p) or "gengate" for p, _ in COMMANDS])
def test_help_on_every_command_and_option(path: tuple[str, ...], cmd: Any) -> None:
    assert (cmd.help or "").strip(), f"{' '.join(path)} has no help text"
    for param in cmd.params:
        assert (getattr(param, "help", None) or "").strip(), f"{' '.join(path)}: {param.name} has no help text"
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=120)
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output, result.output
