"""EventBridge delivery as AWS does it, on top of moto's rules and patterns.

moto matches events to rules but delivers only to SQS, logs, buses and archives; a Lambda
target raises ``NotImplementedError``, disabled rules still deliver, and a schedule rule
(no pattern) matches every event. The fill in :mod:`.fills.events` routes
``moto.events.models.Rule.send_to_targets`` (:func:`routed_send_to_targets`) to
:func:`deliver`, which, for an ENABLED rule with a pattern that matches:

* renders each target's input as AWS does (:func:`render_input`: ``Input``,
  ``InputPath`` or ``InputTransformer``, else the whole event as JSON);
* invokes a Lambda target asynchronously (a worker thread; errors are logged, never
  raised into ``PutEvents``), starts an execution for a Step Functions target, starts a
  build of a CodeBuild project (the input is StartBuild's parameters, as AWS reads it:
  ``sourceVersion``), sends to SQS and CloudWatch Logs, forwards to another bus; other
  target kinds go to moto.

:func:`put_event` is how the rest of the local cloud (schedules, the EC2 simulator)
emits an AWS service event; it goes through moto's ``put_events`` so every rule of the
bus sees it.

:func:`set_drop_filter` lets the fault injector (:mod:`.faults`) lose a share of the
deliveries, as a failed asynchronous invoke or a missed event would.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

# moto's own Rule.send_to_targets, for target kinds delivered as moto does.
_moto_send_to_targets: Callable[..., None] | None = None
# (rule, target, event) -> True to lose the delivery: the fault injector's hook.
_drop: Callable[[Any, dict[str, Any], dict[str, Any]], bool] | None = None

_MISSING = object()
_PATH_TOKEN = re.compile(r"""\.([^.\[\]]+)|\[(\d+)\]|\[['"]([^'"]+)['"]\]""")


# -- input rendering -------------------------------------------------------------------

def json_path(document: Any, path: str) -> Any:
    """Resolve an EventBridge JSON path (``$.detail.instance-id``, ``$.resources[0]``).

    Returns ``_MISSING`` when a step does not exist, as opposed to a JSON ``null``.
    """
    path = path.strip()
    if not path.startswith("$"):
        raise ValueError(f"JSON path must start with '$': {path!r}")
    value = document
    position = 1
    while position < len(path):
        match = _PATH_TOKEN.match(path, position)
        if match is None:
            raise ValueError(f"unsupported JSON path {path!r} at {path[position:]!r}")
        key, index, quoted = match.groups()
        position = match.end()
        if index is not None:
            if not isinstance(value, list) or int(index) >= len(value):
                return _MISSING
            value = value[int(index)]
        else:
            name = key if key is not None else quoted
            if not isinstance(value, dict) or name not in value:
                return _MISSING
            value = value[name]
    return value


def render_template(template: str, values: dict[str, Any]) -> str:
    """Fill ``<name>`` placeholders of an InputTemplate.

    As on AWS: inside a JSON string a value is inserted as text; outside one it is
    inserted as JSON (a string gets its quotes). A name with no value becomes ``null``
    outside a string and empty text inside one. ``<x>`` for unknown names stays as is.
    """
    out: list[str] = []
    in_string = False
    i = 0
    while i < len(template):
        char = template[i]
        if in_string and char == "\\":
            out.append(template[i:i + 2])
            i += 2
            continue
        if char == '"':
            in_string = not in_string
        elif char == "<":
            end = template.find(">", i + 1)
            name = template[i + 1:end] if end != -1 else ""
            if name in values:
                value = values[name]
                if in_string:
                    if value is _MISSING:
                        text = ""
                    elif isinstance(value, str):
                        text = json.dumps(value)[1:-1]
                    else:
                        text = json.dumps(json.dumps(value))[1:-1]
                else:
                    text = "null" if value is _MISSING else json.dumps(value)
                out.append(text)
                i = end + 1
                continue
        out.append(char)
        i += 1
    return "".join(out)


def render_input(target: dict[str, Any], event: dict[str, Any], rule_arn: str,
                 rule_name: str) -> str:
    """The text a target receives for ``event`` (AWS's Input/InputPath/InputTransformer)."""
    if target.get("Input") is not None:
        return str(target["Input"])
    if target.get("InputPath"):
        value = json_path(event, target["InputPath"])
        return "null" if value is _MISSING else json.dumps(value)
    transformer = target.get("InputTransformer")
    if transformer:
        values: dict[str, Any] = {
            name: json_path(event, path)
            for name, path in (transformer.get("InputPathsMap") or {}).items()
        }
        values.setdefault("aws.events.rule-arn", rule_arn)
        values.setdefault("aws.events.rule-name", rule_name)
        values.setdefault("aws.events.event.ingestion-time", event.get("time"))
        values.setdefault("aws.events.event", event)
        values.setdefault("aws.events.event.json", event)
        return render_template(transformer.get("InputTemplate") or "", values)
    return json.dumps(event)


def event_json(event: dict[str, Any]) -> dict[str, Any]:
    """moto's internal event (float ``time``, ``ingestion-time``) in AWS's wire shape."""
    shaped = {k: v for k, v in event.items() if k != "ingestion-time"}
    when = shaped.get("time")
    if isinstance(when, int | float):
        shaped["time"] = datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    elif not when:
        shaped["time"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return shaped


# -- delivery --------------------------------------------------------------------------

def _arn_parts(arn: str) -> tuple[str, str, str, str]:
    """(service, region, account, resource) of an ARN."""
    parts = arn.split(":", 5)
    if len(parts) < 6:
        raise ValueError(f"not an ARN: {arn!r}")
    return parts[2], parts[3], parts[4], parts[5]


def _as_payload(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _to_lambda(arn: str, account: str, region: str, body: str,
               one_at_a_time: str | None = None) -> None:
    from moto.awslambda.utils import get_backend

    from amiforge.localcloud.lambda_runtime import invoke_async

    fn = get_backend(account, region).get_function(arn)
    invoke_async(fn, _as_payload(body), one_at_a_time=one_at_a_time)


def _scheduled(event: dict[str, Any]) -> bool:
    return (event.get("source") == "aws.events"
            and event.get("detail-type") == "Scheduled Event")


def _to_state_machine(arn: str, account: str, region: str, body: str) -> None:
    from moto.stepfunctions.responses import get_backend

    execution = get_backend(account, region).start_execution(
        state_machine_arn=arn, name=str(uuid.uuid4()), execution_input=body)
    log.info("event started execution %s", getattr(execution, "execution_arn", execution))


def _to_codebuild(resource: str, account: str, region: str, body: str) -> None:
    from moto.codebuild.models import codebuild_backends

    parameters = _as_payload(body)
    source_version = parameters.get("sourceVersion") if isinstance(parameters, dict) else None
    codebuild_backends[account][region].start_build(
        resource.split("/", 1)[1], source_version=str(source_version) if source_version else None)


def _to_queue(resource: str, account: str, region: str, body: str,
              target: dict[str, Any], event_id: str) -> None:
    from moto.sqs.models import sqs_backends

    group_id = (target.get("SqsParameters") or {}).get("MessageGroupId")
    fifo = resource.endswith(".fifo")
    sqs_backends[account][region].send_message(
        queue_name=resource, message_body=body, group_id=group_id if fifo else None,
        deduplication_id=event_id if fifo else None)


def _to_log_group(resource: str, account: str, region: str, body: str) -> None:
    from moto.logs.models import logs_backends

    name = resource.split(":", 1)[1].removesuffix(":*")
    backend = logs_backends[account][region]
    stream = uuid.uuid4().hex
    backend.create_log_stream(name, stream)
    backend.put_log_events(name, stream, [{"timestamp": int(datetime.now(UTC).timestamp()
                                                             * 1000), "message": body}])


def _to_bus(resource: str, account: str, region: str, event: dict[str, Any]) -> None:
    from moto.events.models import events_backends

    events_backends[account][region].put_events([{
        "Source": event["source"], "DetailType": event["detail-type"],
        "Detail": json.dumps(event.get("detail", {})), "Resources": event.get("resources", []),
        "EventBusName": resource.split("/", 1)[1],
    }])


def deliver_to_target(rule: Any, target: dict[str, Any], event: dict[str, Any],
                      transform_input: bool = True) -> None:
    shaped = event_json(event)
    service, region, account, resource = _arn_parts(target["Arn"])
    region = region or rule.region_name
    account = account or rule.account_id
    if transform_input:
        body = render_input(target, shaped, rule.arn, rule.name)
    else:
        body = json.dumps(shaped)
    if service == "lambda":
        # A schedule's ticks never overlap in one function (lambda_runtime.invoke_async).
        _to_lambda(target["Arn"], account, region, body,
                   f"{rule.arn} -> {target['Arn']}" if _scheduled(event) else None)
    elif service == "states":
        _to_state_machine(target["Arn"], account, region, body)
    elif service == "codebuild":
        _to_codebuild(resource, account, region, body)
    elif service == "sqs":
        _to_queue(resource, account, region, body, target, str(shaped.get("id", "")))
    elif service == "logs":
        _to_log_group(resource, account, region, body)
    elif service == "events" and resource.startswith("event-bus/"):
        _to_bus(resource, account, region, shaped)
    elif _moto_send_to_targets is not None:
        # Archives and API destinations: moto's own code, for this one target.
        single = copy.copy(rule)
        single.targets = [target]
        _moto_send_to_targets(single, event, transform_input)
    log.info("rule %s -> %s", rule.name, target["Arn"])


def deliver(rule: Any, event: dict[str, Any], transform_input: bool = True) -> None:
    """Deliver ``event`` to every target of ``rule``; failures are logged, not raised."""
    for target in list(rule.targets):
        if _drop is not None and _drop(rule, target, event):
            log.info("rule %s -> %s: delivery dropped (fault injection)", rule.name,
                     target.get("Arn"))
            continue
        try:
            deliver_to_target(rule, target, event, transform_input)
        except Exception:
            log.exception("rule %s: delivery to %s failed", rule.name, target.get("Arn"))


def routed_send_to_targets(original: Callable[..., None]) -> Callable[..., None]:
    """``Rule.send_to_targets`` as AWS delivers: ENABLED rules with a matching pattern,
    through :func:`deliver`; ``original`` (moto's) serves the kinds it delivers itself."""
    global _moto_send_to_targets
    _moto_send_to_targets = original

    def send_to_targets(self: Any, event: Any, transform_input: bool = True) -> None:
        if self.state != "ENABLED" or not self.event_pattern.get_pattern():
            # A schedule rule has no pattern: moto's empty pattern would match every event.
            return
        if not self.event_pattern.matches_event(event):
            return
        deliver(self, event, transform_input)

    return send_to_targets


def put_event(account: str, region: str, source: str, detail_type: str,
              detail: dict[str, Any], resources: list[str], bus: str = "default") -> None:
    """Emit an AWS service event on ``bus`` of ``region`` (as EC2 or a schedule would).

    Like moto's ``put_events`` but over a snapshot of the bus's rules, so a rule created
    by another thread meanwhile cannot break the iteration (this runs on the simulator's
    thread, concurrently with API calls).
    """
    from moto.events.models import events_backends

    now = datetime.now(UTC).timestamp()
    event: Any = {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type,
        "source": source, "account": account, "time": now, "region": region,
        "resources": list(resources), "detail": detail, "ingestion-time": now,
    }
    event_bus = events_backends[account][region].describe_event_bus(bus)
    for rule in list(event_bus.rules.values()):
        rule.send_to_targets(copy.deepcopy(event))


def set_drop_filter(drop: Callable[[Any, dict[str, Any], dict[str, Any]], bool] | None
                    ) -> None:
    """Lose the deliveries for which ``drop(rule, target, event)`` is True (None: none)."""
    global _drop
    _drop = drop
