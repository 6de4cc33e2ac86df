"""CloudFormation custom resources through their whole life, as AWS runs them.

moto sends a custom resource's Lambda the ``Create`` request only, ignores a ``FAILED``
answer (the stack stays ``CREATE_IN_PROGRESS`` for ever) and the answer's
``PhysicalResourceId``, never sends ``Update`` or ``Delete``, and loses the resource on
a stack update. The fills (:mod:`amiforge.localcloud.fills.cloudformation`) on
``moto.cloudformation.custom_model.CustomModel``, ``CloudFormationResponse.
process_cfn_response`` and the stack's update and delete make it so that:

* a ``FAILED`` answer to Create fails the stack: the resource's ``CREATE_FAILED`` event
  carries AWS's reason (``Received response status [FAILED] from custom resource.
  Message returned: ...``) and the stack ends ``ROLLBACK_COMPLETE``;
* ``PhysicalResourceId`` from the answer becomes the resource's physical id;
* a stack update that changes the resource's properties sends ``Update`` (with
  ``OldResourceProperties`` and the current ``PhysicalResourceId``) and waits for the
  answer: its Data replaces the old, a ``FAILED`` answer ends the stack
  ``UPDATE_ROLLBACK_COMPLETE`` with the resource as it was;
* deleting the stack sends ``Delete`` and waits for the answer (``FAILED``: the stack
  ends ``DELETE_FAILED``).

Update and Delete invoke the function synchronously (its answer arrives on the
ResponseURL while it runs); a function that never answers fails the operation.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

log = logging.getLogger(__name__)

_answers: dict[str, dict[str, Any]] = {}  # RequestId -> the function's answer
_deleting: dict[str, Any] = {}  # stack id -> stack: moto unlists a stack before deleting it
_answers_lock = threading.Lock()


class CustomResourceFailed(Exception):
    """The function answered FAILED (or not at all) to an Update or Delete."""


def _reason(answer: dict[str, Any] | None, request_id: str) -> str:
    if answer is None:
        return (f"Custom resource did not answer on its ResponseURL (RequestId: "
                f"{request_id})")
    return (f"Received response status [{answer.get('Status')}] from custom resource. "
            f"Message returned: {answer.get('Reason') or 'none'} (RequestId: {request_id})")


def _response_url(region: str, stack_id: str) -> str:
    from moto import settings

    host = f"{settings.moto_server_host()}:{settings.moto_server_port()}"
    return f"{host}/cloudformation_{region}/cfnresponse?stack={stack_id}"


def _stack(model: Any) -> Any:
    from moto.cloudformation.models import cloudformation_backends

    return _deleting.get(model.stack_id) or cloudformation_backends[model.account_id][
        model.region_name].get_stack(model.stack_id)


def _resource_event(stack: Any, model: Any, status: str, reason: str | None) -> None:
    from moto.cloudformation.models import Event

    stack.events.append(Event(
        stack_id=stack.stack_id, stack_name=stack.name,
        logical_resource_id=model.logical_id,
        physical_resource_id=model.physical_resource_id,
        resource_type=model.resource_type, resource_status=status,
        resource_status_reason=reason, resource_properties=None))


def _call(model: Any, request_type: str, properties: dict[str, Any],
          old_properties: dict[str, Any] | None = None) -> dict[str, Any]:
    """Send a request to the function, wait for it; the answer, or raise."""
    from moto.awslambda.utils import get_backend
    from moto.moto_api._internal import mock_random

    request_id = str(mock_random.uuid4())
    event = {
        "RequestType": request_type, "ServiceToken": model.service_token,
        "ResponseURL": _response_url(model.region_name, model.stack_id),
        "StackId": model.stack_id, "RequestId": request_id,
        "LogicalResourceId": model.logical_id, "ResourceType": model.resource_type,
        "PhysicalResourceId": model.physical_resource_id,
        "ResourceProperties": properties,
    }
    if old_properties is not None:
        event["OldResourceProperties"] = old_properties
    fn: Any = get_backend(model.account_id, model.region_name).get_function(
        model.service_token)
    fn._invoke_lambda(event=event)
    with _answers_lock:
        answer = _answers.pop(request_id, None)
    if answer is None or answer.get("Status") != "SUCCESS":
        raise CustomResourceFailed(_reason(answer, request_id))
    return answer


# -- the fills' replacements -----------------------------------------------------------------------------

def physical_resource_id(self: Any) -> str:
    return str(getattr(self, "_physical_id", None) or self.resource_name)


def wrap_create(original: Any) -> Any:
    def create_from_cloudformation_json(cls: Any, /, resource_name: str,
                                        cloudformation_json: dict[str, Any], account_id: str,
                                        region_name: str, **kwargs: Any) -> Any:
        model = original.__func__(cls, resource_name, cloudformation_json, account_id,
                                  region_name, **kwargs)
        properties = cloudformation_json["Properties"]
        model.account_id = account_id
        model.stack_id = kwargs["StackId"]
        model.resource_type = kwargs["ResourceType"]
        model.service_token = properties["ServiceToken"]
        model.properties = properties
        return model

    return classmethod(create_from_cloudformation_json)


def update_from_cloudformation_json(cls: Any, original_resource: Any,
                                     new_resource_name: str,
                                     cloudformation_json: dict[str, Any], account_id: str,
                                     region_name: str) -> Any:
    properties = cloudformation_json["Properties"]
    model = original_resource
    try:
        answer = _call(model, "Update", properties, getattr(model, "properties", {}))
    except CustomResourceFailed as err:
        model.update_failure = str(err)
        _resource_event(_stack(model), model, "UPDATE_FAILED", str(err))
        return model  # the resource stays as it was; the stack rolls back
    model.properties = properties
    model.service_token = properties.get("ServiceToken", model.service_token)
    model.data = answer.get("Data") or {}
    if answer.get("PhysicalResourceId"):
        model._physical_id = answer["PhysicalResourceId"]
    return model


def delete_custom_resource(self: Any, account_id: str, region_name: str) -> None:
    if not getattr(self, "service_token", None):
        return
    try:
        _call(self, "Delete", getattr(self, "properties", {}))
    except CustomResourceFailed as err:
        _resource_event(_stack(self), self, "DELETE_FAILED", str(err))
        raise


def process_cfn_response(self: Any) -> tuple[int, dict[str, int], str]:
    try:
        answer = json.loads(self.body or "{}")
    except ValueError:
        return 400, {"status": 400}, json.dumps("malformed response body")
    request_id = answer.get("RequestId", "")
    stack_id = answer.get("StackId", "")
    stack = _deleting.get(stack_id) or self.cloudformation_backend.get_stack(stack_id)
    model = stack.custom_resources.get(answer.get("LogicalResourceId"))
    if model is None:
        return 200, {"status": 200}, json.dumps("{}")
    if request_id != model.request_id:  # an answer to Update or Delete: _call waits for it
        with _answers_lock:
            _answers[request_id] = answer
        return 200, {"status": 200}, json.dumps("{}")
    if answer.get("PhysicalResourceId"):
        model._physical_id = answer["PhysicalResourceId"]
    if answer.get("Status") == "SUCCESS":
        model.set_data(answer.get("Data") or {})
        stack.verify_readiness()
    elif stack.status == "CREATE_IN_PROGRESS":
        reason = _reason(answer, request_id)
        _resource_event(stack, model, "CREATE_FAILED", reason)
        stack._add_stack_event("ROLLBACK_IN_PROGRESS", resource_status_reason=(
            f"The following resource(s) failed to create: [{model.logical_id}]. "
            "Rollback requested by user."))
        stack.status = "ROLLBACK_COMPLETE"
        stack.stack_status_reason = reason
        stack._add_stack_event("ROLLBACK_COMPLETE")
        log.info("stack %s: custom resource %s FAILED: %s", stack.name, model.logical_id,
                 answer.get("Reason"))
    return 200, {"status": 200}, json.dumps("{}")


def wrap_stack_update(original: Any) -> Any:
    def update(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        failures = [m for m in self.custom_resources.values()
                    if getattr(m, "update_failure", None)]
        if failures:
            for model in failures:
                model.update_failure = None
            self._add_stack_event("UPDATE_ROLLBACK_COMPLETE")
            self.status = "UPDATE_ROLLBACK_COMPLETE"

    return update


def wrap_stack_delete(original: Any) -> Any:
    def delete(self: Any) -> None:
        _deleting[self.stack_id] = self
        try:
            _delete_stack(self)
        finally:
            _deleting.pop(self.stack_id, None)

    def _delete_stack(self: Any) -> None:
        # Custom resources first: they depend on their function (ServiceToken), which
        # moto might otherwise delete before them.
        for model in list(self.custom_resources.values()):
            if not getattr(model, "service_token", None):
                continue
            try:
                delete_custom_resource(model, self.account_id, self.region_name)
            except CustomResourceFailed as err:
                self._add_stack_event("DELETE_IN_PROGRESS",
                                      resource_status_reason="User Initiated")
                self.status = "DELETE_FAILED"
                self.stack_status_reason = str(err)
                self._add_stack_event("DELETE_FAILED", resource_status_reason=str(err))
                return
            model.service_token = None  # sent: moto's own pass must not send it again
        original(self)

    return delete


def wrap_backend_delete_stack(original: Any) -> Any:
    def delete_stack(self: Any, name_or_stack_id: str) -> None:
        original(self, name_or_stack_id)
        # A stack whose deletion failed stays listed (DELETE_FAILED), as on AWS.
        for stack_id, stack in list(self.deleted_stacks.items()):
            if stack.status == "DELETE_FAILED":
                self.stacks[stack_id] = self.deleted_stacks.pop(stack_id)

    return delete_stack
