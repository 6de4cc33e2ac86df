"""EC2 adapter: the only module that calls EC2. Thin: no decisions beyond AWS mechanics.

Everything that creates a resource tags it at creation (TagSpecifications), so a crash
between "create" and "record" still leaves something the sweeper can find by tag.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from amiforge.aws.errors import ClientError, aws_call, error_code, is_transient, translate
from amiforge.core.wildcards import wildcard_match
from amiforge.errors import NoCapacity

# RunInstances errors that mean "this type, here, now" rather than "this request is bad":
# the next instance type in the recipe's list is tried.
CAPACITY_CODES = frozenset({
    "InsufficientInstanceCapacity", "Unsupported", "InsufficientCapacity",
    "InstanceLimitExceeded", "VcpuLimitExceeded", "UnsupportedOperation",
})
NOT_FOUND_AMI = frozenset({"InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"})



def _tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def tags_of(resource: Mapping[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", []) or []}


# Name patterns asked in one DescribeImages: the values of its name filter, ORed by EC2.
NAMES_PER_CALL = 200


def newest_images(ec2: Any, *, owners: Iterable[str], names: Iterable[str],
                  filters: list[dict[str, Any]]) -> dict[str, dict[str, Any] | None]:
    """For each name pattern in ``names``: the newest available, non-deprecated image of
    ``owners`` matching it and every filter in ``filters`` (no ``name`` one), or None.

    What DescribeImages with each pattern alone would answer, in one paginated call per
    :data:`NAMES_PER_CALL` patterns instead of one per pattern; each image goes to every
    pattern it matches, as EC2 matches it (``core/wildcards.py``).
    """
    wanted = list(dict.fromkeys(names))
    if any(f.get("Name") == "name" for f in filters):
        raise ValueError("newest_images: the name patterns go in names=, not in filters")
    best: dict[str, dict[str, Any] | None] = dict.fromkeys(wanted)
    for start in range(0, len(wanted), NAMES_PER_CALL):
        chunk = wanted[start:start + NAMES_PER_CALL]
        query = [{"Name": "name", "Values": chunk}, *filters]
        with aws_call("DescribeImages"):
            for page in ec2.get_paginator("describe_images").paginate(
                    Owners=list(owners), Filters=query):
                for image in page.get("Images", []):
                    if image.get("State", "available") != "available" or _deprecated(image):
                        continue
                    for pattern in chunk:
                        if not wildcard_match(pattern, image.get("Name", "")):
                            continue
                        held = best[pattern]
                        if held is None or (image.get("CreationDate", "")
                                            > held.get("CreationDate", "")):
                            best[pattern] = image
    return best


def _deprecated(image: Mapping[str, Any]) -> bool:
    from datetime import UTC, datetime

    when = image.get("DeprecationTime")
    if not when:
        return False
    try:
        return datetime.fromisoformat(str(when).replace("Z", "+00:00")) <= datetime.now(UTC)
    except ValueError:
        return False


def describe_image(ec2: Any, image_id: str) -> dict[str, Any] | None:
    """The image, or None if EC2 does not (yet, or any more) know it."""
    try:
        images = ec2.describe_images(ImageIds=[image_id]).get("Images", [])
    except ClientError as err:
        if error_code(err) in NOT_FOUND_AMI:
            return None
        raise translate(err, "DescribeImages") from err
    return images[0] if images else None


def images_named(ec2: Any, name: str) -> list[dict[str, Any]]:
    """The account's own images called exactly ``name`` (a rendered, validated AMI name:
    EC2's name filter would treat ``*`` and ``?`` as wildcards, and AMI names have none)."""
    with aws_call("DescribeImages"):
        images: list[dict[str, Any]] = ec2.describe_images(
            Owners=["self"], Filters=[{"Name": "name", "Values": [name]}]).get("Images", [])
    return [i for i in images if i.get("Name") == name]


def images_tagged(ec2: Any, key: str, value: str) -> list[dict[str, Any]]:
    with aws_call("DescribeImages"):
        images: list[dict[str, Any]] = ec2.describe_images(
            Owners=["self"], Filters=[{"Name": f"tag:{key}", "Values": [value]}]
        ).get("Images", [])
    return images


def instances_tagged(ec2: Any, filters: Mapping[str, str | tuple[str, ...]], *,
                     live_only: bool = True) -> list[dict[str, Any]]:
    """Instances whose tag k is v (or any of the exact values of a tuple)."""
    api_filters = [{"Name": f"tag:{k}", "Values": [v] if isinstance(v, str) else list(v)}
                   for k, v in filters.items()]
    if live_only:
        api_filters.append({"Name": "instance-state-name",
                            "Values": ["pending", "running", "stopping", "stopped"]})
    out: list[dict[str, Any]] = []
    with aws_call("DescribeInstances"):
        for page in ec2.get_paginator("describe_instances").paginate(Filters=api_filters):
            for reservation in page.get("Reservations", []):
                out.extend(reservation.get("Instances", []))
    return out


