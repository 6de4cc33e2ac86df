"""Which images are in use, and where: the facts the deletion gate keeps images for.

What counts is ``core/in_use.py`` (which versions, fleet states, ``resolve:ssm:``
references); this module reads the account and applies it. :func:`images_in_use` looks,
in one region, for every way an image keeps being needed:

* an instance launched from it, in any state but ``terminated`` (a stopped instance
  starts again from its volumes, but its image is what a replacement or a rebuild uses);
* any version of any launch template that names it (not only ``$Default`` and
  ``$Latest``: a group or a user may launch any version by number; ``resolve:ssm:``
  image references are resolved through the parameter);
* an Auto Scaling group whose launch template (plain, or in a mixed instances policy, or
  an override's) or launch configuration names it;
* any launch configuration that names it (one may be attached to a group later);
* an SSM parameter of any type whose value is it (a plain ``String`` of data type
  ``text`` outside ``/amiforge/`` included);
* a Spot fleet request or an EC2 Fleet that can still launch (not cancelled, deleted or
  failed) and names it: in a launch specification, a launch template, or an override.

What it cannot see: other accounts (an image shared with them may be in use there),
instances and templates in regions the image is not in, and what a user keeps outside
AWS (scripts, CI variables, other tools' configuration), and services that keep their
own copy of an image id (EC2 Image Builder pipelines and the like).

:func:`scan_uses` answers one :class:`~amiforge.core.in_use.ImageUse` per use (kind, id,
region, and the description retention quotes): it is the one scan, which retention (through
the deletion gate's facts) and ``amiforge fleet`` both read. :func:`images_in_use` is its
answer as image id -> descriptions ("launch template lt-0abc (web) $Default", ...). Only
the candidate image ids are reported. Every call is a describe; nothing is changed.

When a launch template names its image through an SSM parameter that cannot be read
(AccessDenied on a public ``/aws/service/...`` parameter, or any other error), nobody
can tell which image that template launches, so the region's answer is unknown:
:func:`images_in_use` raises :class:`UsageUnknown`, and retention keeps every candidate
of that region. A parameter that does not exist (GetParameters' ``InvalidParameters``)
names no image and uses nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from amiforge.aws import ec2_lifecycle
from amiforge.aws.errors import ClientError, aws_call, error_code, translate
from amiforge.core.in_use import (
    AUTO_SCALING_GROUP,
    DEFAULT_VERSION,
    EC2_FLEET,
    INSTANCE,
    LAUNCH_CONFIGURATION,
    LAUNCH_TEMPLATE_VERSION,
    SPOT_FLEET_REQUEST,
    SSM_PARAMETER,
    SSM_PREFIX,
    ImageUse,
    fleet_can_launch,
    ssm_reference,
    version_labels,
)
from amiforge.errors import AmiforgeError, UsageUnknown

__all__ = ["SSM_PREFIX", "ImageUse", "UsageUnknown", "creation_dates", "images_in_use",
           "scan_uses", "uses_by_image"]
AMIFORGE_PATH = "/amiforge"
_GET_PARAMETERS_BATCH = 10
# A launch template version that is gone (deleted) answers one of these; it uses nothing.
_LT_GONE = frozenset({"InvalidLaunchTemplateId.NotFound", "InvalidLaunchTemplateName.NotFound",
                      "InvalidLaunchTemplateId.VersionNotFound",
                      "InvalidLaunchTemplateName.NotFoundException"})

Client = Callable[[str], Any]  # service name -> boto3 client of the region


def scan_uses(client: Client, candidates: Iterable[str], *, region: str = "",
              label: str = "") -> list[ImageUse]:
    """Every use of the ``candidates`` in one region, in the order found.

    ``client(service)`` returns that region's client; ``region`` is recorded on each use;
    ``label`` (e.g. " in eu-west-1") is appended to every description. Raises
    :class:`UsageUnknown` when a launch template's ``resolve:ssm:`` parameter cannot be
    read: any candidate of the region may be in use.
    """
    wanted = set(candidates)
    if not wanted:
        return []
    finder = _Finder(client, wanted, label, region)
    finder.instances()
    finder.parameters()
    finder.launch_templates()
    finder.auto_scaling()
    finder.fleets()
    return finder.found


def uses_by_image(uses: Iterable[ImageUse]) -> dict[str, list[str]]:
    """{image id: [descriptions]}: the shape retention's reasons quote."""
    out: dict[str, set[str]] = defaultdict(set)
    for use in uses:
        out[use.image_id].add(use.description)
    return {image: sorted(where) for image, where in out.items()}


