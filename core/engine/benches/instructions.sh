#!/bin/sh
# Instructions per hook call, for each row of the scripts bench's `hook_call` group, counted
# by callgrind: where wall time on this machine moves by a quarter between runs, the count
# moves by about 0.3 %, so a change of a few per cent shows. Each row is run twice, 2,000 and 12,000 calls, and the
# difference is divided by 10,000, which leaves out the setup both runs share.
#
#   core/engine/benches/instructions.sh [row ...]    (needs valgrind; rows default to all five)
set -eu
command -v valgrind >/dev/null || { echo "instructions.sh needs valgrind (apt-get install valgrind)" >&2; exit 1; }
cd "$(dirname "$0")/../../.."
rows=${*:-native_module lua lua_views python host_codec}
bench=$(cargo bench -q -p modhost-engine --bench scripts --no-run --message-format=json 2>/dev/null |
    grep '"kind":\["bench"\].*"name":"scripts"' | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p')
count() {
    # (The Python runtime forks a child at start; its count is left out.)
    MODHOST_BENCH_CALLS="$1:$2" valgrind --tool=callgrind --child-silent-after-fork=yes \
        --callgrind-out-file=/dev/null "$bench" --bench 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
for row in $rows; do
    few=$(count "$row" 2000)
    many=$(count "$row" 12000)
    echo "$row: $(((many - few) / 10000)) instructions per call"
done
