#!/usr/bin/env bash
# The Debian packages package alert's tests use, installed when missing
# (as root, through apt; no daemon is started: the syslog test starts its
# own rsyslogd on loopback). Without them those tests skip with a message.
#
#   rsyslog   TestSyslogIntoRsyslog: a real rsyslogd (UDP, TCP, unix socket)
#
# TestSpoolDiskFull mounts a tmpfs (mount(8), util-linux, always present)
# and needs root; the Kafka tests use franz-go's in-process kfake broker
# and need no package.
set -euo pipefail
pkgs="rsyslog"
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "alert tests: not root or no apt-get; install $pkgs to run the syslog test" >&2
  exit 0
fi
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
[ -z "$missing" ] && exit 0
# No daemon may start from a package script: PID 1 is not an init system here.
created_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  created_policy=1
fi
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
[ "$created_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
exit 0
