"""The git trigger stack option on the local cloud (issue 22): the stack deploys with it,
its publisher role is the stack's PublisherPolicy and CodeBuild's own needs, a push to
the branch (and only that branch) matches its rule, and the commands of the buildspec
the deployed project holds publish a commit's recipes to the stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.e2e.conftest import E2E_STACK_PARAMETERS

from amiforge.deploy import stack as stack_api
from amiforge.localcloud import events
from amiforge.ops.connect import connect

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
EVENT = ROOT / "tests" / "events" / "aws" / "codecommit_push.json"
STACK = "amiforge-gittrigger"
REPOSITORY = "golden-recipes"
CONNECTION = ("arn:aws:codeconnections:us-east-1:123456789012:connection/"
              "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b")
PARAMETERS = {**E2E_STACK_PARAMETERS, "BaseParameterPrefixes": "",
              "GitTriggerRepository": REPOSITORY}


@pytest.fixture(scope="module")
def deployed(local_cloud: Any, aws: Any) -> Any:
    """The stack without the trigger (the default), then updated to have it, as a user
    turns it on: ``amiforge deploy -p GitTriggerRepository=...``."""
    without = stack_api.deploy(aws, STACK, {**PARAMETERS, "GitTriggerRepository": ""})
    assert "GitTriggerProjectName" not in without
    assert f"{STACK}-git-trigger" not in aws.client("codebuild").list_projects()["projects"]
    outputs = stack_api.deploy(aws, STACK, PARAMETERS)
    yield outputs
    stack_api.destroy(aws, STACK)


def project(aws: Any, name: str) -> dict:
    [found] = aws.client("codebuild").batch_get_projects(names=[name])["projects"]
    return dict(found)


def role_of(aws: Any, role_arn: str) -> tuple[list[str], dict[str, dict]]:
    iam = aws.client("iam")
    name = role_arn.rsplit("/", 1)[1]
    attached = [p["PolicyArn"] for p in
                iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]]
    inline = {}
    for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
        # boto3 decodes the document AWS sends; moto's arrives as the JSON text.
        inline[policy] = json.loads(document) if isinstance(document, str) else document
    return attached, inline


def put_event(local_cloud: Any, repository: str = REPOSITORY, **detail: str) -> None:
    """CodeCommit's event for a push to ``repository`` (tests/events/aws/codecommit_push.json,
    changed by ``detail``), emitted on the local cloud's default bus as CodeCommit would."""
    event = json.loads(EVENT.read_text().replace("REPOSITORY", repository)
                       .replace("us-east-1", local_cloud.region))
    event["detail"].update(detail)
    events.put_event(event["account"], local_cloud.region, event["source"],
                     event["detail-type"], event["detail"], event["resources"])


def test_the_stack_deploys_with_a_codecommit_trigger(deployed: dict, aws: Any,
                                                     local_cloud: Any) -> None:
    name = deployed["GitTriggerProjectName"]
    assert name == f"{STACK}-git-trigger"
    built = project(aws, name)
    assert built["source"]["type"] == "CODECOMMIT"
    assert built["source"]["location"].endswith(f"/v1/repos/{REPOSITORY}")
    assert built["sourceVersion"] == "refs/heads/main"
    variables = {v["name"]: v["value"] for v in built["environment"]["environmentVariables"]}
    assert variables["AMIFORGE_STACK"] == STACK and variables["AMIFORGE_RECIPES"] == "recipes"

    # The publisher: PublisherPolicy, and of its own only its logs and the repository.
    attached, inline = role_of(aws, built["serviceRole"])
    assert attached == [deployed["PublisherPolicyArn"]]
    statements = inline["git-trigger"]["Statement"]
    assert sorted(a for s in statements for a in
                  (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])) == [
        "codecommit:GitPull", "logs:CreateLogStream", "logs:PutLogEvents"]

    # A push to the branch starts a build of the pushed commit; another branch, a
    # deletion or another repository does not. (The local cloud delivers the rule's
    # matches to CodeBuild as AWS does: the input is StartBuild's parameters.)
    codebuild = aws.client("codebuild")

    def builds_after(**detail: str) -> list[str]:
        before = set(codebuild.list_builds_for_project(projectName=name)["ids"])
        put_event(local_cloud, **detail)
        after = codebuild.list_builds_for_project(projectName=name)["ids"]
        return [b for b in after if b not in before]

    [started] = builds_after(commitId="5ab1c3f0e9d87a6b5c4d3e2f1a0b9c8d7e6f5a4b")
    [build] = codebuild.batch_get_builds(ids=[started])["builds"]
    assert build["sourceVersion"] == "5ab1c3f0e9d87a6b5c4d3e2f1a0b9c8d7e6f5a4b"
    assert len(builds_after(event="referenceCreated")) == 1
    assert builds_after(referenceName="dev", referenceFullName="refs/heads/dev") == []
    assert builds_after(event="referenceDeleted") == []
    assert builds_after(repository="another-repository") == []


