#!/bin/bash
# ECS host on the ECS-optimized AMI: patched, with on-call tools. The cluster name is
# set at launch by the consumer's own user data (ECS_CLUSTER in /etc/ecs/ecs.config),
# not baked in here.
set -euo pipefail

yum -y update
# Tools the on-call runbooks expect on every host.
yum -y install jq sysstat

# Defaults every host should have; the launch template appends ECS_CLUSTER.
cat >/etc/ecs/ecs.config <<'ECS'
ECS_ENABLE_CONTAINER_METADATA=true
ECS_ENABLE_SPOT_INSTANCE_DRAINING=true
ECS_IMAGE_PULL_BEHAVIOR=prefer-cached
ECS

# Do not ship the build instance's ECS agent state: hosts launched from the image must
# register as new container instances.
systemctl stop ecs docker || true
rm -rf /var/lib/ecs/data/* /var/log/ecs/*

yum clean all
rm -rf /var/cache/yum
