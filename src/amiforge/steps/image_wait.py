"""Waiting for images by event: AwaitImage, AwaitCopies, EC2's AMI events and the image check.

The state machine's AwaitImage task (``lambda:invoke.waitForTaskToken``, after
CreateImage) and AwaitCopies (after Distribute, when a copy is still pending) call
:func:`await_image`: it notes the token in the catalog's ``#image-waits`` partition, one
marker per image waited for (:mod:`amiforge.aws.image_waits`), and only then looks at the
images itself, since an image may already be available (and its event already gone by).
After that the execution costs nothing while EC2 snapshots: no poll loop, so a build's
state transitions no longer grow with its snapshot time.

Three callers can then answer the token, and the first one wins (the others find the
token answered, or no marker):

* :func:`on_image_state`, on EC2's "EC2 AMI State Change" event (the ``ImageStateRule``,
  ``available`` and ``failed`` only). The event is untrusted: it only *names* an image.
  One GetItem finds the marker for that region and image id (an image no build waits
  for is ignored, whatever the event says); the state is then read from EC2, and the
  image must carry the waiting build's ``amiforge:build-id`` tag. A forged "available"
  for an image still pending resumes nothing.
* :func:`check_images`, on the ``ImageCheckSchedule`` (``{"check": "images"}``): one
  Query of the markers, then each wait settled the same way. This is the fallback for
  a lost event, and the way copies are noticed: EC2 reports a copy in the *destination*
  region, where this stack has no rule (see docs/architecture.md, "Waiting for images").
* :func:`await_image` itself, when the image is ready before it parked the token.

A settled wait answers SendTaskSuccess with the step's output (AwaitImage: the image with
its state and snapshots, as ``$.image``; AwaitCopies: ``{images, ready, pending}`` as
``$.distribution``) or SendTaskFailure ``BuildFailed`` naming the image and EC2's reason,
which RecordFailure records. A wait that outlives the image timeout ends on the task's
own timeout (``ImageTimedOut``); its markers are then dropped by the check.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from amiforge.aws import ec2 as ec2_api
from amiforge.aws import stepfunctions as sfn_api
from amiforge.aws.catalog import now_iso
from amiforge.aws.image_waits import ImageWait, ImageWaitList
from amiforge.core.tags import BUILD_ID
from amiforge.errors import InvalidEvent
from amiforge.steps.env import StepEnv

BAD_STATES = frozenset({"failed", "invalid", "deregistered", "error"})
FINAL_EVENT_STATES = frozenset({"available", "failed"})
# EC2 is eventually consistent: an image made a moment ago may not be described yet.
# Only a marker older than this whose image is unknown counts as "gone".
MISSING_GRACE_SECONDS = 600
# Markers of a wait whose task timed out are dropped this long after the image timeout.
STALE_MARGIN_SECONDS = 600

log = logging.getLogger(__name__)


def _ec2(env: StepEnv, region: str) -> Any:
    return env.client("ec2", None if region == env.region else region)


def _age_seconds(since: str, now: datetime) -> float:
    try:
        started = datetime.strptime(since, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return float("inf")
    return (now - started).total_seconds()


def await_image(event: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    """Input: {token, kind: image|copies, build: {recipe, build_id}, image,
    distribution?}. Parks the token, then settles the wait if it can already."""
    build, image, kind = event["build"], event["image"], event["kind"]
    if kind == "image":
        images = {env.region: image["image_id"]}
        waited = dict(images)
    else:
        if not isinstance(event.get("distribution"), dict):
            raise InvalidEvent("await_image event refused: distribution is missing "
                               "(kind copies waits for Distribute's copies)",
                               hint="the AwaitCopies state passes $.distribution")
        images = dict(event["distribution"]["images"])
        pending = event["distribution"].get("pending") or [r for r in images if r != env.region]
        waited = {r: images[r] for r in pending if r in images}
    waits = ImageWaitList(env.client("dynamodb"), env.catalog_table)
    since = now_iso()
    marker = None
    for region, image_id in waited.items():
        marker = ImageWait(kind=kind, recipe=build["recipe"], build_id=build["build_id"],
                           region=region, image_id=image_id, token=event["token"],
                           since=since, image=dict(image), images=images)
        waits.add(marker)
    if marker is None:  # nothing pending: answer at once
        marker = ImageWait(kind=kind, recipe=build["recipe"], build_id=build["build_id"],
                           region=env.region, image_id=image["image_id"],
                           token=event["token"], since=since, image=dict(image), images=images)
    return settle(env, waits, marker, source="poll")


def on_image_state(event: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    """EventBridge "EC2 AMI State Change" for any image, or the image check's schedule
    (input ``{"check": "images"}``)."""
    if event.get("check") == "images":
        return check_images(env)
    detail = event["detail"]
    if detail["State"] not in FINAL_EVENT_STATES:
        return {"ignored": "not a final state"}
    waits = ImageWaitList(env.client("dynamodb"), env.catalog_table)
    wait = waits.get(event["region"], detail["ImageId"])
    if wait is None:
        return {"ignored": "no build waits for this image"}
    return settle(env, waits, wait, source="event")


def check_images(env: StepEnv) -> dict[str, Any]:
    """The fallback and the copies' watch: settle every wait the markers name."""
    waits = ImageWaitList(env.client("dynamodb"), env.catalog_table)
    markers = list(waits.all())
    report: dict[str, Any] = {"check": "images", "waiting": len(markers), "resumed": [],
                              "failed": [], "pending": 0, "dropped": 0, "errors": 0}
    now = datetime.now(UTC)
    stale_after = env.image_timeout_minutes * env.seconds_per_minute + STALE_MARGIN_SECONDS
    seen: set[str] = set()
    for wait in markers:
        if wait.token in seen:  # the copies of one build share a token: settle it once
            continue
        seen.add(wait.token)
        if _age_seconds(wait.since, now) > stale_after:
            # The task timed out long ago (ImageTimedOut): nothing waits on this token.
            for region, image_id in _waited(wait).items():
                waits.remove(region, image_id, wait.token)
            report["dropped"] += 1
            continue
        try:
            outcome = settle(env, waits, wait, source="schedule")
        except Exception:  # one wait's failure must not starve the others
            log.exception("image check: settling build %s (image %s in %s) failed",
                          wait.build_id, wait.image_id, wait.region)
            report["errors"] += 1
            continue
        if outcome.get("resumed"):
            report["resumed"].append(wait.build_id)
        elif outcome.get("failed") and outcome.get("answered"):
            report["failed"].append(wait.build_id)
        elif outcome.get("state") == "pending":
            report["pending"] += 1
    return report


