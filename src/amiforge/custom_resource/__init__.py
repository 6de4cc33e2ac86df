"""CloudFormation custom resources served by the stack (not pipeline steps).

* :mod:`.protocol`: the request/response protocol: every request, malformed ones included,
  gets exactly one answer under 4,096 bytes before the function's deadline.
* :mod:`.latest_ami`: ``Custom::LatestAmi``, the newest AVAILABLE image of a recipe.

The Lambda entry point is ``amiforge.handlers.latest_ami.handler``.
"""
