"""amiforge: a serverless golden-AMI factory for AWS.

Layers (see docs/architecture.md):
  core/        pure domain logic, no boto3
  aws/         one thin adapter per AWS service
  steps/       one module per pipeline step, built on core + aws
  handlers/    Lambda entry points, a few lines each
  deploy/      template, state machine, bundle packaging, stack deploy
  localcloud/  the offline AWS emulator (moto + what moto lacks)
  cli/         commands that return data, one renderer
"""

__version__ = "0.1.0"
