#!/usr/bin/env bash
# Mutation testing of the security modules, on demand (too slow for .ci/run).
#
# Configuration: [tool.mutmut] in pyproject.toml; results and the reasons for each surviving
# mutant: docs/mutation-testing.md. Needs mutmut (in the dev dependency group, or
# `python -m pip install "mutmut~=3.8.1"`) on Linux or macOS: it forks a worker per mutant.
#
#   scripts/mutation.sh            a fresh run (mutants/ is recreated), then the score
#   scripts/mutation.sh --resume   keep mutants/ and test only what has no result yet
#   MUTATION_JOBS=4 scripts/...    more parallel workers (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = --resume ]; then
  shift
else
  rm -rf mutants
fi
mutmut run --max-children "${MUTATION_JOBS:-2}" "$@"

# The score per module, from every mutant's status (killed, timeout and survived count).
mutmut results --all true > mutants/results.txt
python - mutants/results.txt <<'PY'
import collections
import re
import sys

counts = collections.defaultdict(collections.Counter)
with open(sys.argv[1], encoding="utf-8") as results:
    for line in results:
        name, _, status = line.strip().rpartition(": ")
        if status != "not checked":
            counts[re.sub(r"\.x[\u01c1_].*$", "", name)][status] += 1
print(f"{'module':26} {'killed':>7} {'timeout':>8} {'survived':>9} {'total':>6} {'score':>7}")
for module, count in sorted(counts.items()):
    total = sum(count.values())
    found = count["killed"] + count["timeout"]
    print(
        f"{module:26} {count['killed']:7} {count['timeout']:8} {count['survived']:9}"
        f" {total:6} {found / total:7.1%}"
    )
PY
