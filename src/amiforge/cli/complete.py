"""Shell completion of recipe names (commands and options complete through click itself).

``eval "$(_AMIFORGE_COMPLETE=bash_source amiforge)"`` (zsh: ``zsh_source``, fish:
``fish_source``) turns it on; docs/cli.md has the lines for each shell.

A recipe name is completed from recipe files, else from the stack:

1. the command's own directory argument (``plan DIR`` ...), or ``$AMIFORGE_RECIPES``, or
   ``./recipes``, or the current directory: each ``*.yaml``/``*.yml`` file's ``name``
   (read with a size bound; a file that does not parse is skipped);
2. if none is found there, the recipes published in the stack (the global options on the
   command line, or their environment variables, say which), with a short timeout.

Completion must never fail or hang a shell: every error gives no candidates.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
import yaml
from click.shell_completion import CompletionItem

_MAX_FILE = 256 * 1024
_MAX_FILES = 200


def _names_in(directory: Path) -> list[str]:
    names = []
    try:
        files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])[:_MAX_FILES]
    except OSError:
        return []
    for path in files:
        try:
            if not path.is_file() or path.stat().st_size > _MAX_FILE:
                continue
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
            continue
        if isinstance(document, dict) and isinstance(document.get("name"), str):
            names.append(document["name"])
    return names


def _directories(ctx: click.Context) -> list[Path]:
    given = [ctx.params.get(key) for key in ("directory", "path")]
    candidates = [Path(str(p)) for p in given if p]
    if os.environ.get("AMIFORGE_RECIPES"):
        candidates.append(Path(os.environ["AMIFORGE_RECIPES"]))
    candidates += [Path("recipes"), Path(".")]
    return [c for c in candidates if c.is_dir()]


def _names_in_stack(ctx: click.Context) -> list[str]:
    from botocore.config import Config

    from amiforge.ops.connect import AwsContext, connect

    root = ctx.find_root()
    options = root.params
    aws = AwsContext(region=options.get("region") or None,
                     endpoint_url=options.get("endpoint_url") or None,
                     profile=options.get("profile") or None)
    aws.config = Config(connect_timeout=2, read_timeout=3, retries={"max_attempts": 1})
    env = connect(aws, options.get("stack") or "amiforge")
    return [record["name"] for record in env.store.all_current()]


def recipe_names(ctx: click.Context) -> list[str]:
    for directory in _directories(ctx):
        names = _names_in(directory)
        if names:
            return sorted(set(names))
    try:
        return sorted(set(_names_in_stack(ctx)))
    except Exception:  # noqa: BLE001 - completion gives nothing rather than an error
        return []


def complete_recipe(ctx: click.Context, param: click.Parameter,
                    incomplete: str) -> list[CompletionItem]:
    """click ``shell_complete`` for RECIPE arguments."""
    already: Any = ctx.params.get(param.name or "") or ()
    taken = set(already) if isinstance(already, tuple | list) else set()
    return [CompletionItem(name) for name in recipe_names(ctx)
            if name.startswith(incomplete) and name not in taken]
