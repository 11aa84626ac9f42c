#!/usr/bin/env bash
# Alternates PyTorch's training step (../shared/anchors/torch_anchor.py) and folklstm's, for
# ratios measured side by side on a shared machine. Needs the PyTorch venv of the README
# (PEER_PY, default /tmp/peer/bin/python) and a release build. Usage: benches/side_by_side.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
py="${PEER_PY:-/tmp/peer/bin/python}"
cargo build --release -q
for round in $(seq 1 "${1:-5}"); do
  "$py" ../shared/anchors/torch_anchor.py --mode train --epochs 1 --max-steps 45 --threads 2 \
    --data ../shared/data/nottingham-jigs.abc --weights /tmp/peer-w.pt 2>/dev/null |
    grep -o '"step_ms_median": [0-9.]*' | tail -1 | sed "s/^/torch round $round: /"
  ./target/release/folklstm bench --steps 40 2>/dev/null | grep '^cpu' |
    awk -v r="$round" '{print "folklstm round " r ": ms/step " $5 "  ms/char " $9}'
done