def describe_instance(ec2: Any, instance_id: str) -> dict[str, Any] | None:
    try:
        reservations = ec2.describe_instances(InstanceIds=[instance_id]).get("Reservations", [])
    except ClientError as err:
        if error_code(err) == "InvalidInstanceID.NotFound":
            return None
        raise translate(err, "DescribeInstances") from err
    for reservation in reservations:
        for instance in reservation.get("Instances", []):
            return dict(instance)
    return None


@dataclass(frozen=True)
class LaunchRequest:
    image_id: str
    root_device_name: str
    instance_types: tuple[str, ...]
    user_data: str
    tags: Mapping[str, str]
    client_token: str
    subnet_id: str | None = None
    security_group_ids: tuple[str, ...] = ()
    volume_size_gb: int | None = None
    kms_key_id: str | None = None
    instance_profile_arn: str | None = None
    # build.instance_profile (checked against the stack's AllowedInstanceProfiles); it
    # wins over instance_profile_arn (the stack's BuilderInstanceProfileArn).
    instance_profile_name: str | None = None
    # build.associate_public_ip; None leaves it to the subnet's MapPublicIpOnLaunch.
    associate_public_ip: bool | None = None


def run_builder(ec2: Any, request: LaunchRequest) -> tuple[str, str, list[str]]:
    """Launch one build instance, trying instance types in order on capacity errors.

    Returns (instance_id, instance_type, capacity errors met on the way). The instance
    has IMDSv2 required, encrypted EBS, no key pair, and stops (not terminates) when
    the user data powers it off, so the stopped disk can become an image.
    """
    ebs: dict[str, Any] = {"Encrypted": True, "DeleteOnTermination": True, "VolumeType": "gp3"}
    if request.volume_size_gb:
        ebs["VolumeSize"] = request.volume_size_gb
    if request.kms_key_id:
        ebs["KmsKeyId"] = request.kms_key_id
    base: dict[str, Any] = {
        "ImageId": request.image_id,
        "MinCount": 1,
        "MaxCount": 1,
        # Plain text: boto3 base64-encodes UserData for RunInstances itself (encoding it
        # here too would hand cloud-init base64 text, and the builder would run nothing).
        "UserData": request.user_data,
        "InstanceInitiatedShutdownBehavior": "stop",
        "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled",
                            "HttpPutResponseHopLimit": 1},
        "BlockDeviceMappings": [{"DeviceName": request.root_device_name, "Ebs": ebs}],
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": _tag_list(request.tags)},
            {"ResourceType": "volume", "Tags": _tag_list(request.tags)},
            {"ResourceType": "network-interface", "Tags": _tag_list(request.tags)},
        ],
    }
    if request.associate_public_ip is not None and request.subnet_id:
        # EC2 takes the public-IP choice only on a network interface, which must then
        # carry the subnet and groups itself (with them also top-level it is refused).
        base["NetworkInterfaces"] = [{
            "DeviceIndex": 0, "SubnetId": request.subnet_id,
            "Groups": list(request.security_group_ids),
            "AssociatePublicIpAddress": request.associate_public_ip,
            "DeleteOnTermination": True}]
    else:
        if request.subnet_id:
            base["SubnetId"] = request.subnet_id
        if request.security_group_ids:
            base["SecurityGroupIds"] = list(request.security_group_ids)
    if request.instance_profile_name:
        base["IamInstanceProfile"] = {"Name": request.instance_profile_name}
    elif request.instance_profile_arn:
        base["IamInstanceProfile"] = {"Arn": request.instance_profile_arn}
    errors: list[str] = []
    for index, instance_type in enumerate(request.instance_types):
        try:
            response = ec2.run_instances(
                InstanceType=instance_type,
                ClientToken=f"{request.client_token}-{index}"[:64],
                **base,
            )
        except ClientError as err:
            if error_code(err) in CAPACITY_CODES:
                errors.append(f"{instance_type}: {error_code(err)}")
                continue
            if is_transient(err):
                raise translate(err, "RunInstances") from err
            raise translate(err, "RunInstances") from err
        instance = response["Instances"][0]
        return instance["InstanceId"], instance_type, errors
    raise NoCapacity(
        "no capacity for any instance type in build.instance_types: " + "; ".join(errors),
        hint="add more instance types to build.instance_types or try another subnet/AZ",
    )


