"""The subprocess Lambda runtime: results, errors, timeouts, isolation, logs, async."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from amiforge.localcloud.testing import create_function, wait_for


@pytest.fixture
def lam(local_cloud: Any) -> Any:
    return boto3.client("lambda")


@pytest.fixture
def iam(local_cloud: Any) -> Any:
    return boto3.client("iam")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def invoke(lam: Any, name: str, event: Any, **kwargs: Any) -> tuple[dict, Any]:
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event), **kwargs)
    return response, json.loads(response["Payload"].read())


def test_function_returns_its_result_and_sees_its_environment(lam: Any, iam: Any) -> None:
    name = unique("echo")
    create_function(lam, iam, name, """
        import os
        def handler(event, context):
            return {"event": event, "colour": os.environ["COLOUR"],
                    "function": context.function_name,
                    "memory": context.memory_limit_in_mb,
                    "remaining": context.get_remaining_time_in_millis(),
                    "request_id": context.aws_request_id,
                    "arn": context.invoked_function_arn,
                    "endpoint": os.environ["AWS_ENDPOINT_URL"]}
        """, env={"COLOUR": "teal"}, timeout=7)

    response, payload = invoke(lam, name, {"n": 1})

    assert "FunctionError" not in response
    assert payload["event"] == {"n": 1}
    assert payload["colour"] == "teal"
    assert payload["function"] == name
    assert payload["memory"] == 128
    assert 0 < payload["remaining"] <= 7000
    assert len(payload["request_id"]) == 36
    assert payload["arn"].endswith(f":function:{name}")
    assert payload["endpoint"].startswith("http://127.0.0.1:")


def test_runtime_boto3_reaches_the_emulator(lam: Any, iam: Any, local_cloud: Any) -> None:
    name = unique("ssm-writer")
    parameter = f"/localcloud-test/{name}"
    create_function(lam, iam, name, """
        import boto3
        ssm = boto3.client("ssm")  # module level, as amiforge's handlers do
        def handler(event, context):
            ssm.put_parameter(Name=event["name"], Value="written", Type="String")
            return "ok"
        """)

    response, payload = invoke(lam, name, {"name": parameter})

    assert payload == "ok", payload
    value = boto3.client("ssm").get_parameter(Name=parameter)["Parameter"]["Value"]
    assert value == "written"


def test_raised_exception_is_a_function_error_with_its_class_name(lam: Any, iam: Any) -> None:
    name = unique("raiser")
    create_function(lam, iam, name, """
        class BuildFailed(Exception):
            pass
        def handler(event, context):
            raise BuildFailed("recipe web: console says failure exit=3")
        """)

    response, payload = invoke(lam, name, {}, LogType="Tail")

    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "BuildFailed"
    assert payload["errorMessage"] == "recipe web: console says failure exit=3"
    assert any("raise BuildFailed" in frame for frame in payload["stackTrace"])
    tail = base64.b64decode(response["LogResult"]).decode()
    assert "[ERROR] BuildFailed: recipe web: console says failure exit=3" in tail


def test_slow_function_is_cut_at_its_timeout(lam: Any, iam: Any) -> None:
    name = unique("sleeper")
    create_function(lam, iam, name, """
        import time
        def handler(event, context):
            time.sleep(30)
        """, timeout=1)

    started = time.monotonic()
    response, payload = invoke(lam, name, {})
    elapsed = time.monotonic() - started

    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in payload["errorMessage"]
    assert elapsed < 30  # not cut, the invoke would have lasted the handler's 30 s


def test_dependency_missing_from_the_zip_fails_to_import(lam: Any, iam: Any) -> None:
    # `requests` is installed where the tests run, but is neither in the zip nor in
    # the Lambda Python runtime: AWS would fail this import, so must the local cloud.
    name = unique("forgetful")
    create_function(lam, iam, name, """
        import requests
        def handler(event, context):
            return requests.__version__
        """)

    response, payload = invoke(lam, name, {})

    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.ImportModuleError"
    assert payload["errorMessage"] == (
        "Unable to import module 'app': No module named 'requests'")


def test_bundled_dependency_is_importable(lam: Any, iam: Any) -> None:
    name = unique("bundled")
    create_function(lam, iam, name, {
        "app.py": "import helperlib\ndef handler(event, context):\n"
                  "    return helperlib.double(event['n'])\n",
        "helperlib/__init__.py": "def double(n):\n    return 2 * n\n",
    })

    _, payload = invoke(lam, name, {"n": 21})

    assert payload == 42


def test_missing_handler_and_unserialisable_result(lam: Any, iam: Any) -> None:
    source = """
        def handler(event, context):
            return {1, 2}
        """
    name = unique("odd")
    create_function(lam, iam, name, source)
    create_function(lam, iam, name + "-nohandler", source, handler="app.missing")

    _, marshal = invoke(lam, name, {})
    _, missing = invoke(lam, name + "-nohandler", {})

    assert marshal["errorType"] == "Runtime.MarshalError"
    assert missing["errorType"] == "Runtime.HandlerNotFound"
    assert missing["errorMessage"] == "Handler 'missing' missing on module 'app'"


def test_output_goes_to_the_function_log_group(lam: Any, iam: Any) -> None:
    name = unique("chatty")
    create_function(lam, iam, name, """
        def handler(event, context):
            print("building recipe", event["recipe"])
            return None
        """)

    invoke(lam, name, {"recipe": "web"})

    logs = boto3.client("logs")
    events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
    messages = [e["message"] for e in events]
    assert "building recipe web" in messages
    assert any(m.startswith("START RequestId:") for m in messages)
    assert any(m.startswith("REPORT RequestId:") for m in messages)


def test_async_invoke_returns_at_once_and_runs_later(lam: Any, iam: Any,
                                                     tmp_path: Path) -> None:
    name = unique("later")
    marker = tmp_path / "ran"
    create_function(lam, iam, name, """
        import time
        def handler(event, context):
            time.sleep(1)
            open(event["marker"], "w").write("done")
        """)

    response = lam.invoke(FunctionName=name, InvocationType="Event",
                          Payload=json.dumps({"marker": str(marker)}))

    assert response["StatusCode"] == 202
    # Had the invoke waited for the function, its marker would be written by now.
    assert not marker.exists()
    wait_for(marker.exists, timeout=10, what="the async invocation")
    assert marker.read_text() == "done"


def test_environment_stays_warm_until_a_timeout_resets_it(lam: Any, iam: Any) -> None:
    name = unique("warm")
    create_function(lam, iam, name, """
        import os, time
        invocations = 0  # module state lives as long as the execution environment
        def handler(event, context):
            global invocations
            invocations += 1
            if event.get("sleep"):
                time.sleep(event["sleep"])
            return {"invocations": invocations, "pid": os.getpid()}
        """, timeout=1)

    _, first = invoke(lam, name, {})
    _, second = invoke(lam, name, {})
    response, _ = invoke(lam, name, {"sleep": 5})
    _, after_timeout = invoke(lam, name, {})

    assert first["invocations"] == 1
    assert second == {"invocations": 2, "pid": first["pid"]}
    assert response["FunctionError"] == "Unhandled"
    assert after_timeout["invocations"] == 1
    assert after_timeout["pid"] != first["pid"]


def test_idle_environments_are_reaped(lam: Any, iam: Any, local_cloud: Any) -> None:
    name = unique("reaped")
    create_function(lam, iam, name, """
        import os
        def handler(event, context):
            return {"pid": os.getpid()}
        """)
    _, first = invoke(lam, name, {})
    runtime = local_cloud.runtime
    assert runtime.stats()["idle"] >= 1  # kept warm for the next invocation
    before = runtime.idle_seconds
    runtime.idle_seconds = 0.0  # every idle environment is now past its time
    try:
        assert runtime.reap_idle() >= 1
    finally:
        runtime.idle_seconds = before
    wait_for(lambda: not Path(f"/proc/{first['pid']}").exists(), timeout=10,
             what="the reaped environment's process to end")
    _, second = invoke(lam, name, {})  # a cold start in a new environment
    assert second["pid"] != first["pid"]


def test_environments_fork_from_the_preinitialised_parent_with_the_same_isolation(
        lam: Any, iam: Any, local_cloud: Any) -> None:
    import os

    os.environ["AMIFORGE_HOST_ONLY"] = "leak?"
    try:
        name = unique("forked")
        create_function(lam, iam, name, """
            import os, sys
            def handler(event, context):
                import boto3
                return {"ppid": os.getppid(), "path0": sys.path[0],
                        "site": [p for p in sys.path if "site-packages" in p],
                        "host": os.environ.get("AMIFORGE_HOST_ONLY"),
                        "fn": os.environ["AWS_LAMBDA_FUNCTION_NAME"],
                        "sid": os.getsid(0) == os.getpid(),
                        "boto3": boto3.__file__}
            """)
        _, seen = invoke(lam, name, {})
    finally:
        del os.environ["AMIFORGE_HOST_ONLY"]
    forker = local_cloud.runtime._forker
    assert forker is not None and seen["ppid"] == forker.proc.pid
    assert seen["path0"].startswith(str(local_cloud.runtime.workdir / "code"))
    assert seen["site"] == [] and seen["host"] is None and seen["fn"] == name
    assert seen["sid"]  # its own session: a timeout kills its children too
    assert seen["boto3"].startswith(str(local_cloud.runtime.runtime_dir))


def test_a_bundle_with_its_own_boto3_gets_a_fresh_interpreter(lam: Any, iam: Any,
                                                              local_cloud: Any) -> None:
    import os

    name = unique("ownboto")
    create_function(lam, iam, name, {"app.py": """
        import os
        def handler(event, context):
            import boto3
            return {"ppid": os.getppid(), "boto3": boto3.VERSION}
        """, "boto3/__init__.py": "VERSION = 'vendored'\n"})
    _, seen = invoke(lam, name, {})
    assert seen["boto3"] == "vendored"  # the bundle's copy, first on the path
    assert seen["ppid"] == os.getpid()  # not forked from a parent that imported boto3


def test_forked_environments_start_with_botocore_models_parsed(lam: Any, iam: Any) -> None:
    source = """
        import os
        import botocore.session
        def handler(event, context):
            if event.get("data_path"):
                os.environ["AWS_DATA_PATH"] = event["data_path"]
            loader = botocore.session.get_session().get_component("data_loader")
            cached = any("ec2" in key for key in loader._cache)
            import boto3
            region = boto3.client("ec2").meta.region_name  # a client still works
            return {"cached": cached, "region": region}
        """
    name = unique("models")
    create_function(lam, iam, name, source)
    _, seen = invoke(lam, name, {})
    assert seen == {"cached": True, "region": "us-east-1"}
    # Another search path may hold other models: such a loader starts empty.
    other = unique("datapath")
    create_function(lam, iam, other, source)
    _, seen = invoke(lam, other, {"data_path": "/nonexistent"})
    assert seen == {"cached": False, "region": "us-east-1"}