def wheel_name() -> str:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    return f"amiforge-{version}-py3-none-any.whl"


def test_the_deployed_buildspec_publishes_the_pushed_commit(
        deployed: dict, aws: Any, local_cloud: Any, tmp_path: Path) -> None:
    built = project(aws, deployed["GitTriggerProjectName"])
    spec = yaml.safe_load(built["source"]["buildspec"])
    install, build = spec["phases"]["install"]["commands"], spec["phases"]["build"]["commands"]
    variables = {v["name"]: v["value"] for v in built["environment"]["environmentVariables"]}
    # The install step installs the wheel `make dist` builds (committed under tools/);
    # here amiforge is installed already, so the build phase runs as it would after it.
    assert install == ['pip install --quiet "$AMIFORGE_PACKAGE"']
    assert variables["AMIFORGE_PACKAGE"] == f"./tools/{wheel_name()}"

    # The checkout CodeBuild makes: the repository at the pushed commit, recipes/ in it.
    repo = tmp_path / "checkout"
    (repo / "recipes" / "scripts").mkdir(parents=True)
    (repo / "recipes" / "scripts" / "pushed.sh").write_text("#!/bin/bash\necho pushed\n")
    (repo / "recipes" / "pushed.yaml").write_text(
        "name: pushed\nbase:\n  ssm_parameter: /aws/service/ami-amazon-linux-latest/"
        "al2023-ami-kernel-6.1-x86_64\nbuild:\n  user_data: scripts/pushed.sh\n")
    env = {**os.environ, **variables, "AWS_ENDPOINT_URL": local_cloud.endpoint,
           "AWS_REGION": local_cloud.region, "AWS_DEFAULT_REGION": local_cloud.region,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for args in (["init", "-q", "-b", "main"], ["config", "user.email", "ci@example.com"],
                 ["config", "user.name", "ci"], ["add", "-A"], ["commit", "-qm", "push"]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True,
                       timeout=60)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                          text=True, check=True).stdout.strip()

    outputs = []
    for command in build:
        proc = subprocess.run(["bash", "-ec", command], cwd=repo, env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, (command, proc.stderr)
        assert "Traceback" not in proc.stderr
        outputs.append(proc.stdout)
    published = json.loads(outputs[-1])
    assert [r["recipe"] for r in published["recipes"]] == ["pushed"]
    record = connect(aws, STACK).store.current("pushed")
    assert record is not None and record["git_commit"] == head


def test_a_connection_trigger_replaces_the_rule_with_a_webhook(deployed: dict, aws: Any) -> None:
    stack_api.deploy(aws, STACK, {**PARAMETERS, "GitTriggerSource": "GITHUB",
                                  "GitTriggerRepository":
                                      "https://github.com/example/golden-recipes.git",
                                  "GitTriggerConnectionArn": CONNECTION,
                                  "GitTriggerBranch": "release"})
    built = project(aws, f"{STACK}-git-trigger")
    assert built["source"]["type"] == "GITHUB"
    assert built["source"]["auth"] == {"type": "CODECONNECTIONS", "resource": CONNECTION}
    assert built["webhook"]["filterGroups"] == [[
        {"type": "EVENT", "pattern": "PUSH"},
        {"type": "HEAD_REF", "pattern": "^refs/heads/release$"}]]
    rules = [r for r in aws.client("events").list_rules()["Rules"]
             if r["Name"].startswith(STACK) and "codecommit" in r.get("EventPattern", "")]
    assert rules == []
    _attached, inline = role_of(aws, built["serviceRole"])
    [_logs, connection] = inline["git-trigger"]["Statement"]
    assert connection["Action"] == ["codeconnections:GetConnectionToken",
                                    "codeconnections:GetConnection"]
    assert connection["Resource"] == CONNECTION