def console_output(ec2: Any, instance_id: str) -> str:
    with aws_call("GetConsoleOutput"):
        try:
            response = ec2.get_console_output(InstanceId=instance_id, Latest=True)
        except ClientError as err:
            # Latest=True is Nitro-only; older types answer UnsupportedOperation.
            if error_code(err) not in {"UnsupportedOperation", "InvalidParameterCombination"}:
                raise
            response = ec2.get_console_output(InstanceId=instance_id)
    # Already text: botocore base64-decodes GetConsoleOutput's Output itself
    # (handlers.decode_console_output); decoding it again would turn it into noise.
    return str(response.get("Output") or "")


def terminate(ec2: Any, instance_ids: Iterable[str]) -> list[str]:
    ids = sorted(set(instance_ids))
    if not ids:
        return []
    try:
        ec2.terminate_instances(InstanceIds=ids)
    except ClientError as err:
        if error_code(err) != "InvalidInstanceID.NotFound":
            raise translate(err, "TerminateInstances") from err
        # Some are already gone: terminate the rest one by one.
        for instance_id in ids:
            try:
                ec2.terminate_instances(InstanceIds=[instance_id])
            except ClientError as inner:
                if error_code(inner) != "InvalidInstanceID.NotFound":
                    raise translate(inner, "TerminateInstances") from inner
    return ids


def create_image(ec2: Any, *, instance_id: str, name: str, description: str,
                 tags: Mapping[str, str]) -> str:
    with aws_call("CreateImage"):
        response = ec2.create_image(
            InstanceId=instance_id,
            Name=name,
            Description=description[:255],
            NoReboot=True,  # the builder is already stopped
            TagSpecifications=[
                {"ResourceType": "image", "Tags": _tag_list(tags)},
                {"ResourceType": "snapshot", "Tags": _tag_list(tags)},
            ],
        )
    return str(response["ImageId"])


def snapshot_ids(image: Mapping[str, Any]) -> list[str]:
    return [m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", [])
            if m.get("Ebs", {}).get("SnapshotId")]


def copy_image(ec2: Any, *, source_image_id: str, source_region: str, name: str,
               description: str, kms_key_id: str | None, tags: Mapping[str, str],
               client_token: str) -> str:
    """Copy an image into ``ec2``'s region: encrypted, tagged (image and snapshots) at creation.

    ``client_token`` makes a retried copy return the first copy instead of a second one.
    """
    kwargs: dict[str, Any] = {
        "SourceImageId": source_image_id, "SourceRegion": source_region, "Name": name,
        "Description": description[:255], "Encrypted": True, "ClientToken": client_token[:64],
        "TagSpecifications": [{"ResourceType": "image", "Tags": _tag_list(tags)},
                              {"ResourceType": "snapshot", "Tags": _tag_list(tags)}],
    }
    if kms_key_id:
        kwargs["KmsKeyId"] = kms_key_id
    with aws_call("CopyImage"):
        return str(ec2.copy_image(**kwargs)["ImageId"])


def share_image(ec2: Any, image: Mapping[str, Any], accounts: Iterable[str]) -> list[str]:
    """Let ``accounts`` launch the image: its launch permission and its snapshots' volumes."""
    users = sorted(set(accounts))
    if not users:
        return []
    with aws_call("ModifyImageAttribute"):
        ec2.modify_image_attribute(ImageId=image["ImageId"], Attribute="launchPermission",
                                   OperationType="add", UserIds=users)
    snapshots = snapshot_ids(image)
    for snapshot_id in snapshots:
        with aws_call("ModifySnapshotAttribute"):
            ec2.modify_snapshot_attribute(SnapshotId=snapshot_id,
                                          Attribute="createVolumePermission",
                                          OperationType="add", UserIds=users)
    return snapshots


def stop(ec2: Any, instance_id: str) -> None:
    with aws_call("StopInstances"):
        ec2.stop_instances(InstanceIds=[instance_id])


def security_group_tags(ec2: Any, group_ids: Iterable[str]) -> dict[str, dict[str, str]]:
    """{group id: its tags} for each of ``group_ids`` that exists (a missing one is left out)."""
    found: dict[str, dict[str, str]] = {}
    for group_id in group_ids:  # one call each: one missing group fails a batched call
        try:
            groups = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
        except ClientError as err:
            if error_code(err) in {"InvalidGroup.NotFound", "InvalidGroupId.Malformed"}:
                continue
            raise translate(err, "DescribeSecurityGroups") from err
        found.update({g["GroupId"]: tags_of(g) for g in groups})
    return found