def images_in_use(client: Client, candidates: Iterable[str], *,
                  label: str = "") -> dict[str, list[str]]:
    """{image id: [where it is used]} for the ``candidates`` in use in one region
    (:func:`scan_uses`, by image)."""
    return uses_by_image(scan_uses(client, candidates, label=label))


class _Finder:
    def __init__(self, client: Client, wanted: set[str], label: str, region: str) -> None:
        self.client = client
        self.wanted = wanted
        self.label = label
        self.region = region
        self.found: list[ImageUse] = []
        self._versions: dict[tuple[str, str], str | None] = {}
        self._parameters: dict[str, str | None] = {}
        self._names: dict[str, str] = {}  # launch template name -> id

    def _found(self, image: str | None, where: str, kind: str, ident: str, *,
               standby: bool = False) -> None:
        if image and image in self.wanted:
            self.found.append(ImageUse(image_id=image, kind=kind, id=ident, region=self.region,
                                       description=where + self.label, standby=standby))

    # -- instances -------------------------------------------------------------------
    def instances(self) -> None:
        for instance in ec2_lifecycle.instances_using(self.client("ec2"), self.wanted):
            state = instance.get("State", {}).get("Name", "?")
            self._found(instance.get("ImageId"), f"instance {instance['InstanceId']} ({state})",
                        INSTANCE, instance["InstanceId"])

    # -- SSM parameters --------------------------------------------------------------
    def parameters(self) -> None:
        """Every parameter of the account and region, of any type and data type: a plain
        ``String`` (data type ``text``) holding an image id is launched from as surely as
        an ``aws:ec2:image`` one."""
        names = set(_parameter_names(self.client("ssm"), []))
        for name, value in self._resolve(sorted(names)).items():
            self._found(value, f"SSM parameter {name}", SSM_PARAMETER, name)

    def _resolve(self, names: list[str]) -> dict[str, str | None]:
        """Values of parameters (name, or name:version / name:label), cached."""
        missing = [n for n in names if n not in self._parameters]
        ssm = self.client("ssm") if missing else None
        for start in range(0, len(missing), _GET_PARAMETERS_BATCH):
            batch = missing[start:start + _GET_PARAMETERS_BATCH]
            with aws_call("GetParameters"):
                response = ssm.get_parameters(Names=batch)  # type: ignore[union-attr]
            for parameter in response.get("Parameters", []):
                selector = parameter.get("Selector") or ""
                self._parameters[parameter["Name"] + selector] = parameter.get("Value")
                self._parameters.setdefault(parameter["Name"], parameter.get("Value"))
            for name in batch:
                self._parameters.setdefault(name, None)
        return {n: self._parameters.get(n) for n in names}

    def _image_of(self, image: str | None, template: str) -> str | None:
        """A launch template's ImageId: an AMI id, or ``resolve:ssm:NAME``."""
        name = ssm_reference(image)
        if name is not None:
            try:
                return self._resolve([name]).get(name)
            except AmiforgeError as err:  # AccessDenied, throttled, invalid name, ...
                raise UsageUnknown(f"could not read SSM parameter {name} used by launch "
                                   f"template {template}{self.label}: {err}") from err
        return image

    # -- launch templates ------------------------------------------------------------
    def launch_templates(self) -> None:
        """Every version of every launch template: any of them can be launched by number."""
        ec2 = self.client("ec2")
        with aws_call("DescribeLaunchTemplates"):
            templates = [t for page in ec2.get_paginator("describe_launch_templates").paginate()
                         for t in page.get("LaunchTemplates", [])]
        for template in templates:
            template_id, name = template["LaunchTemplateId"], template.get("LaunchTemplateName", "")
            self._names[name] = template_id
            default = str(template.get("DefaultVersionNumber", ""))
            latest = str(template.get("LatestVersionNumber", ""))
            for number, image in self._all_versions(template_id).items():
                self._versions[(template_id, number)] = image
                for label in version_labels(number, default, latest):
                    self._found(image, f"launch template {template_id} ({name}) {label}",
                                LAUNCH_TEMPLATE_VERSION, f"{template_id}:{number}",
                                standby=bool(default and latest)
                                and number not in (default, latest))
            self._versions[(template_id, "$Default")] = self._versions.get((template_id, default))
            self._versions[(template_id, "$Latest")] = self._versions.get((template_id, latest))

    def _all_versions(self, template_id: str) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        try:
            pages = self.client("ec2").get_paginator("describe_launch_template_versions")
            for page in pages.paginate(LaunchTemplateId=template_id):
                for version in page.get("LaunchTemplateVersions", []):
                    out[str(version["VersionNumber"])] = self._image_of(
                        version.get("LaunchTemplateData", {}).get("ImageId"), template_id)
        except ClientError as err:
            if error_code(err) in _LT_GONE:  # deleted since it was listed
                return out
            raise translate(err, "DescribeLaunchTemplateVersions") from err
        return out

    def _template_image(self, template: str, version: str) -> str | None:
        template_id = self._names.get(template, template)
        key = (template_id, version)
        if key not in self._versions:
            self._versions[key] = self._read_version(template_id, version)
        return self._versions[key]

    def _read_version(self, template: str, version: str) -> str | None:
        by = "LaunchTemplateId" if template.startswith("lt-") else "LaunchTemplateName"
        try:
            versions = self.client("ec2").describe_launch_template_versions(
                **{by: template}, Versions=[version]).get("LaunchTemplateVersions", [])
        except ClientError as err:
            if error_code(err) in _LT_GONE:
                return None
            raise translate(err, "DescribeLaunchTemplateVersions") from err
        if not versions:
            return None
        return self._image_of(versions[0].get("LaunchTemplateData", {}).get("ImageId"),
                              template)

    def _spec_image(self, spec: dict[str, Any] | None) -> tuple[str | None, str]:
        if not spec:
            return None, ""
        template = spec.get("LaunchTemplateId") or spec.get("LaunchTemplateName") or ""
        version = str(spec.get("Version") or DEFAULT_VERSION)
        if not template:
            return None, ""
        return self._template_image(template, version), f"{template} {version}"

    # -- Auto Scaling ----------------------------------------------------------------
    def auto_scaling(self) -> None:
        autoscaling = self.client("autoscaling")
        configurations: dict[str, str | None] = {}
        with aws_call("DescribeLaunchConfigurations"):
            for page in autoscaling.get_paginator("describe_launch_configurations").paginate():
                for config in page.get("LaunchConfigurations", []):
                    name = config["LaunchConfigurationName"]
                    configurations[name] = config.get("ImageId")
                    self._found(config.get("ImageId"), f"launch configuration {name}",
                                LAUNCH_CONFIGURATION, name)
        with aws_call("DescribeAutoScalingGroups"):
            for page in autoscaling.get_paginator("describe_auto_scaling_groups").paginate():
                for group in page.get("AutoScalingGroups", []):
                    self._group(group, configurations)

    def _group(self, group: dict[str, Any], configurations: dict[str, str | None]) -> None:
        group_name = group["AutoScalingGroupName"]
        name = f"Auto Scaling group {group_name}"

        def found(image: str | None, where: str) -> None:
            self._found(image, where, AUTO_SCALING_GROUP, group_name)

        config = group.get("LaunchConfigurationName")
        if config:
            found(configurations.get(config), f"{name} (launch configuration {config})")
        image, spec = self._spec_image(group.get("LaunchTemplate"))
        found(image, f"{name} (launch template {spec})")
        mixed = (group.get("MixedInstancesPolicy") or {}).get("LaunchTemplate") or {}
        image, spec = self._spec_image(mixed.get("LaunchTemplateSpecification"))
        found(image, f"{name} (mixed instances policy, launch template {spec})")
        for override in mixed.get("Overrides") or []:
            image, spec = self._spec_image(override.get("LaunchTemplateSpecification"))
            found(image, f"{name} (mixed instances override, launch template {spec})")


    # -- Spot fleets and EC2 Fleets -------------------------------------------------
    def fleets(self) -> None:
        """Fleets that can still launch: an image named in a Spot fleet's launch
        specifications, or in a fleet's launch template (or an override's ``ImageId``)."""
        ec2 = self.client("ec2")
        with aws_call("DescribeSpotFleetRequests"):
            for page in ec2.get_paginator("describe_spot_fleet_requests").paginate():
                for request in page.get("SpotFleetRequestConfigs", []):
                    if not fleet_can_launch(request.get("SpotFleetRequestState")):
                        continue
                    ident = request["SpotFleetRequestId"]
                    name = f"Spot fleet request {ident}"
                    config = request.get("SpotFleetRequestConfig") or {}
                    for spec in config.get("LaunchSpecifications") or []:
                        self._found(spec.get("ImageId"), f"{name} (launch specification)",
                                    SPOT_FLEET_REQUEST, ident)
                    self._template_configs(name, config.get("LaunchTemplateConfigs"),
                                           SPOT_FLEET_REQUEST, ident)
        with aws_call("DescribeFleets"):
            for page in ec2.get_paginator("describe_fleets").paginate():
                for fleet in page.get("Fleets", []):
                    if not fleet_can_launch(fleet.get("FleetState")):
                        continue
                    self._template_configs(f"EC2 Fleet {fleet['FleetId']}",
                                           fleet.get("LaunchTemplateConfigs"),
                                           EC2_FLEET, fleet["FleetId"])

    def _template_configs(self, name: str, configs: list[dict[str, Any]] | None,
                          kind: str, ident: str) -> None:
        for config in configs or []:
            image, spec = self._spec_image(config.get("LaunchTemplateSpecification"))
            self._found(image, f"{name} (launch template {spec})", kind, ident)
            for override in config.get("Overrides") or []:
                self._found(override.get("ImageId"), f"{name} (launch template override)",
                            kind, ident)


def _parameter_names(ssm: Any, filters: list[dict[str, Any]]) -> list[str]:
    names: list[str] = []
    with aws_call("DescribeParameters"):
        pages = ssm.get_paginator("describe_parameters")
        for page in (pages.paginate(ParameterFilters=filters) if filters else pages.paginate()):
            names.extend(p["Name"] for p in page.get("Parameters", []))
    return names


def creation_dates(ec2: Any, image_ids: Iterable[str]) -> dict[str, str]:
    """{image id: CreationDate} of those of ``image_ids`` that can still be described (a
    deregistered one, or one that is not ours to see, is simply absent). One call per 100
    ids: an ``image-id`` filter, so an id that is gone fails nothing."""
    ids = sorted(set(image_ids))
    out: dict[str, str] = {}
    for start in range(0, len(ids), 100):
        with aws_call("DescribeImages"):
            images = ec2.describe_images(
                Filters=[{"Name": "image-id", "Values": ids[start:start + 100]}]
            ).get("Images", [])
        out.update({i["ImageId"]: i["CreationDate"] for i in images if i.get("CreationDate")})
    return out
