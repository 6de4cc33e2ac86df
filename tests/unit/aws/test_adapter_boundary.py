"""The adapter boundary: AWS is called from aws/ only (and the local cloud, which *is*
AWS here).

Outside ``src/amiforge/aws/`` and ``src/amiforge/localcloud/``:

1. nothing imports boto3, and botocore only where :data:`ALLOWED_BOTOCORE` says why (the
   two edges that turn transport failures into one line or a Lambda error type, and the
   completion helper's short timeouts);
2. nothing calls an AWS operation: no call of a method named like an operation of a
   service amiforge uses (snake_case names from botocore's own service models, plus
   ``get_paginator``/``get_waiter``) unless it is a function of an ``amiforge.aws``
   module (``cfn_api.delete(...)``) or one of :data:`ALLOWED_CALLS`, amiforge's own
   methods that happen to share an operation's name.

So a step that writes ``env.client("ec2").describe_images(...)``, or hands a client to
its own helper that calls one, fails here; the call belongs in an adapter, where its
errors are translated once and the IAM coverage test (tests/unit/deploy) reads it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import botocore.session
import pytest
from botocore import xform_name

import amiforge

PACKAGE = Path(amiforge.__file__).parent
INSIDE = ("aws/", "localcloud/")
# The services amiforge calls (deploy/template.yaml's IAM, the CLI) and the local cloud.
SERVICES = ("autoscaling", "cloudformation", "dynamodb", "ec2", "events", "iam", "lambda",
            "logs", "s3", "sns", "sqs", "ssm", "stepfunctions", "sts")

# (module, imported module, name) -> why it is needed outside aws/.
ALLOWED_BOTOCORE: dict[tuple[str, str, str], str] = {
    **{("cli/command.py", "botocore.exceptions", name): "the CLI's edge: one line, exit code"
       for name in ("BotoCoreError", "ClientError", "EndpointConnectionError",
                    "NoCredentialsError", "NoRegionError")},
    ("cli/command.py", "botocore.parsers", "ResponseParserError"): "the CLI's edge",
    **{("handlers/runtime.py", "botocore.exceptions", name): "a transport failure that "
       "outlived botocore's retries becomes TransientAwsError for Step Functions' Retry"
       for name in ("ConnectionError", "HTTPClientError")},
    ("handlers/runtime.py", "botocore.parsers", "ResponseParserError"): "as above",
    ("cli/complete.py", "botocore.config", "Config"): "shell completion must answer fast: "
                                                      "short timeouts, one attempt",
}
# (module, called expression) -> what it is.
ALLOWED_CALLS: dict[tuple[str, str], str] = {
    ("cli/main.py", "self.list_commands"): "click.Group.list_commands",
    ("ops/publish.py", "env.store.publish"): "RecipeStore.publish (aws/recipe_store.py)",
    ("ops/uninstall.py", "stack_api.delete_table"): "deploy/stack.py over aws/tables.py",
    ("ops/uninstall.py", "stack_api.delete_bucket"): "deploy/stack.py over aws/artifacts.py",
}


def operation_names() -> frozenset[str]:
    session = botocore.session.get_session()
    names = {xform_name(op) for service in SERVICES
             for op in session.get_service_model(service).operation_names}
    return frozenset(names | {"get_paginator", "get_waiter"})


def _aws_aliases(tree: ast.AST) -> set[str]:
    """Names bound to amiforge.aws modules in this file (``from amiforge.aws import ec2
    as ec2_api``, ``import amiforge.aws.catalog as catalog``)."""
    aliases: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "amiforge.aws":
            aliases.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.Import):
            aliases.update(a.asname for a in node.names
                           if a.asname and a.name.startswith("amiforge.aws."))
    return aliases


def violations(relative: str, source: str, operations: frozenset[str]) -> list[str]:
    tree = ast.parse(source)
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "boto3" or alias.name.split(".")[0] == "botocore":
                    found.append(f"{relative}:{node.lineno}: imports {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            root = node.module.split(".")[0]
            for alias in node.names:
                if root == "boto3" or (root == "botocore" and (
                        relative, node.module, alias.name) not in ALLOWED_BOTOCORE):
                    found.append(f"{relative}:{node.lineno}: imports {alias.name} from "
                                 f"{node.module}")
    aliases = _aws_aliases(tree)
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in operations:
            continue
        receiver = node.func.value
        if isinstance(receiver, ast.Name) and receiver.id in aliases:
            continue  # a function of an aws/ module
        called = ast.unparse(node.func)
        if (relative, called) not in ALLOWED_CALLS:
            found.append(f"{relative}:{node.lineno}: calls the AWS operation "
                         f"{node.func.attr} ({called})")
    return found


def modules_outside() -> list[tuple[str, Path]]:
    return [(path.relative_to(PACKAGE).as_posix(), path)
            for path in sorted(PACKAGE.rglob("*.py"))
            if not path.relative_to(PACKAGE).as_posix().startswith(INSIDE)]


def test_no_module_outside_aws_imports_boto3_or_calls_an_aws_operation() -> None:
    operations = operation_names()
    found = [v for relative, path in modules_outside()
             for v in violations(relative, path.read_text(), operations)]
    assert found == []


def test_every_allowance_is_still_needed() -> None:
    """An allowance nothing uses any more is removed, so the list stays exact."""
    sources = {relative: path.read_text() for relative, path in modules_outside()}
    for module, imported, name in ALLOWED_BOTOCORE:
        tree = ast.parse(sources[module])
        assert any(isinstance(n, ast.ImportFrom) and n.module == imported
                   and name in {a.name for a in n.names} for n in ast.walk(tree)), \
            (module, imported, name)
    for module, called in ALLOWED_CALLS:
        assert called + "(" in sources[module], (module, called)


@pytest.mark.parametrize(("source", "expected"), [
    ("import boto3\n", "imports boto3"),
    ("from botocore.exceptions import ClientError\n", "imports ClientError"),
    ("def f(env):\n    return env.client('ec2').describe_images(Owners=['self'])\n",
     "calls the AWS operation describe_images"),
    ("def f(ec2):\n    return ec2.get_paginator('describe_instances')\n",
     "calls the AWS operation get_paginator"),
    ("def f(env):\n    env.client('stepfunctions').stop_execution(executionArn='x')\n",
     "calls the AWS operation stop_execution"),
])
def test_the_check_finds_a_direct_call(source: str, expected: str) -> None:
    found = violations("steps/example.py", source, operation_names())
    assert len(found) == 1 and expected in found[0]


def test_a_function_of_an_aws_module_is_not_a_direct_call() -> None:
    source = ("from amiforge.aws import stepfunctions as sfn_api\n"
              "def f(env):\n    sfn_api.stop(env.client('stepfunctions'), 'arn', cause='x')\n"
              "    sfn_api.describe_execution\n")
    assert violations("steps/example.py", source, operation_names()) == []
