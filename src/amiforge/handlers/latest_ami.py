"""Lambda entry point: the ``Custom::LatestAmi`` responder (crhelper).

Properties: ``Recipe`` (required), ``Region`` (optional). Attributes: ImageId, ImageName,
BuildId, CreationDate. Physical id: the AMI id, so a rebuilt image replaces the resource
and dependants update. Delete touches nothing. Any error answers FAILED with its message.
"""

from typing import Any

from crhelper import CfnResource

from amiforge.handlers.runtime import step_env
from amiforge.steps.latest import latest_image

# sleep_on_delete=0: crhelper's default waits two minutes on Delete to flush logs.
helper = CfnResource(json_logging=True, log_level="INFO", boto_level="CRITICAL",
                     sleep_on_delete=0)


@helper.create
@helper.update
def resolve(event: dict[str, Any], _context: Any) -> str:
    properties = event.get("ResourceProperties") or {}
    recipe = properties.get("Recipe")
    if not recipe or not isinstance(recipe, str):
        raise ValueError("Custom::LatestAmi needs the property Recipe (a recipe name)")
    image = latest_image(step_env(), recipe, properties.get("Region") or None)
    helper.Data.update({k: image[k] for k in ("ImageId", "ImageName", "BuildId",
                                              "CreationDate")})
    return image["ImageId"]


@helper.delete
def delete(_event: dict[str, Any], _context: Any) -> None:
    return None  # consumers' stacks going away must never touch images


def handler(event: dict[str, Any], context: Any) -> None:
    helper(event, context)
