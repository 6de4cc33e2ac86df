"""``amiforge local``: run the local cloud, and play a vendor releasing a base AMI.

``local up`` runs :class:`~amiforge.localcloud.LocalCloud` in the foreground until Ctrl-C
(or SIGTERM) and prints the ``export`` lines a shell needs. ``local release-base`` talks
to a running one over its private ``/_amiforge/release-base`` route, so it needs no moto
import and works against a cloud in another process.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import urllib.error
import urllib.request
from datetime import datetime
from typing import Any

import click

from amiforge.cli.command import command_errors
from amiforge.cli.context import CliContext
from amiforge.cli.render import Result, to_json
from amiforge.errors import InvalidInput, OperationFailed
from amiforge.ops.views import versioned

DEFAULT_PORT = 4566


@click.group("local")
def local() -> None:
    """The local cloud: amiforge's AWS, offline (moto + Lambda, EventBridge, EC2 builds)."""


@local.command("up")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="Port on 127.0.0.1 (0: any free port).")
@click.option("--time-scale", type=float, default=1.0, show_default=True,
              help="Emulated seconds per real second for schedules (3600: an hour a second).")
@click.option("--builder-seconds", type=float, default=2.0, show_default=True,
              help="How long a simulated build instance runs before it shuts down.")
@click.option("--fault-rate", type=float, default=0.0, show_default=True,
              help="Share of AWS calls made by functions that fail with throttling or a "
                   "5xx (0-1).")
@click.option("--event-drop-rate", type=float, default=0.0, show_default=True,
              help="Share of EventBridge deliveries (state changes, schedules) lost (0-1).")
@click.option("--crash-rate", type=float, default=0.0, show_default=True,
              help="Share of function invocations killed after their first state-changing "
                   "AWS call (0-1).")
@click.option("--image-pending-seconds", type=click.FloatRange(min=0), default=0.0,
              show_default=True,
              help="How long a new image (CreateImage, CopyImage) stays pending before it is "
                   "available.")
@click.option("--lambda-idle-seconds", type=click.FloatRange(min=0), default=120.0,
              show_default=True,
              help="End a function's execution environment after this long unused.")
@click.pass_obj
@command_errors
def up(ctx: CliContext, port: int, time_scale: float, builder_seconds: float,
       fault_rate: float, event_drop_rate: float, crash_rate: float,
       image_pending_seconds: float, lambda_idle_seconds: float) -> Result:
    """Run the local cloud in the foreground until Ctrl-C.

    The fault knobs make it an unreliable AWS (counters: GET /_amiforge/faults)."""
    if time_scale <= 0:
        raise InvalidInput(f"--time-scale must be positive, got {time_scale}")
    if builder_seconds < 0:
        raise InvalidInput(f"--builder-seconds must not be negative, got {builder_seconds}")
    for option, rate in (("--fault-rate", fault_rate), ("--event-drop-rate", event_drop_rate),
                         ("--crash-rate", crash_rate)):
        if not 0.0 <= rate <= 1.0:
            raise InvalidInput(f"{option} must be between 0 and 1, got {rate}")
    from amiforge.localcloud.server import LocalCloud  # imports moto: only when needed

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)
    cloud = LocalCloud(port=port, region=ctx.region or "us-east-1", time_scale=time_scale,
                       builder_seconds=builder_seconds, fault_rate=fault_rate,
                       event_drop_rate=event_drop_rate, crash_rate=crash_rate,
                       lambda_idle_seconds=lambda_idle_seconds,
                       image_pending_seconds=image_pending_seconds)
    try:
        cloud.start()
    except OSError as err:
        raise InvalidInput(f"cannot listen on 127.0.0.1:{port}: {err.strerror or err}",
                           hint="pass another --port, or --port 0 for any free one") from err
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        _announce(cloud.env(), ctx.output)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        endpoint = cloud.endpoint
        cloud.stop()
    return Result(data=versioned(endpoint=endpoint, stopped=True),
                  lines=[f"local cloud at {endpoint} stopped"])


def _announce(env: dict[str, str], output: str) -> None:
    if output == "json":
        click.echo(to_json(versioned(endpoint=env["AWS_ENDPOINT_URL"], env=env)))
    else:
        click.echo(f"amiforge local cloud on {env['AWS_ENDPOINT_URL']} (Ctrl-C stops it)")
        click.echo("In another shell:")
        for name, value in env.items():
            click.echo(f"  export {name}={value}")
    sys.stdout.flush()


@local.command("release-base")
@click.option("--name", required=True, help="Image name, e.g. al2023-ami-2023.9.1-kernel-6.1-x86_64.")
@click.option("--owner", default="amazon", show_default=True,
              help="Owner alias (amazon, aws-marketplace, self) or account id.")
@click.option("--ssm-parameter", default=None,
              help="Also point this SSM parameter at the new image.")
@click.option("--architecture", type=click.Choice(["x86_64", "arm64"]), default="x86_64",
              show_default=True)
@click.option("--platform", type=click.Choice(["linux", "windows"]), default="linux",
              show_default=True)
@click.option("--creation-date", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
              default=None, help="Creation date (default: newer than any of its family).")
@click.pass_obj
@command_errors
def release_base(ctx: CliContext, name: str, owner: str, ssm_parameter: str | None,
                 architecture: str, platform: str, creation_date: datetime | None) -> Result:
    """Publish a new base AMI in a running local cloud, as a vendor would; prints its id."""
    if not ctx.endpoint_url:
        raise InvalidInput("no local cloud endpoint",
                           hint="pass --endpoint-url or set AWS_ENDPOINT_URL to the URL "
                                "`amiforge local up` printed")
    request = {"name": name, "owner": owner, "ssm_parameter": ssm_parameter,
               "architecture": architecture,
               "platform": "windows" if platform == "windows" else None,
               "creation_date": creation_date.isoformat() if creation_date else None,
               "region": ctx.region}
    answer = _post(ctx.endpoint_url, "release-base", request)
    return Result(data=versioned(image_id=answer["image_id"]), lines=[answer["image_id"]])


def _post(endpoint: str, route: str, body: dict[str, Any]) -> dict[str, Any]:
    url = f"{endpoint.rstrip('/')}/_amiforge/{route}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer
    except urllib.error.HTTPError as err:
        try:
            message = json.loads(err.read()).get("error", str(err))
        except ValueError:
            message = str(err)
        if err.code == 404:
            raise InvalidInput(f"{endpoint} is not an amiforge local cloud ({message})",
                               hint="point --endpoint-url at `amiforge local up`") from err
        raise InvalidInput(message) from err
    except (urllib.error.URLError, OSError) as err:
        raise OperationFailed(f"cannot reach the local cloud at {endpoint}: "
                              f"{getattr(err, 'reason', err)}",
                              hint="is `amiforge local up` running?") from err


COMMANDS = [local]
