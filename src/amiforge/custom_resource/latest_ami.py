"""``Custom::LatestAmi``: the newest AVAILABLE image of a recipe, for CloudFormation.

:func:`latest_ami_resource` checks the properties (``Recipe`` required, ``Region``
optional), makes the same lookup as ``amiforge latest``
(:func:`amiforge.steps.latest.latest_image`) and returns the attributes; :func:`respond`
answers a CloudFormation request for it through :mod:`.protocol` (malformed events, the
deadline and the 4 KB limit).
"""

from __future__ import annotations

from typing import Any

from amiforge.core.rules import REGION, check_recipe_name
from amiforge.custom_resource import protocol
from amiforge.custom_resource.protocol import shown
from amiforge.errors import InvalidInput
from amiforge.steps.env import StepEnv
from amiforge.steps.latest import latest_image

RESOURCE = "Custom::LatestAmi"
ATTRIBUTES = ("ImageId", "ImageName", "BuildId", "CreationDate")


def latest_ami_resource(properties: dict[str, Any], env: StepEnv) -> tuple[str, dict[str, Any]]:
    """Create/Update of a Custom::LatestAmi: (physical id = the AMI id, attributes).

    ``Recipe`` is required, ``Region`` optional (default: the stack's region); other
    properties are ignored, so a consumer can add one (a date) to force a re-resolve.
    """
    recipe = properties.get("Recipe")
    if not isinstance(recipe, str) or not recipe:
        raise InvalidInput(f"{RESOURCE} needs the property Recipe, the name of an amiforge "
                           f"recipe (a string); got {shown(recipe)}")
    problem = check_recipe_name(recipe)
    if problem:
        raise InvalidInput(f"{RESOURCE} property Recipe: {problem}")
    region = properties.get("Region")
    if region == "":
        region = None
    if region is not None and not (isinstance(region, str) and REGION.fullmatch(region)):
        raise InvalidInput(f"{RESOURCE} property Region: {shown(region)} is not an AWS region "
                           "(like eu-west-1); leave it out for the stack's own region")
    image = latest_image(env, recipe, region)
    return image["ImageId"], {key: image[key] for key in ATTRIBUTES}


def respond(event: Any, env: StepEnv, *, seconds_left: float | None = None) -> dict[str, Any]:
    """Answer one CloudFormation request for a Custom::LatestAmi; Delete touches nothing."""
    return protocol.respond(event, lambda properties: latest_ami_resource(properties, env),
                            seconds_left=seconds_left)
