#!/bin/bash
# Nginx on Amazon Linux 2023. Runs once on the build instance as root; a non-zero exit
# fails the build. Output lands in the build log and the console tail of failures.
set -euo pipefail

dnf -y upgrade --refresh
dnf -y install nginx

cat >/etc/nginx/conf.d/health.conf <<'NGINX'
server {
    listen 8080;
    location = /healthz { return 200 "ok\n"; }
}
NGINX
nginx -t

# Enabled, not started: the image should boot straight into serving.
systemctl enable nginx

# Record what built this image (the wrapper exports these).
printf 'recipe=%s\nrecipe_hash=%s\n' "$AMIFORGE_RECIPE" "$AMIFORGE_RECIPE_HASH" \
  >/etc/amiforge-image

dnf clean all
rm -rf /var/cache/dnf
