"""``amiforge validate``'s script checks: the pure lint (:mod:`amiforge.core.scriptlint`)
plus ``bash -n`` for Linux scripts, as data.

``bash -n`` parses without running anything. Where bash is missing (a Windows
workstation), the syntax check is skipped with a warning rather than guessed.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field

from amiforge.core.model import Recipe
from amiforge.core.scriptlint import ERROR, WARNING, lint
from amiforge.errors import Problem

_BASH_TIMEOUT_S = 10


@dataclass
class LintReport:
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


def lint_recipes(recipes: list[Recipe], *, strict: bool = False) -> LintReport:
    """Every finding of every recipe's script; with ``strict``, warnings are errors."""
    report = LintReport()
    for recipe in recipes:
        if recipe.builder != "user_data":
            continue
        where = f"{recipe.source}: build.{'user_data' if recipe.build.user_data_file else 'script'}"
        if recipe.build.user_data_file:
            where += f" ({recipe.build.user_data_file})"
        findings = [(f.severity, f.message) for f in lint(recipe.build.platform, recipe.script)]
        if recipe.build.platform == "linux":
            findings += _bash_syntax(recipe.script)
        for severity, message in findings:
            problem = Problem(where, None, message)
            if severity == ERROR or strict:
                report.errors.append(problem)
            else:
                report.warnings.append(problem)
    return report


def _bash_syntax(script: str) -> list[tuple[str, str]]:
    bash = shutil.which("bash")
    if bash is None:
        return [(WARNING, "bash is not installed here, so the script's syntax was not checked")]
    try:
        proc = subprocess.run([bash, "-n"], input=script, capture_output=True, text=True,
                              timeout=_BASH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return [(WARNING, "bash -n did not finish; the script's syntax was not checked")]
    if proc.returncode == 0:
        return []
    said = " ".join(line.replace("bash: ", "", 1) for line in proc.stderr.strip().splitlines())
    return [(ERROR, f"bash syntax error: {said}")]