def _waited(wait: ImageWait) -> dict[str, str]:
    """The images this wait is about: the home image, or every copy (not the home one)."""
    if wait.kind == "image":
        return {wait.region: wait.image_id}
    home = wait.image.get("image_id")
    return {r: i for r, i in wait.images.items() if i != home}


def settle(env: StepEnv, waits: ImageWaitList, wait: ImageWait, *,
           source: str) -> dict[str, Any]:
    """Describe the wait's images; answer its token once they are all available (or one
    failed); remove its markers once answered. Pending: leave everything as it is."""
    images = _waited(wait)
    now = datetime.now(UTC)
    pending: list[str] = []
    described: dict[str, dict[str, Any]] = {}
    problem = ""
    for region, image_id in sorted(images.items()):
        found = ec2_api.describe_image(_ec2(env, region), image_id)
        if found is not None and ec2_api.tags_of(found).get(BUILD_ID) != wait.build_id:
            # A marker names only images its build made; anything else is not ours.
            log.warning("image %s in %s is not build %s's: ignored", image_id, region,
                        wait.build_id)
            return {"ignored": "not this build's image", "image_id": image_id}
        state = (found or {}).get("State")
        if state is None and _age_seconds(wait.since, now) < MISSING_GRACE_SECONDS:
            state = "pending"  # right after CreateImage/CopyImage EC2 may not know it yet
        if state is None or state in BAD_STATES:
            reason = (found or {}).get("StateReason", {}).get("Message") or state or "gone"
            what = "image" if wait.kind == "image" else "copy"
            problem = f"{what} {image_id} in {region} is {state or 'gone'}: {reason}"
            break
        if state != "available":
            pending.append(region)
        described[region] = found or {}
    sfn = env.client("stepfunctions")
    if problem:
        answered = sfn_api.fail_task(sfn, wait.token, error="BuildFailed", cause=problem)
        _remove(waits, wait, images)
        return {"failed": problem, "answered": answered, "source": source}
    if pending:
        return {"state": "pending", "pending": pending, "source": source}
    output: dict[str, Any]
    if wait.kind == "image":
        output = image_output(wait.image, described.get(wait.region, {}))
    else:
        output = {"images": wait.images, "ready": True, "pending": []}
    resumed = sfn_api.resume(sfn, wait.token, output)
    _remove(waits, wait, images)
    return {"resumed": resumed, "state": "available", "source": source}


def image_output(image: dict[str, Any], described: dict[str, Any]) -> dict[str, Any]:
    """AwaitImage's answer (``$.image``): CreateImage's output with the available image's
    state and snapshots (Register shares the snapshots)."""
    return {**image, "state": described.get("State", "available"),
            "snapshot_ids": ec2_api.snapshot_ids(described)}


def _remove(waits: ImageWaitList, wait: ImageWait, images: dict[str, str]) -> None:
    for region, image_id in images.items():
        waits.remove(region, image_id, wait.token)
