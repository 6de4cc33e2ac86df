"""amiforge's AWS, offline, on loopback: moto's server plus what moto lacks.

How the pieces fit:

* :mod:`.server` — :class:`LocalCloud`: moto's WSGI app on ``127.0.0.1``, moto switched
  to execute Step Functions, and the extensions below installed for as long as it runs;
  a private ``/_amiforge/`` route for ``amiforge local release-base``.
* :mod:`.lambda_runtime` (+ :mod:`.lambda_bootstrap`) — Lambda without Docker: each
  invoke runs the function's zip in an isolated Python subprocess.
* :mod:`.events` — EventBridge delivery to Lambda, Step Functions, SQS and logs targets,
  with AWS's Input/InputPath/InputTransformer; :mod:`.schedules` — rules that tick.
* :mod:`.ec2_sim` — the build-instance simulator: state changes, events, console output.
* :mod:`.cfn_custom` — custom resources answering FAILED, and receiving Update/Delete.
* :mod:`.moto_gaps` — small fills where moto departs from AWS in ways amiforge meets.
* :mod:`.images` — ``release_base``: a vendor publishing a new base AMI.
* :mod:`.testing` — small helpers for tests that drive the local cloud.

Usage::

    with LocalCloud(builder_seconds=0.5) as cloud:
        os.environ.update(cloud.env())
        ...
"""

from amiforge.localcloud.server import LocalCloud

__all__ = ["LocalCloud"]
