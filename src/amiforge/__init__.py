"""amiforge: a serverless golden-AMI factory for AWS.

Layers (see docs/architecture.md):
  core/        pure domain logic, no boto3
  aws/         one thin adapter per AWS service
  steps/       one module per pipeline step or scheduled job, built on core + aws
  custom_resource/  CloudFormation custom resources (Custom::LatestAmi)
  handlers/    Lambda entry points, a few lines each
  ops/         the application layer: every use case the CLI offers, returning data
  deploy/      template, state machine, bundle packaging, stack deploy
  localcloud/  the offline AWS emulator (moto + what moto lacks)
  cli/         commands that parse arguments and hand ops' data to one renderer
"""

__version__ = "0.1.0"
