#!/usr/bin/env python3
"""Samples tunes from weights trained by ../shared/anchors/torch_anchor.py (PyTorch), the way
`folklstm sample EPOCH --count N --temperature T --seed $'X:1\\n' --one-tune --len L` does, so that
`folklstm check` can score an independent implementation of the same recipe with the same measure.

    /tmp/peer/bin/python ../shared/anchors/torch_anchor.py --mode train --epochs 100 --threads 2 \\
        --data ../shared/data/nottingham-jigs.abc --weights /tmp/peer-100.pt
    /tmp/peer/bin/python benches/peer_validity.py --weights /tmp/peer-100.pt --seed 1 > /tmp/peer.abc
    ./target/release/folklstm check /tmp/peer.abc | tail -1

Each of the N streams starts from the zero state, reads the prime, then draws from the full softmax
(temperature 1 by default) until it writes "\\nX:" (the next tune) or L characters; the tune is kept
without the blank lines and "X:" that began the next one, as `--one-tune` does.
"""
import argparse

import torch
import torch.nn as nn


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--weights", required=True)
    p.add_argument("--data", default="../shared/data/nottingham-jigs.abc")
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--len", type=int, default=2000)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--prime", default="X:1\n")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()

    with open(a.data, encoding="utf-8") as f:
        chars = sorted(set(f.read()))  # the anchor's vocabulary: sorted symbols of the corpus
    idx = {c: i for i, c in enumerate(chars)}
    sd = torch.load(a.weights, map_location="cpu")
    emb = nn.Embedding(len(chars), sd["emb.weight"].shape[1])
    units = sd["lstm.weight_hh_l0"].shape[1]
    layers = sum(1 for k in sd if k.startswith("lstm.weight_ih_l"))
    lstm = nn.LSTM(emb.embedding_dim, units, num_layers=layers, batch_first=True)
    out = nn.Linear(units, len(chars))
    emb.load_state_dict({"weight": sd["emb.weight"]})
    lstm.load_state_dict({k[len("lstm."):]: v for k, v in sd.items() if k.startswith("lstm.")})
    out.load_state_dict({"weight": sd["out.weight"], "bias": sd["out.bias"]})

    gen = torch.Generator().manual_seed(a.seed)
    n = a.count
    prime = [idx[c] for c in a.prime]
    seqs = [list(prime) for _ in range(n)]
    done = [False] * n
    stop = [idx["\n"], idx["X"], idx[":"]]
    state = None
    with torch.inference_mode():
        x = torch.tensor([prime] * n)
        for _ in range(a.len - len(prime)):
            y, state = lstm(emb(x), state)
            logits = out(y[:, -1, :]) / a.temperature
            t = torch.multinomial(torch.softmax(logits.double(), dim=-1), 1, generator=gen).squeeze(1)
            for s in range(n):
                if done[s]:
                    continue
                seqs[s].append(int(t[s]))
                if len(seqs[s]) >= len(prime) + 2 and seqs[s][-3:] == stop:
                    del seqs[s][-2:]
                    while len(seqs[s]) > len(prime) and seqs[s][-2:] == [stop[0], stop[0]]:
                        seqs[s].pop()
                    done[s] = True
            if all(done):
                break
            x = t.unsqueeze(1)
    for s in seqs:
        print("".join(chars[i] for i in s).rstrip("\n") + "\n")


if __name__ == "__main__":
    main()
