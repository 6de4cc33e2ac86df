"""Detect: start one build for every published recipe whose build key changed.

Cost: one Query of the recipe store's ``current`` index (GetItem per recipe when a publish
names them), one lookup per *distinct* base (SSM parameters in
batches of ten, identical image filters asked once), one conditional write and one
StartExecution per stale recipe. Nothing per up-to-date recipe: the AWS calls grow with
the number of distinct bases, not the number of recipes.

Exactly once: the execution is named by the build key, and Step Functions runs one
execution per name (a second start answers the first, or ExecutionAlreadyExists), so
starting is idempotent and concurrent detections cannot both build. The new key is then *claimed* on the recipe item (a conditional write), which
is what makes later detections see the recipe as up to date. Start first, claim second:
a detection that dies in between (a Lambda timeout, a crash) leaves an execution and no
claim, and the next detection's start finds the execution and claims it; the other order
would leave a claim with no build, and the recipe would never be built.
"""

from __future__ import annotations

from typing import Any

from amiforge.aws import stepfunctions as sfn_api
from amiforge.core.model import Recipe
from amiforge.core.plan import BUILD, decide
from amiforge.errors import RecipeInvalid
from amiforge.steps.base import resolve_bases
from amiforge.steps.env import StepEnv


def detect(event: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    """Input (all optional): {recipes: [names] to limit to, trigger: "schedule"|"publish"|...}."""
    only = set(event.get("recipes") or [])
    trigger = event.get("trigger", "schedule")
    # Named recipes (a publish's) are read by name: consistent, so just published is seen.
    records = env.store.named(only) if only else list(env.store.all_current())
    recipes: dict[str, Recipe] = {}
    report: list[dict[str, Any]] = []
    for record in records:
        try:
            recipes[record["name"]] = Recipe.from_document(record["document"])
        except RecipeInvalid as err:
            report.append({"recipe": record["name"], "action": "skip",
                           "reason": "invalid recipe", "detail": str(err)})
    resolved = resolve_bases(env, [r.base for r in recipes.values()])
    for record in records:
        recipe = recipes.get(record["name"])
        if recipe is None:
            continue
        base = resolved[recipe.base.query_key()]
        decision = decide(name=recipe.name, recipe_hash=recipe.hash, base_ami=base.image_id,
                          last=record, base_problem=base.problem)
        entry = decision.as_dict()
        if decision.action == BUILD:
            ours = start_and_claim(env, recipe, decision.build_key or "",
                                   decision.base_ami or "", trigger)
            entry["outcome"] = "started" if ours else "already started"
        report.append(entry)
    started = [e for e in report if e.get("outcome") == "started"]
    return {"trigger": trigger, "recipes": len(records), "started": len(started),
            "decisions": report}


def start_and_claim(env: StepEnv, recipe: Recipe, key: str, base_ami: str,
                    trigger: str) -> bool:
    """Start the build of ``key`` (the execution is named by it), then claim the key on the
    recipe item; True if this call started the build. Start first, claim second (see the
    module docstring). Also ``amiforge build``'s first build of a key (ops/builds.py).

    StartExecution with a running execution's name and input answers that execution, and
    with another input (another trigger) or a finished one it starts nothing: of several
    callers, the one whose claim wins started the build.
    """
    payload = {"recipe": recipe.name, "recipe_hash": recipe.hash, "base_ami": base_ami,
               "trigger": trigger}
    arn = sfn_api.start_build(env.client("stepfunctions"), env.state_machine_arn or "",
                              key, payload)
    claimed = env.store.claim(recipe.name, key, build_id=key, base_ami=base_ami,
                              recipe_hash=recipe.hash)
    return bool(arn and claimed)
