"""Launch pacing: amiforge's RunInstances stay under EC2's token bucket, whatever the burst.

EC2 refills RunInstances at 2 a second with a burst of 5, per account and region, shared
by everything in the account. Fifty recipes published at once would otherwise send fifty
RunInstances in the same second: most are refused, botocore backs off, and the account's
other launches (autoscaling!) are refused with them.

So every RunInstances request amiforge sends takes a slot first (:class:`Pacer`). The
slots come from one GCRA bucket (:mod:`amiforge.core.ratelimit`) kept as a single item
of the catalog table (partition ``#limits``, which no recipe name can be), taken with a
read and a conditional write (compare-and-set on the stored ``tat``):

* a slot due within ``max_wait`` seconds is reserved and waited for in the function;
* a later one is not reserved: :class:`LaunchThrottled` is raised, and the state
  machine's Retry on it backs off with jitter and runs Launch again (which reuses an
  instance already launched for the attempt, so nothing is launched twice).

:meth:`Pacer.install` hooks ``before-send`` of the EC2 client's RunInstances, so the
slot is taken for every request that leaves: instance-type fallbacks and botocore's own
retries included.
A CloudFormation builder's CreateStack takes one slot with :meth:`Pacer.take`, as the
build stack launches its instance from the same bucket.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from amiforge.aws.dynamo import value
from amiforge.aws.errors import ClientError, aws_call, error_code, translate
from amiforge.core import ratelimit
from amiforge.errors import LaunchThrottled

LIMITS_PARTITION = "#limits"      # the catalog's ``recipe`` key; recipe names start [a-z0-9]
RUN_INSTANCES_KEY = "ec2:RunInstances"
MAX_WAIT_SECONDS = 5.0
COMPARE_AND_SET_ATTEMPTS = 8
_HOOK_ID = "amiforge-launch-pacing"



@dataclass
class Pacer:
    dynamodb: Any
    table: str
    burst: int = ratelimit.DEFAULT_LAUNCH_BURST
    per_second: float = ratelimit.DEFAULT_LAUNCH_PER_SECOND
    max_wait: float = MAX_WAIT_SECONDS
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    waited: float = 0.0  # seconds this pacer has waited for slots

    def __post_init__(self) -> None:
        ratelimit.check_limits(self.burst, self.per_second)

    def take(self) -> float:
        """Reserve the next RunInstances slot and wait for it; returns the seconds waited."""
        for _ in range(COMPARE_AND_SET_ATTEMPTS):
            stored = self._read()
            reservation = ratelimit.reserve(stored, self.clock(), burst=self.burst,
                                            per_second=self.per_second)
            if reservation.wait > self.max_wait:
                raise LaunchThrottled(
                    f"RunInstances budget ({self.burst} burst, {self.per_second:g}/s) is "
                    f"spent for the next {reservation.wait:.1f}s; backing off")
            if self._swap(stored, reservation.new_tat):
                if reservation.wait > 0:
                    self.sleep(reservation.wait)
                    self.waited += reservation.wait
                return reservation.wait
        raise LaunchThrottled(f"RunInstances budget contended by {COMPARE_AND_SET_ATTEMPTS} "
                              "concurrent launches; backing off")

    def install(self, ec2: Any) -> None:
        """Take a slot before every RunInstances request ``ec2`` sends. One pacer per
        client: installing another (the next launch of a warm Lambda) replaces it."""
        ec2.meta.events.unregister("before-send.ec2.RunInstances", unique_id=_HOOK_ID)
        ec2.meta.events.register("before-send.ec2.RunInstances", self._before_send,
                                 unique_id=_HOOK_ID)

    def _before_send(self, **_: Any) -> None:
        self.take()  # returning None lets botocore send the request

    # -- the item ------------------------------------------------------------------------

    def _key(self) -> dict[str, Any]:
        return {"recipe": value(LIMITS_PARTITION), "build_id": value(RUN_INSTANCES_KEY)}

    def _read(self) -> float | None:
        with aws_call("GetItem"):
            item = self.dynamodb.get_item(TableName=self.table, Key=self._key(),
                                          ConsistentRead=True).get("Item")
        return float(item["tat"]["N"]) if item and "tat" in item else None

    def _swap(self, expected: float | None, new_tat: float) -> bool:
        """Store ``new_tat`` if the item still holds ``expected``; False if someone won."""
        condition = "attribute_not_exists(tat)" if expected is None else "tat = :expected"
        values = {":tat": {"N": repr(new_tat)}}
        if expected is not None:
            values[":expected"] = {"N": repr(expected)}
        try:
            self.dynamodb.update_item(
                TableName=self.table, Key=self._key(), UpdateExpression="SET tat = :tat",
                ConditionExpression=condition, ExpressionAttributeValues=values)
        except ClientError as err:
            if error_code(err) == "ConditionalCheckFailedException":
                return False
            raise translate(err, "UpdateItem") from err
        return True
