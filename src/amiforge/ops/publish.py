"""Publish validated recipes to the stack's recipe store, with their hash and git commit,
and start the builds they imply (:func:`publish_directory`, what ``amiforge publish`` does).
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amiforge.aws.assets import AssetBucket
from amiforge.core.assets import MAX_FILE_BYTES, Asset, check_instance_profile
from amiforge.core.files import UnsafeFile, read_bounded
from amiforge.core.model import Recipe
from amiforge.core.recipes import load_recipes, publish_problems
from amiforge.errors import InvalidInput, NotFound, Problem, RecipeInvalid
from amiforge.ops.lint import lint_recipes
from amiforge.ops.plan import detect
from amiforge.steps.env import StepEnv
from amiforge.steps.latest import sync_latest


def git_commit(path: Path) -> str | None:
    """HEAD of the git repository holding ``path`` (+"-dirty" if it has local changes)."""
    where = path if path.is_dir() else path.parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=where,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}-dirty" if dirty else head


def publish(env: StepEnv, recipes: Sequence[Recipe], commit: str | None) -> list[dict[str, Any]]:
    """Store every recipe, or none: all are checked (base parameter allowed by the stack,
    item within DynamoDB's limit) before the first write; RecipeInvalid lists problems.
    ``revived`` says a retired one is back (publishing un-retires)."""
    problems = publish_problems(list(recipes), env.base_parameter_prefixes)
    problems += profile_problems(recipes, env.allowed_instance_profiles)
    if problems:
        raise RecipeInvalid(problems)
    # The files first: a published version must never name a file the bucket lacks.
    uploaded = upload_assets(env, recipes)
    results = []
    for recipe in recipes:
        previous = env.store.current(recipe.name)
        changed = env.store.publish(recipe.name, recipe.hash, recipe.to_document(), commit)
        if changed:
            # The published version decides what `latest` names (core/latest.py): content
            # built before (a revert) takes it back at once, in the SSM parameter too.
            sync_latest(env, recipe.name)
        results.append({"recipe": recipe.name, "hash": recipe.hash, "changed": changed,
                        "previous_hash": previous["hash"] if previous else None,
                        "git_commit": commit,
                        "revived": bool(previous and previous.get("retired_at")),
                        "files_uploaded": uploaded.get(recipe.name, 0)})
    return results


def profile_problems(recipes: Sequence[Recipe], allowed: Sequence[str]) -> list[Problem]:
    """A Problem for each build.instance_profile the stack's AllowedInstanceProfiles lacks."""
    return [Problem(r.source, "build.instance_profile", message) for r in recipes
            if r.build.instance_profile
            and (message := check_instance_profile(r.build.instance_profile, allowed))]


def upload_assets(env: StepEnv, recipes: Sequence[Recipe]) -> dict[str, int]:
    """Put every recipe's build.files into the artifact bucket under its content hash
    (those already there are skipped); how many files each recipe uploaded."""
    wanted = [r for r in recipes if r.assets]
    if not wanted:
        return {}
    if not env.artifact_bucket:
        raise InvalidInput(f"recipe {wanted[0].name!r} has build.files but the stack names no "
                           "artifact bucket (its BundleBucket parameter)",
                           hint="redeploy with `amiforge deploy`")
    bucket = AssetBucket(env.client("s3"), env.artifact_bucket, env.account_id)
    return {r.name: len(bucket.upload(r.assets, _reader(r))) for r in wanted}


def _reader(recipe: Recipe) -> Callable[[Asset], bytes]:
    """Reads an asset beside ``recipe`` again, refusing it if it changed since loading
    (its hash is already in the recipe's)."""
    root = Path(recipe.source).parent

    def read(asset: Asset) -> bytes:
        try:
            data = read_bounded(root, asset.path, limit=MAX_FILE_BYTES)
        except UnsafeFile as err:
            raise InvalidInput(f"{recipe.source}: build.files: {err.args[0]}") from None
        if hashlib.sha256(data).hexdigest() != asset.sha256:
            raise InvalidInput(f"{recipe.source}: build.files: {asset.path} changed while "
                               "publishing", hint="run `amiforge publish` again")
        return data
    return read


def missing_from(env: StepEnv, recipes: Sequence[Recipe]) -> list[str]:
    """Published, not retired recipes that ``recipes`` (a directory's) does not hold: a
    recipe file deleted from the repository. ``publish`` warns; ``--prune`` retires them."""
    present = {r.name for r in recipes}
    return sorted(record["name"] for record in env.store.all_current()
                  if record["name"] not in present and not record.get("retired_at"))


def retire(env: StepEnv, names: Sequence[str]) -> list[dict[str, Any]]:
    """Retire the published recipes ``names`` (every name checked first): detection and
    ``amiforge build`` leave them alone; their images stay under retention and
    ``latest`` keeps answering. Publishing one again brings it back."""
    records = {name: env.store.current(name) for name in dict.fromkeys(names)}
    missing = [name for name, record in records.items() if record is None]
    if missing:
        raise NotFound(f"recipe(s) {', '.join(repr(n) for n in missing)} not published; "
                       "nothing was retired", hint="check the names with `amiforge status`")
    results = []
    for name in records:
        retired_at = env.store.retire(name)
        latest: Mapping[str, Any] = env.catalog.latest(name) or {}
        results.append({"recipe": name, "retired_at": retired_at,
                        "latest_image": latest.get("image_id")})
    return results


def load_for_publish(directory: Path, *, prune: bool) -> list[Recipe]:
    """The recipes in ``directory`` (or one recipe file), loaded and linted with the same
    checks as ``validate``, before anything is written. RecipeInvalid lists problems."""
    if prune and not directory.is_dir():
        raise InvalidInput(f"--prune retires every published recipe {directory} lacks: give "
                           "the recipe directory, not one recipe file")
    recipes = load_recipes(directory)
    lint = lint_recipes(recipes)
    if lint.errors:
        raise RecipeInvalid(lint.errors)
    return recipes


@dataclass
class Published:
    """What :func:`publish_directory` did: one result per recipe (with the build it
    started or re-released), why a recipe did not start a build, and warnings."""

    results: list[dict[str, Any]]
    why_not: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def publish_directory(env: StepEnv, directory: Path, recipes: Sequence[Recipe], *,
                      start: bool, prune: bool) -> Published:
    """Publish ``recipes`` (from ``directory``) with its git commit; retire (``prune``) or
    warn about the published recipes the directory no longer holds; with ``start``, run
    detection for them so that a commit that reaches ``publish`` builds."""
    results = publish(env, recipes, git_commit(directory))
    warnings = []
    # One recipe file says nothing about the others: only a directory names what is gone.
    missing = missing_from(env, recipes) if directory.is_dir() else []
    if missing and prune:
        retire(env, missing)
        warnings.append(f"retired {', '.join(missing)}: no longer in {directory} "
                        "(images kept under retention; `latest` still answers)")
    elif missing:
        warnings.append(f"published but not in {directory}: {', '.join(missing)} "
                        "(`amiforge publish --prune` or `amiforge retire` retires them)")
    building: dict[str, dict[str, Any]] = {}
    released: dict[str, str] = {}
    why_not: dict[str, str] = {}
    if start:
        report = detect(env, trigger="publish", recipes=[r.name for r in recipes])
        # Why nothing started: "up to date", "base not found: ..." (a Windows base the
        # local cloud has not released yet, say).
        why_not = {d["recipe"]: (f"{d['reason']}: {d['detail']}" if d.get("detail")
                                 else d["reason"]) for d in report["decisions"]}
        # "already started": a detection running at the same moment (the schedule)
        # started the very build this publish implies; it is reported the same way.
        building = {d["recipe"]: d for d in report["decisions"]
                    if d.get("outcome") in ("started", "already started")}
        released = {d["recipe"]: d["build_id"] for d in report["decisions"]
                    if d.get("outcome") == "re-released"}
    for r in results:
        decision = building.get(r["recipe"], {})
        r["build_started"] = decision.get("build_id")
        r["build_outcome"] = decision.get("outcome")
        r["re_released"] = released.get(r["recipe"])
    return Published(results=results, why_not=why_not, warnings=warnings)
