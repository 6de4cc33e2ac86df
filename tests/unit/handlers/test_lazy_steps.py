"""Each Lambda function imports only its own step: importing the pipeline's handler
module imports no step module (nor ``amiforge.aws``); calling a handler (or Lambda's
``_HANDLER`` naming it) imports that step's modules and no other step's."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from amiforge.handlers import pipeline

PROBE = """
import json, sys
import amiforge.handlers.pipeline as pipeline
loaded = lambda: sorted(m for m in sys.modules if m.startswith(("amiforge.steps",
                                                                 "amiforge.aws")))
before = loaded()
name = sys.argv[1] if len(sys.argv) > 1 else ""
if name:
    pipeline.HANDLERS[name].resolve()
print(json.dumps({"before": before, "after": loaded()}))
"""


def probe(*args: str, handler: str = "") -> dict[str, list[str]]:
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    env.pop("_HANDLER", None)
    if handler:
        env["_HANDLER"] = handler
    result = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True,
                            text=True, env=env, timeout=60, check=True)
    out: dict[str, list[str]] = json.loads(result.stdout)
    return out


def test_importing_the_pipeline_handlers_imports_no_step() -> None:
    assert probe()["before"] == []


def test_a_handler_imports_its_own_step_and_no_other() -> None:
    after = probe("create_image")["after"]
    assert "amiforge.steps.image" in after
    others = {f"amiforge.steps.{s.module}" for s in pipeline.HANDLERS.values()} - {
        "amiforge.steps.image"}
    assert not others & set(after)


def test_lambdas_handler_variable_imports_that_step_at_init() -> None:
    before = probe(handler="amiforge.handlers.pipeline.prune")["before"]
    assert "amiforge.steps.prune" in before and "amiforge.steps.launch" not in before


def test_every_handler_names_a_step_function_that_exists() -> None:
    for name, step in pipeline.HANDLERS.items():
        assert callable(step.resolve()), name
