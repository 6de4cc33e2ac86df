"""Launch template version fills: what AWS does with CreateLaunchTemplateVersion and
moto 5.2.5 drops.

* ``SourceVersion``: AWS starts the new version from that version's data and applies the
  request's ``LaunchTemplateData`` over it (the rollout changes only ``ImageId``); moto
  keeps only the request's data. Here the new version is the source's data with the
  request's keys replaced.
* ``ClientToken``: AWS answers a repeated request with the version the token made; moto
  makes another. Here a token is remembered per template.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from amiforge.localcloud.fills import Fill


def _create_version(original: Callable[..., Any]) -> Callable[..., Any]:
    def create_launch_template_version(self: Any) -> Any:
        from moto.core.responses import ActionResult

        name = self._get_param("LaunchTemplateName")
        template_id = self._get_param("LaunchTemplateId")
        source = self._get_param("SourceVersion")
        token = self._get_param("ClientToken")
        if not source and not token:
            return original(self)
        template = (self.ec2_backend.get_launch_template(template_id) if template_id
                    else self.ec2_backend.get_launch_template_by_name(name))
        tokens: dict[str, Any] = getattr(template, "_amiforge_tokens", None) or {}
        template._amiforge_tokens = tokens
        version = tokens.get(token) if token else None
        if version is None:
            data = dict(self._get_param("LaunchTemplateData", {}) or {})
            if source:
                data = {**copy.deepcopy(template.get_version(source).data), **data}
            self.error_on_dryrun()
            version = template.create_version(data, self._get_param("VersionDescription"))
            if token:
                tokens[token] = version
        return ActionResult({"LaunchTemplateVersion": {
            "CreateTime": version.create_time,
            "CreatedBy": f"arn:{self.partition}:iam::{self.current_account}:root",
            "DefaultVersion": template.is_default(version),
            "LaunchTemplateData": version.data, "LaunchTemplateId": template.id,
            "LaunchTemplateName": template.name,
            "VersionDescription": version.description, "VersionNumber": version.number}})

    return create_launch_template_version


FILLS = [
    Fill("ec2.launch-template-source-version",
         "moto.ec2.responses.launch_templates:LaunchTemplates",
         "create_launch_template_version", _create_version, "a42f59b830ad"),
]
