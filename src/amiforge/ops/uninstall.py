"""`amiforge destroy --delete-data`: the documented uninstall. Plan, then execute.

:func:`plan_uninstall` lists everything that would go, so the CLI can show it and ask
first: the stack (if it still exists; `destroy`'s rules about running builds apply), the
images of every AVAILABLE build in the catalog (in every region of its ``images`` map),
the ``/amiforge/<recipe>/latest`` parameters that name one of them, the catalog and
recipe tables (the stack's own, or those a destroyed stack of this name retained), and
the artifact bucket unless another stack still deploys from it.

:func:`uninstall` then removes them in this order: the stack (nothing can start a build
after it); the parameters (they point at the images, and they are themselves a use of
them); the images, through retention's own executor (:mod:`amiforge.steps.prune`):
an image still in use anywhere (an instance, a launch template, an Auto Scaling group, a
parameter outside amiforge's) is kept and named, as is every image of a region where use
cannot be known; then the tables and the bucket. The tables go last, so an interrupted
uninstall can be run again: the catalog still says which images are left.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from amiforge.aws import ssm as ssm_api
from amiforge.aws.catalog import AVAILABLE
from amiforge.aws.session import AwsContext
from amiforge.core.retention import PRUNE, RetentionDecision
from amiforge.deploy import stack as stack_api
from amiforge.errors import NotFound
from amiforge.ops import lifecycle
from amiforge.steps.env import StepEnv
from amiforge.steps.gate import Gate

# Retention's executor and usage check, reused rather than deleting images here: every
# image deletion goes through the same code (the one path the deletion gate guards).
from amiforge.steps.prune import _in_use as images_in_use
from amiforge.steps.prune import _prune as prune_image

UNINSTALL_REASON = "uninstall (amiforge destroy --delete-data)"


@dataclass
class UninstallPlan:
    stack: str
    stack_exists: bool
    catalog_table: str
    recipes_table: str
    images: list[dict[str, Any]] = field(default_factory=list)      # AVAILABLE builds
    parameters: list[dict[str, str]] = field(default_factory=list)  # {region, name, value}
    bucket: str | None = None
    bucket_users: list[str] = field(default_factory=list)           # other stacks

    def as_dict(self) -> dict[str, Any]:
        return {"stack": self.stack, "stack_exists": self.stack_exists,
                "catalog_table": self.catalog_table, "recipes_table": self.recipes_table,
                "images": self.images, "parameters": self.parameters, "bucket": self.bucket,
                "bucket_kept_for": self.bucket_users}


def _env(aws: AwsContext, stack: str) -> tuple[StepEnv, bool]:
    exists = stack_api.describe_stack(aws, stack) is not None
    env = lifecycle.stack_env(aws, stack) if exists else None
    if env is not None:
        return env, True
    retained = stack_api.retained_tables(aws, stack)
    if not retained and not exists:
        raise NotFound(f"stack {stack!r} not found in {aws.resolved_region}, and no table "
                       "it retained either: nothing to delete",
                       hint="pass --stack/--region of the stack to uninstall")
    return StepEnv(catalog_table=retained.get("RetainedCatalogTable", ""),
                   recipes_table=retained.get("RetainedRecipesTable", ""), aws=aws), exists


def plan_uninstall(aws: AwsContext, stack: str) -> UninstallPlan:
    env, exists = _env(aws, stack)
    plan = UninstallPlan(stack, exists, env.catalog_table, env.recipes_table)
    builds = ([b for b in env.catalog.all_builds() if b.get("status") == AVAILABLE]
              if env.catalog_table else [])
    for build in sorted(builds, key=lambda b: (b["recipe"], b.get("created_at", ""))):
        plan.images.append({"recipe": build["recipe"], "build_id": build["build_id"],
                            "image_id": build.get("image_id"),
                            "created_at": build.get("created_at", ""),
                            "images": dict(build.get("images")
                                           or {env.region: build.get("image_id") or ""})})
    ours = {image_id for b in plan.images for image_id in b["images"].values()}
    regions = sorted({env.region} | {r for b in plan.images for r in b["images"]})
    for recipe in sorted({b["recipe"] for b in plan.images}):
        name = ssm_api.latest_parameter_name(recipe)
        for region in regions:
            value = ssm_api.get_value(env.client("ssm", region), name)
            # another stack's recipe of the same name is left alone
            if value is not None and value in ours:
                plan.parameters.append({"region": region, "name": name, "value": value})
    plan.bucket = stack_api.artifact_bucket_name(aws)
    plan.bucket_users = [s for s in stack_api.stacks_using_bucket(aws, plan.bucket)
                         if s != stack]
    return plan


def uninstall(aws: AwsContext, plan: UninstallPlan, *, force: bool = False,
              progress: stack_api.Progress = lambda _m: None) -> dict[str, Any]:
    result: dict[str, Any] = {"stack": plan.stack, "cancelled": []}
    if plan.stack_exists:
        result["cancelled"] = lifecycle.destroy(aws, plan.stack, force=force,
                                                progress=progress)["cancelled"]
    env = StepEnv(catalog_table=plan.catalog_table, recipes_table=plan.recipes_table, aws=aws)
    result["parameters_deleted"] = [
        {**p, "deleted": ssm_api.delete_parameter(env.client("ssm", p["region"]), p["name"])}
        for p in plan.parameters]
    gate = Gate(env)
    in_use, unknown = images_in_use(env, gate, [{"images": b["images"]} for b in plan.images])
    images = []
    for build in plan.images:
        uses = [use for image_id in build["images"].values() for use in in_use.get(image_id, [])]
        uses += [f"usage in {r} unknown: {unknown[r]}" for r in build["images"] if r in unknown]
        if uses:
            images.append({**build, "outcome": "kept: in use (" + "; ".join(uses) + ")"})
            continue
        decision = RetentionDecision(recipe=build["recipe"], build_id=build["build_id"],
                            image_id=build["image_id"], action=PRUNE, reason=UNINSTALL_REASON,
                            created_at=build["created_at"], images=build["images"])
        images.append({**build, "outcome": prune_image(env, gate, decision)})
        progress(f"deleted image {build['image_id']} of {build['recipe']}")
    result["images"] = images
    result["tables_deleted"] = {table: stack_api.delete_table(aws, table)
                                for table in (plan.catalog_table, plan.recipes_table) if table}
    if plan.bucket and not plan.bucket_users:
        result["bucket_deleted"] = {plan.bucket: stack_api.delete_bucket(aws, plan.bucket)}
    else:
        result["bucket_deleted"] = {}
    result["bucket_kept_for"] = plan.bucket_users
    return result
