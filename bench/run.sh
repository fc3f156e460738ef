#!/usr/bin/env bash
# Times rasentry replay against ndpiReader and the bare gopacket loop on the
# benchmark capture, alternating the three in each round, and reports medians
# of wall time and peak RSS, packets/s and ratios.
#
#   bench/run.sh [CAPTURE] [ROUNDS]     (defaults: bench/out/bench.pcap, 5)
#   WORKERS=2 bench/run.sh              (rasentry --workers)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$here/..
cap=${1:-$here/out/bench.pcap}
rounds=${2:-5}
workers=${WORKERS:-1}
[ -f "$cap" ] || { echo "run.sh: $cap missing: run bench/make-capture.sh first" >&2; exit 2; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
(cd "$repo" && go build -o "$out/rasentry" ./cmd/rasentry && go build -o "$out/bareloop" ./bench/bareloop)
packets=$(capinfos -c -M "$cap" 2>/dev/null | awk -F: '/Number of packets/ {gsub(/ /,"",$2); print $2}')
declare -A cmds=(
  [rasentry]="$out/rasentry replay --summary=false --workers $workers --eve $out/eve.json $cap"
  [bareloop]="$out/bareloop $cap"
)
if command -v ndpiReader >/dev/null; then cmds[ndpiReader]="ndpiReader -i $cap -q"; fi
names=$(printf '%s\n' "${!cmds[@]}" | sort)
echo "capture: $cap ($packets packets); rounds: $rounds; machine: $(nproc) cores, $(uname -r)"
for r in $(seq 1 "$rounds"); do
  for n in $names; do
    rm -f "$out/eve.json"
    /usr/bin/time -f "%e %M" -o "$out/t" ${cmds[$n]} >/dev/null 2>"$out/err" || { echo "$n failed:"; cat "$out/err"; exit 1; }
    echo "$n $(cat "$out/t")" >> "$out/times"
  done
done
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
printf '%-12s %10s %14s %12s\n' what seconds packets/s "peak RSS MB"
for n in $names; do
  s=$(awk -v n=$n '$1==n {print $2}' "$out/times" | median)
  m=$(awk -v n=$n '$1==n {print $3}' "$out/times" | median)
  printf '%-12s %10.3f %14.0f %12.1f\n' "$n" "$s" "$(echo "$packets / $s" | bc -l)" "$(echo "$m / 1024" | bc -l)"
  echo "$n $s $m" >> "$out/medians"
done
get() { awk -v n=$1 -v c=$2 '$1==n {print $c}' "$out/medians"; }
echo
printf 'rasentry time / bareloop time: %.2f\n' "$(echo "$(get rasentry 2) / $(get bareloop 2)" | bc -l)"
if [ -n "$(get ndpiReader 2)" ]; then
  printf 'rasentry packets/s / ndpiReader packets/s: %.2f\n' "$(echo "$(get ndpiReader 2) / $(get rasentry 2)" | bc -l)"
  printf 'rasentry peak RSS / ndpiReader peak RSS: %.3f\n' "$(echo "$(get rasentry 3) / $(get ndpiReader 3)" | bc -l)"
fi
