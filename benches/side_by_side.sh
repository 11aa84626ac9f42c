#!/usr/bin/env bash
# Alternates PyTorch's training step and folklstm's, shape by shape, for ratios measured side by
# side on a shared machine: the reference shape with ../shared/anchors/torch_anchor.py (real
# corpus batches), every shape of `folklstm bench --grid` with ../shared/anchors/torch_shapes.py.
# Needs the PyTorch venv of the README (PEER_PY, default /tmp/peer/bin/python) and nothing else
# running. Usage: [SHAPES=...] benches/side_by_side.sh [ROUNDS] [STEPS]
# Prints one line per round and engine, then per shape the medians and the ratio
# (PyTorch ms / folklstm ms: above 1 means folklstm is faster).
set -euo pipefail
cd "$(dirname "$0")/.."
py="${PEER_PY:-/tmp/peer/bin/python}"
rounds="${1:-3}"
steps="${2:-20}"
cargo build --release -q
bin=./target/release/folklstm
shapes=("16 64 512 256 3" "50 50 128 128 1" "50 50 128 128 3" "50 50 512 512 2" "64 64 512 256 3"
  "16 64 1024 1024 2" "8 128 256 256 3")
# SHAPES="50 50 512 512 2;8 128 256 256 3" measures only those (B T E H L, `;` between shapes).
if [ -n "${SHAPES:-}" ]; then IFS=';' read -ra shapes <<<"$SHAPES"; fi
"$bin" bench --grid --steps 1 --batch 1 --seq 2 --embed 8 --hidden 8 --layers 1 2>/dev/null | sed -n 1p
lscpu | sed -n 's/^Model name: *//p' | head -1
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for s in "${shapes[@]}"; do
  read -r b t e h l <<<"$s"
  torch=() ours=()
  for round in $(seq 1 "$rounds"); do
    if [ "$s" = "16 64 512 256 3" ]; then
      ms=$("$py" ../shared/anchors/torch_anchor.py --mode train --epochs 1 --max-steps $((steps + 5)) --threads 2 \
        --data ../shared/data/nottingham-jigs.abc --weights /tmp/peer-w.pt 2>/dev/null |
        grep -o '"step_ms_median": [0-9.]*' | tail -1 | awk '{print $2}')
    else
      ms=$("$py" ../shared/anchors/torch_shapes.py --batch "$b" --seq "$t" --embed "$e" --hidden "$h" \
        --layers "$l" --steps "$steps" --threads 2 | grep -o '"ms_per_step": [0-9.]*' | awk '{print $2}')
    fi
    torch+=("$ms")
    echo "B$b T$t E$e H$h L$l round $round: torch $ms ms"
    ms=$("$bin" bench --grid --steps "$steps" --batch "$b" --seq "$t" --embed "$e" --hidden "$h" --layers "$l" \
      2>/dev/null | awk '$1 ~ /^B/ && $6 ~ /^cpu/ {print $(NF-3)}')
    ours+=("$ms")
    echo "B$b T$t E$e H$h L$l round $round: folklstm $ms ms"
  done
  tm=$(printf '%s\n' "${torch[@]}" | median)
  fm=$(printf '%s\n' "${ours[@]}" | median)
  awk -v s="B$b T$t E$e H$h L$l" -v t="$tm" -v f="$fm" \
    'BEGIN {printf "median %-22s torch %8.2f ms  folklstm %8.2f ms  ratio %.2fx\n", s, t, f, t / f}'
done
