#!/usr/bin/env bash
# Builds the benchmark capture described in ../shared/bench/README.md: the
# base capture replicated 29 times with distinct addresses (tcprewrite
# --seed) and shifted times (editcap -t), merged chronologically: about
# 3.0 M packets, 1.05 GB. Needs Debian's tcpreplay and wireshark-common.
#
#   bench/make-capture.sh [OUT]      (default OUT: bench/out/bench.pcap)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
base=${BASE:-$here/../../shared/bench/base.pcap.gz}
out=${1:-$here/out/bench.pcap}
copies=${COPIES:-29}
for tool in tcprewrite editcap mergecap; do
  command -v $tool >/dev/null || { echo "make-capture: $tool is missing (apt-get install tcpreplay wireshark-common)" >&2; exit 2; }
done
[ -f "$base" ] || { echo "make-capture: base capture $base not found" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$(dirname "$out")"
zcat "$base" > "$work/base.pcap"
for k in $(seq 1 "$copies"); do
  tcprewrite --seed="$k" --skipbroadcast --infile="$work/base.pcap" --outfile="$work/s.pcap"
  editcap -F pcap -t "$k" "$work/s.pcap" "$work/r$k.pcap"
done
rm -f "$work/s.pcap"
mergecap -F pcap -w "$out" "$work/base.pcap" "$work"/r*.pcap
capinfos -c -s "$out" 2>/dev/null || ls -l "$out"
