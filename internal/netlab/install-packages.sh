#!/bin/sh
# install-packages.sh installs the Debian packages that the namespace tests
# (internal/netlab and the end-to-end tests) run: network tools, the real
# peers (xrdp, samba, miredo, miniupnpd, dnsmasq) and their clients.
#
# Non-interactive and idempotent: packages already present are left alone,
# and no daemon is started by a postinst, because /usr/sbin/policy-rc.d
# answers 101 ("action forbidden") while the install runs. A policy-rc.d
# that was there before is kept; one this script made is removed again.
# Needs root. Usage: sh internal/netlab/install-packages.sh
set -eu

PACKAGES="tcpdump nftables iptables iproute2 ethtool iputils-ping netcat-openbsd socat
bind9-dnsutils xrdp freerdp2-x11 xvfb python3-impacket samba miredo miredo-server
miniupnpd-nftables miniupnpc gupnp-tools natpmpc dnsmasq tshark tcpreplay libpcap-dev"

if [ "$(id -u)" != 0 ]; then
	echo "install-packages.sh: needs root (apt-get install)" >&2
	exit 1
fi

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
		missing="$missing $p"
	fi
done
if [ -z "$missing" ]; then
	echo "install-packages.sh: all packages present"
	exit 0
fi

made_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	made_policy=1
fi
cleanup() {
	if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
}
trap cleanup EXIT INT TERM

echo "install-packages.sh: installing$missing"
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer no without a prompt.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold $missing
