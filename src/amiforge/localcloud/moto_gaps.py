"""Small fills for gaps in moto 5.2.5 that amiforge's production code meets.

Each fill makes moto behave as AWS documents; none special-cases amiforge. Installed by
:class:`~amiforge.localcloud.server.LocalCloud` for as long as it runs.

* CloudFormation creates ``AWS::StepFunctions::StateMachine`` in moto's plain Step
  Functions backend, but with ``execute_state_machine`` on, the API reads the executing
  (parser) backend: a stack's state machine would not exist for StartExecution.
* ``CreateImage`` with a ``snapshot`` TagSpecification raises NotImplementedError; AWS
  tags the image's snapshots at creation.
* ``CreateImage`` snapshots a fresh, unencrypted 15 GiB scratch volume; AWS snapshots the
  instance's own root volume, so the snapshot keeps its encryption, KMS key and size.
* ``CopyImage`` ignores ``Encrypted``, ``KmsKeyId``, ``TagSpecifications`` and
  ``CopyImageTags``; AWS encrypts the copy's snapshots (with the key given, or the
  region's default EBS key), tags the new image and its snapshots, and with
  ``CopyImageTags`` copies the source image's tags onto the new image. A copy of an encrypted image is always encrypted.
* ``ValidateTemplate`` answers ``Parameters: []`` whatever the template declares; AWS
  lists each declared parameter (key, default, description, NoEcho).
* A network interface's ``association`` reads ``public_ip`` twice; an instance stopping
  in another thread (the builder simulator) clears it in between, and DescribeInstances
  answers a 500. It is read once here.
* DynamoDB conditional writes are atomic on AWS; moto checks the condition and writes
  without a lock, so two concurrent requests can both pass it. Likewise two concurrent
  StartExecution calls with one name can both succeed. Both are serialised here.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

_undo: list[Callable[[], None]] = []


def _patch(owner: Any, name: str, value: Any) -> None:
    original = getattr(owner, name)
    setattr(owner, name, value)
    _undo.append(lambda: setattr(owner, name, original))


_WRITE_LOCK = threading.RLock()


def _serialised(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _WRITE_LOCK:
            return method(*args, **kwargs)

    return locked


def install() -> None:
    if _undo:
        return
    from moto.dynamodb.models import DynamoDBBackend
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        _patch(DynamoDBBackend, name, _serialised(getattr(DynamoDBBackend, name)))
    _patch(StepFunctionsParserBackend, "start_execution",
           _serialised(StepFunctionsParserBackend.start_execution))
    import moto.stepfunctions.models as sfn_models
    from moto.ec2.models.amis import AmiBackend
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    _patch(sfn_models, "stepfunctions_backends", stepfunctions_parser_backends)

    original_create_image = AmiBackend.create_image

    def create_image(self: Any, instance_id: str, name: str, description: str,
                     tag_specifications: list[dict[str, Any]]) -> Any:
        snapshot_tags = [t for spec in tag_specifications
                         if spec.get("ResourceType") == "snapshot" for t in spec.get("Tags", [])]
        others = [s for s in tag_specifications if s.get("ResourceType") != "snapshot"]
        ami = original_create_image(self, instance_id, name, description, others)
        snapshot = getattr(ami, "ebs_snapshot", None)
        if snapshot is not None:
            for tag in snapshot_tags:
                snapshot.add_tag(tag["Key"], tag["Value"])
            root = _root_volume(self, self.get_instance(instance_id))
            if root is not None:
                snapshot.volume = root
                snapshot.encrypted = bool(root.encrypted)
                snapshot.kms_key_id = getattr(root, "kms_key_id", None)
        return ami

    _patch(AmiBackend, "create_image", create_image)

    from moto.ec2.models import ec2_backends
    from moto.ec2.responses.amis import AmisResponse

    original_copy = AmiBackend.copy_image

    def copy_image_response(self: Any) -> Any:
        # Parameters read as the shipped handler does, plus the three AWS honours.
        source_id = self._get_param("SourceImageId")
        source_region = self._get_param("SourceRegion")
        self.error_on_dryrun()
        image = original_copy(self.ec2_backend, source_id, source_region,
                              self._get_param("Name"), self._get_param("Description"))
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
        from moto.core.responses import ActionResult

        return ActionResult({"ImageId": image.id})

    _patch(AmisResponse, "copy_image", copy_image_response)

    from moto.cloudformation.responses import CloudFormationResponse

    original_validate = CloudFormationResponse.validate_template

    def validate_template(self: Any) -> Any:
        result = original_validate(self)
        body = self._get_param("TemplateBody")
        if self._get_param("TemplateURL"):
            body = self._get_stack_from_s3_url(self._get_param("TemplateURL"))
        declared = (_parse_template(body) or {}).get("Parameters") or {}
        result.result["Parameters"] = [
            {"ParameterKey": key, "DefaultValue": str(spec.get("Default", "")),
             "NoEcho": bool(spec.get("NoEcho", False)),
             "Description": spec.get("Description", "")}
            for key, spec in declared.items() if isinstance(spec, dict)]
        return result

    _patch(CloudFormationResponse, "validate_template", validate_template)

    from moto.ec2.models.elastic_network_interfaces import NetworkInterface
    from moto.ec2.utils import generate_dns_from_ip

    def association(self: Any) -> dict[str, Any]:
        public_ip = self.public_ip  # once: a stop in another thread may clear it
        if not public_ip:
            return {}
        eips = self.ec2_backend.address_by_ip([public_ip], fail_if_not_found=False)
        eip = eips[0] if eips else None
        found: dict[str, Any] = {}
        if eip:
            found["allocationId"] = eip.allocation_id or None
            found["associationId"] = eip.association_id or None
        return {**found, "natEnabled": True, "publicIp": public_ip,
                "publicDnsName": generate_dns_from_ip(public_ip),
                "ipOwnerId": self.ec2_backend.account_id}

    _patch(NetworkInterface, "association", property(association))


def _parse_template(body: str) -> dict[str, Any] | None:
    """A template as data: JSON, or YAML with CloudFormation's short-form tags kept opaque."""
    import json

    import yaml
    from moto.cloudformation.utils import yaml_tag_constructor

    try:
        return json.loads(body)
    except ValueError:
        pass

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", yaml_tag_constructor)
    try:
        parsed = yaml.load(body, Loader=Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _root_volume(backend: Any, instance: Any) -> Any:
    mapping = dict(instance.get_block_device_mapping)
    device = mapping.get(instance.root_device_name) or next(iter(mapping.values()), None)
    if device is None or not device.volume_id:
        return None
    return backend.get_volume(device.volume_id)


def uninstall() -> None:
    while _undo:
        _undo.pop()()
