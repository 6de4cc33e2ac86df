"""amiforge's AWS, offline, on loopback: moto's server plus what moto lacks.

How the pieces fit:

* :mod:`.server` — :class:`LocalCloud`: moto's WSGI app on ``127.0.0.1``, moto switched
  to execute Step Functions, and everything below attached for as long as it runs;
  :mod:`.private_routes` — ``/_amiforge/`` for ``amiforge local release-base`` and faults.
* :mod:`.fills` — every change to moto's code, declared one module per service, each fill
  fingerprinted against moto 5.2.5 and installed and removed as one registry.
* :mod:`.lambda_runtime` (+ :mod:`.lambda_code`, :mod:`.lambda_environment`,
  :mod:`.lambda_bootstrap`, the fork server) — Lambda without Docker: each invoke runs the
  function's zip in an isolated Python process; :mod:`.sqs_poller` — SQS event sources.
* :mod:`.events` — EventBridge delivery to Lambda, Step Functions, SQS and logs targets,
  with AWS's Input/InputPath/InputTransformer; :mod:`.schedules` — rules that tick.
* :mod:`.ec2_sim` (+ :mod:`.builder_script`) — the build-instance simulator: state
  changes, events, console output.
* :mod:`.faults` (+ :mod:`.fault_responses`) — throttling, lost events, killed functions.
* :mod:`.images` — ``release_base``: a vendor publishing a new base AMI.
* :mod:`.testing` — small helpers for tests that drive the local cloud.

The package itself imports nothing, so importing one piece never starts the others::

    from amiforge.localcloud.server import LocalCloud

    with LocalCloud(builder_seconds=0.5) as cloud:
        os.environ.update(cloud.env())
        ...
"""
