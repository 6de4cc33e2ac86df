"""AwaitRefresh on the local cloud, waiting by event: ``park`` notes the token (one
``#refresh-waits`` marker per running refresh) and answers at once if every refresh has
ended; AWS's refresh event (``on_refresh_event``) or the refresh check
(``check_refreshes``, the fallback for a lost event and for groups in other regions)
answer it later with the outcome. An event is never trusted: one naming another group
or another refresh resumes nothing, and one claiming "Succeeded" for a refresh still
running resumes nothing either. A failed refresh answers ``failed`` with AWS's reason;
past the timeout, ``time_out`` rolls a running refresh back. Real executions wait on
the tokens."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.functional.steps.rollout_fixtures import (
    consumer_group,
    consumer_template,
    registered,
    rollout_recipe,
)
from tests.helpers import COPY, HOME, Publish, TaskTokens, unique

from amiforge.aws import autoscaling as asg_api
from amiforge.aws.refresh_waits import RefreshWait, RefreshWaitList
from amiforge.aws.session import AwsContext
from amiforge.localcloud.testing import wait_for
from amiforge.steps.env import StepEnv
from amiforge.steps.refresh_wait import check_refreshes, handle, on_refresh_event, park
from amiforge.steps.rollout import roll_out

SUCCEEDED = "EC2 Auto Scaling Instance Refresh Succeeded"


@pytest.fixture(scope="module")
def tokens(aws: AwsContext) -> Iterator[TaskTokens]:
    machine = TaskTokens(aws)
    yield machine
    machine.close()


def rolling(env: StepEnv, published: Publish, directive: str) -> dict[str, Any]:
    """A second build's state right after RollOut, its group's refresh running."""
    template_name, group = unique("lt"), unique("asg")
    recipe = rollout_recipe(published, template_name, group)
    old = registered(env, recipe)["result"]["image_id"]
    _, template_id = consumer_template(env, old, name=template_name)
    consumer_group(env, template_id, directive, name=group)
    state = registered(env, recipe)
    state["rollout"] = roll_out(state, env)
    assert state["rollout"]["outcome"] == "running"
    return state


def the_refresh(state: dict[str, Any]) -> dict[str, Any]:
    [refresh] = state["rollout"]["refreshes"]
    return dict(refresh)


def status(env: StepEnv, refresh: dict[str, Any]) -> str:
    found = asg_api.refreshes(env.client("autoscaling"), refresh["auto_scaling_group"],
                              refresh["refresh_id"])
    return found[0].status if found else "Missing"


def ended(env: StepEnv, refresh: dict[str, Any]) -> None:
    wait_for(lambda: status(env, refresh) not in ("Pending", "InProgress"), timeout=20,
             what=f"refresh {refresh['refresh_id']} to end")


def event(refresh: dict[str, Any], detail_type: str = SUCCEEDED,
          region: str = HOME, **detail: str) -> dict[str, Any]:
    return {"detail-type": detail_type, "source": "aws.autoscaling", "region": region,
            "detail": {"InstanceRefreshId": refresh["refresh_id"],
                       "AutoScalingGroupName": refresh["auto_scaling_group"], **detail}}


def markers(env: StepEnv, build_id: str) -> list[str]:
    return sorted(w.key for w in RefreshWaitList(env.client("dynamodb"),
                                                 env.catalog_table).all()
                  if w.build_id == build_id)


def parked(state: dict[str, Any], token: str) -> dict[str, Any]:
    return {"token": token, "build": state["build"], "rollout": state["rollout"]}


def test_the_refresh_event_resumes_the_waiting_execution_and_forgeries_do_not(
        env: StepEnv, published: Publish, tokens: TaskTokens) -> None:
    state = rolling(env, published, "slow 1.5")
    refresh, build_id = the_refresh(state), state["build"]["build_id"]
    execution, token = tokens.wait()

    assert park(parked(state, token), env) == {"outcome": "running", "source": "poll"}
    assert markers(env, build_id) == [
        f"{HOME}#{refresh['auto_scaling_group']}#{refresh['refresh_id']}"]
    # A forged "Succeeded" while the refresh still runs: read again, still running.
    assert on_refresh_event(event(refresh), env) == {"outcome": "running", "source": "event"}
    assert tokens.status(execution) == "RUNNING"

    ended(env, refresh)
    # Events about another group, another refresh, another region: nobody waits for them.
    ignored = {"ignored": "no build waits for this refresh"}
    assert on_refresh_event(event({**refresh, "auto_scaling_group": unique("asg")}),
                            env) == ignored
    assert on_refresh_event(event({**refresh, "refresh_id": unique("r")}), env) == ignored
    assert on_refresh_event(event(refresh, region="eu-west-1"), env) == ignored
    assert on_refresh_event(event(refresh, "EC2 Auto Scaling Instance Refresh Started"),
                            env) == {"ignored": "not a final refresh event"}
    assert tokens.status(execution) == "RUNNING"

    assert handle(event(refresh), env) == {"resumed": True, "outcome": "succeeded",
                                           "source": "event"}
    status_, output = tokens.outcome(execution)
    assert status_ == "SUCCEEDED"
    assert output["outcome"] == "succeeded"
    assert output["refreshes"][0]["status"] == "Successful"
    assert markers(env, build_id) == []
    record = env.catalog.get(state["build"]["recipe"], build_id)
    assert record["rollout"]["outcome"] == "succeeded"
    # Delivered twice (EventBridge is at least once): no build waits any more.
    assert on_refresh_event(event(refresh), env) == ignored


def test_a_lost_event_is_caught_by_the_check(env: StepEnv, published: Publish,
                                             tokens: TaskTokens) -> None:
    state = rolling(env, published, "slow 1")
    refresh = the_refresh(state)
    execution, token = tokens.wait()
    assert park(parked(state, token), env)["outcome"] == "running"

    ended(env, refresh)  # its event went nowhere: only the check can tell
    report = check_refreshes(env)

    assert state["build"]["build_id"] in report["resumed"]
    assert tokens.outcome(execution)[1]["outcome"] == "succeeded"
    assert markers(env, state["build"]["build_id"]) == []


def test_a_failed_refresh_answers_failed_with_aws_reason(
        env: StepEnv, published: Publish, tokens: TaskTokens) -> None:
    state = rolling(env, published, "fail slow 0.2")
    refresh = the_refresh(state)
    ended(env, refresh)
    execution, token = tokens.wait()

    # Ended before the token was parked: answered at once.
    assert park(parked(state, token), env) == {"resumed": True, "outcome": "failed",
                                               "source": "poll"}
    output = tokens.outcome(execution)[1]
    assert output["outcome"] == "failed"
    assert output["reason"].startswith(
        f"instance refresh {refresh['refresh_id']} of Auto Scaling group "
        f"{refresh['auto_scaling_group']} in {HOME} ended RollbackSuccessful: ")
    assert "health checks" in output["reason"]


def test_past_the_timeout_a_running_refresh_is_rolled_back(
        env: StepEnv, published: Publish) -> None:
    state = rolling(env, published, "slow 3")
    refresh = the_refresh(state)

    rollout = handle({"timed_out": True, "build": state["build"],
                      "rollout": state["rollout"]}, env)

    assert rollout["outcome"] == "failed"
    assert rollout["refreshes"][0]["reason"] == "timed out: amiforge rolled it back"
    assert "timed out: amiforge rolled it back" in rollout["reason"]
    ended(env, refresh)
    assert status(env, refresh) in ("RollbackSuccessful", "Cancelled")


def test_the_check_drops_the_markers_of_a_wait_long_timed_out(env: StepEnv) -> None:
    waits = RefreshWaitList(env.client("dynamodb"), env.catalog_table)
    group, refresh_id = unique("asg"), unique("r")
    rollout = {"outcome": "running", "timeout_seconds": 60, "refreshes": [
        {"region": HOME, "auto_scaling_group": group, "refresh_id": refresh_id,
         "outcome": "running"}]}
    waits.add(RefreshWait(recipe="web", build_id=unique("web"), region=HOME,
                          auto_scaling_group=group, refresh_id=refresh_id, token="gone",
                          since="2026-01-01T10:00:00.000000Z", deadline_seconds=60,
                          rollout=rollout))

    report = check_refreshes(env)

    assert report["dropped"] >= 1
    assert waits.get(HOME, group, refresh_id) is None


def test_a_group_in_another_region_is_followed_by_the_check(
        env: StepEnv, published: Publish, tokens: TaskTokens) -> None:
    """Its events arrive in its own region, where the stack has no rule: the check reads
    the refresh there."""
    template_name, group = unique("lt"), unique("asg")
    recipe = published(image="regions: [eu-west-1]\n", extra=(
        f"release:\n  launch_templates: [{{launch_template: {template_name}, "
        f"region: {COPY}}}]\n  instance_refresh: [{{auto_scaling_group: {group}, "
        f"region: {COPY}, min_healthy_percentage: 50, instance_warmup_seconds: 0}}]\n"))
    old = registered(env, recipe)["result"]["images"][COPY]
    ec2, autoscaling = env.client("ec2", COPY), env.client("autoscaling", COPY)
    template_id = ec2.create_launch_template(
        LaunchTemplateName=template_name, LaunchTemplateData={"ImageId": old},
        TagSpecifications=[{"ResourceType": "launch-template", "Tags": [
            {"Key": "amiforge:rollout", "Value": env.stack_name}]}],
    )["LaunchTemplate"]["LaunchTemplateId"]
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=group, MinSize=1, MaxSize=1, DesiredCapacity=1,
        AvailabilityZones=[f"{COPY}a"],
        LaunchTemplate={"LaunchTemplateId": template_id, "Version": "$Default"},
        Tags=[{"Key": "amiforge:rollout", "Value": env.stack_name, "PropagateAtLaunch": False},
              {"Key": "amiforge-sim:refresh", "Value": "slow 1", "PropagateAtLaunch": False}])
    state = registered(env, recipe)
    state["rollout"] = roll_out(state, env)
    [refresh] = state["rollout"]["refreshes"]
    assert refresh["region"] == COPY
    execution, token = tokens.wait()
    assert park(parked(state, token), env)["outcome"] == "running"
    assert markers(env, state["build"]["build_id"]) == [
        f"{COPY}#{group}#{refresh['refresh_id']}"]

    wait_for(lambda: asg_api.refreshes(autoscaling, group, refresh["refresh_id"])[0].status
             == "Successful", timeout=20, what="the refresh in eu-west-1 to end")
    report = check_refreshes(env)

    assert state["build"]["build_id"] in report["resumed"]
    assert tokens.outcome(execution)[1]["outcome"] == "succeeded"
