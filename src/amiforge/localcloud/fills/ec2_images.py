"""EC2 image fills: images and their snapshots as AWS makes, copies and deprecates them.

* ``CreateImage`` with a ``snapshot`` TagSpecification raises NotImplementedError; AWS
  tags the image's snapshots at creation.
* ``CreateImage`` snapshots a fresh, unencrypted 15 GiB scratch volume; AWS snapshots the
  instance's own root volume, so the snapshot keeps its encryption, KMS key and size.
* ``CopyImage`` ignores ``Encrypted``, ``KmsKeyId``, ``TagSpecifications`` and
  ``CopyImageTags``; AWS encrypts the copy's snapshots (with the key given, or the
  region's default EBS key), tags the new image and its snapshots, and with
  ``CopyImageTags`` copies the source image's tags onto the new image. A copy of an
  encrypted image is always encrypted.
* moto makes an image ``available`` at once and emits no event; AWS keeps it ``pending``
  while it snapshots and sends "EC2 AMI State Change" events. Both CreateImage and
  CopyImage hand the new image to the image simulator (:mod:`..image_sim`).
* moto has no ``EnableImageDeprecation`` or ``DisableImageDeprecation`` ("not
  implemented") and so never shows an image's ``DeprecationTime``. Here, as AWS
  documents: the time is rounded to the nearest minute, a time in the past is refused,
  and ``DescribeImages`` shows it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from amiforge.localcloud.fills import Fill


def _root_volume(backend: Any, instance: Any) -> Any:
    mapping = dict(instance.get_block_device_mapping)
    device = mapping.get(instance.root_device_name) or next(iter(mapping.values()), None)
    if device is None or not device.volume_id:
        return None
    return backend.get_volume(device.volume_id)


def _create_image(original: Callable[..., Any]) -> Callable[..., Any]:
    def create_image(self: Any, instance_id: str, name: str, description: str,
                     tag_specifications: list[dict[str, Any]]) -> Any:
        snapshot_tags = [t for spec in tag_specifications
                         if spec.get("ResourceType") == "snapshot" for t in spec.get("Tags", [])]
        others = [s for s in tag_specifications if s.get("ResourceType") != "snapshot"]
        ami = original(self, instance_id, name, description, others)
        snapshot = getattr(ami, "ebs_snapshot", None)
        if snapshot is not None:
            for tag in snapshot_tags:
                snapshot.add_tag(tag["Key"], tag["Value"])
            root = _root_volume(self, self.get_instance(instance_id))
            if root is not None:
                snapshot.volume = root
                snapshot.encrypted = bool(root.encrypted)
                snapshot.kms_key_id = getattr(root, "kms_key_id", None)
        _simulated(self, ami, "create")
        return ami

    return create_image


def _simulated(backend: Any, ami: Any, kind: str) -> None:
    """Hand a new image to the image simulator (pending, then available or failed, with
    EC2's events), when one runs."""
    from amiforge.localcloud import image_sim

    simulator = image_sim.attached()
    if simulator is not None:
        simulator.created(backend, ami, kind)


def copy_image_response(self: Any) -> Any:
    """``AmisResponse.copy_image``: the parameters read as moto's handler does, plus the
    three AWS honours."""
    from moto.core.responses import ActionResult
    from moto.ec2.models import ec2_backends

    source_id = self._get_param("SourceImageId")
    source_region = self._get_param("SourceRegion")
    self.error_on_dryrun()
    image = self.ec2_backend.copy_image(source_id, source_region, self._get_param("Name"),
                                        self._get_param("Description"))
    source = ec2_backends[self.current_account][source_region].amis.get(source_id)
    source_snapshot = getattr(source, "ebs_snapshot", None)
    snapshot = getattr(image, "ebs_snapshot", None)
    if snapshot is not None:
        encrypted = (str(self._get_param("Encrypted", False)).lower() == "true"
                     or bool(getattr(source_snapshot, "encrypted", False)))
        snapshot.encrypted = encrypted
        snapshot.kms_key_id = self._get_param("KmsKeyId") or (
            "alias/aws/ebs" if encrypted else None)
        if source_snapshot is not None:
            snapshot.volume = source_snapshot.volume
    if str(self._get_param("CopyImageTags", False)).lower() == "true" and source:
        # CopyImageTags: the source image's user-defined tags go onto the copy.
        image.add_tags({t["key"]: t["value"] for t in source.get_tags()
                        if not t["key"].startswith("aws:")})
    for spec in self._get_param("TagSpecifications", []):
        target = image if spec.get("ResourceType") == "image" else snapshot
        for tag in spec.get("Tags", []):
            if target is not None:
                target.add_tag(tag["Key"], tag["Value"])
    _simulated(self.ec2_backend, image, "copy")
    return ActionResult({"ImageId": image.id})


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        when = value
    else:
        when = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _image(response: Any) -> Any:
    image_id = response._get_param("ImageId")
    # Raises InvalidAMIID.NotFound / Malformed as DescribeImages does.
    return response.ec2_backend.describe_images(ami_ids=[image_id])[0]


def enable_image_deprecation(self: Any) -> Any:
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import EC2ClientError

    raw = self._get_param("DeprecateAt")
    self.error_on_dryrun()
    image = _image(self)
    try:
        when = _parse_time(raw)
    except ValueError as err:
        raise EC2ClientError("InvalidParameterValue",
                             f"DeprecateAt {raw!r} is not a date and time") from err
    # EC2 rounds seconds to the nearest minute.
    when = (when + timedelta(seconds=30)).replace(second=0, microsecond=0)
    if when <= datetime.now(UTC):
        raise EC2ClientError("InvalidParameterValue",
                             f"DeprecateAt {raw}: the deprecation time must be in the future")
    image.deprecation_time = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return ActionResult({"Return": True})


def disable_image_deprecation(self: Any) -> Any:
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    _image(self).deprecation_time = None
    return ActionResult({"Return": True})


_RESPONSE = "moto.ec2.responses.amis:AmisResponse"

FILLS = [
    Fill("ec2.create-image-snapshot", "moto.ec2.models.amis:AmiBackend", "create_image",
         _create_image, "df3e389b11aa"),
    Fill("ec2.copy-image-encryption-and-tags", _RESPONSE, "copy_image",
         lambda _original: copy_image_response, "ba5e4c3e0f43"),
    Fill("ec2.enable-image-deprecation", _RESPONSE, "enable_image_deprecation",
         lambda _original: enable_image_deprecation, None),
    Fill("ec2.disable-image-deprecation", _RESPONSE, "disable_image_deprecation",
         lambda _original: disable_image_deprecation, None),
]
