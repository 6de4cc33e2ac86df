"""SSM Parameter Store adapter: base-image parameters in, `/amiforge/<recipe>/latest` out."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from amiforge.aws.errors import ClientError, aws_call, error_code, translate

PARAMETER_PREFIX = "/amiforge"
BATCH = 10  # GetParameters takes at most 10 names per call


def latest_parameter_name(recipe: str) -> str:
    return f"{PARAMETER_PREFIX}/{recipe}/latest"


def get_parameters(ssm: Any, names: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """Values of many parameters in batches of 10: ({name: value}, [invalid names])."""
    wanted = sorted(set(names))
    found: dict[str, str] = {}
    invalid: list[str] = []
    for start in range(0, len(wanted), BATCH):
        with aws_call("GetParameters"):
            response = ssm.get_parameters(Names=wanted[start:start + BATCH])
        for parameter in response.get("Parameters", []):
            found[parameter["Name"]] = parameter["Value"]
        invalid.extend(response.get("InvalidParameters", []))
    return found, invalid


def put_latest(ssm: Any, recipe: str, image_id: str, *, description: str,
               stack: str | None = None) -> str:
    """Set ``/amiforge/<recipe>/latest``; with ``stack``, tag it ``amiforge:stack`` too
    (PutParameter cannot tag while it overwrites; adding the tag again changes nothing)."""
    name = latest_parameter_name(recipe)
    with aws_call("PutParameter"):
        ssm.put_parameter(Name=name, Value=image_id, Type="String", DataType="aws:ec2:image",
                          Overwrite=True, Description=description[:1024])
    if stack:
        with aws_call("AddTagsToResource"):
            ssm.add_tags_to_resource(ResourceType="Parameter", ResourceId=name,
                                     Tags=[{"Key": "amiforge:stack", "Value": stack}])
    return name


def get_value(ssm: Any, name: str) -> str | None:
    try:
        return str(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    except ClientError as err:
        if error_code(err) == "ParameterNotFound":
            return None
        raise translate(err, "GetParameter") from err


def restore_latest(ssm: Any, recipe: str, *, expected: str, previous: str | None,
                   description: str, stack: str | None = None) -> bool:
    """Put ``/amiforge/<recipe>/latest`` back to ``previous`` if it still holds ``expected``
    (another build may have moved it since); ``previous`` None: it did not exist before,
    so the parameter this build created is removed. True if it was put back."""
    name = latest_parameter_name(recipe)
    if get_value(ssm, name) != expected:
        return False
    if previous is None:
        delete_parameter(ssm, name)
        return True
    put_latest(ssm, recipe, previous, description=description, stack=stack)
    return True


def delete_parameter(ssm: Any, name: str) -> bool:
    """Delete one parameter; False if it was already gone."""
    try:
        ssm.delete_parameter(Name=name)
    except ClientError as err:
        if error_code(err) == "ParameterNotFound":
            return False
        raise translate(err, "DeleteParameter") from err
    return True


def delete_latest(ssm: Any, recipe: str) -> bool:
    """Delete ``/amiforge/<recipe>/latest``; False if it did not exist."""
    return delete_parameter(ssm, latest_parameter_name(recipe))
