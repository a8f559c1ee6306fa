#!/usr/bin/python3
"""A real decode loop through tokensampler: a tiny torch language model generates text.

The model is a character-level causal LM (the previous 10 characters -> the next one),
trained for a few seconds at start on a text every Debian machine has (the GPL-3), so
nothing is downloaded. Generation runs two sequences through one SampleStream session:
each step the model computes a row of logits per sequence, the rows go over the wire as
bfloat16 (half the bytes of float32), and the server applies a repetition penalty over
each sequence's history, temperature and top-p, then draws with the sequence's seed. The
server keeps the seeds, step counters and histories; this loop only sends the prompts once.

    python3 decode_loop.py --server 127.0.0.1:50051 --seed 1 --length 300
"""

import argparse
import dataclasses
import time
from typing import Dict, List

import torch

import tokensampler

TEXT_PATH = "/usr/share/common-licenses/GPL-3"
CONTEXT = 10  # characters the model sees
SAMPLING = dict(temperature=0.8, top_p=0.95, repetition_penalty=1.1)


class CharLM(torch.nn.Module):
    """Predicts the next character from the CONTEXT characters before it (causal)."""

    def __init__(self, vocab: int, dim: int = 16, hidden: int = 128):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, dim)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(CONTEXT * dim, hidden), torch.nn.Tanh(),
                                       torch.nn.Linear(hidden, vocab))

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        """(batch, CONTEXT) character ids -> (batch, vocab) float32 logits."""
        return self.mlp(self.embed(windows).flatten(1))


@dataclasses.dataclass
class Model:
    net: CharLM
    chars: str  # token id -> character

    def encode(self, text: str) -> List[int]:
        return [self.chars.index(c) for c in text]

    def logits(self, histories: List[List[int]]) -> torch.Tensor:
        """Next-character logits of each history (left-padded with spaces)."""
        pad = self.chars.index(" ")
        windows = [([pad] * CONTEXT + h)[-CONTEXT:] for h in histories]
        with torch.no_grad():
            return self.net(torch.tensor(windows))

    def log_likelihood(self, prefix: str, text: str) -> float:
        """Sum of log p(char | previous CONTEXT chars) over text, after prefix (natural log)."""
        ids = self.encode(prefix + text)
        start = len(prefix)
        logp = torch.log_softmax(self.logits([ids[:i] for i in range(start, len(ids))]), -1)
        return float(logp[torch.arange(len(text)), torch.tensor(ids[start:])].sum())


def train(steps: int = 400, seed: int = 0) -> Model:
    """Trains a CharLM on TEXT_PATH with Adam (a few seconds on two cores)."""
    torch.set_num_threads(1)  # a small model: more threads only contend
    text = open(TEXT_PATH, encoding="utf-8").read()
    chars = "".join(sorted(set(text)))
    torch.manual_seed(seed)
    data = torch.tensor([chars.index(c) for c in text])
    net = CharLM(len(chars))
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
    offsets = torch.arange(CONTEXT)
    for _ in range(steps):
        ends = torch.randint(CONTEXT, len(data), (256,))
        loss = torch.nn.functional.cross_entropy(
            net(data[ends[:, None] - CONTEXT + offsets]), data[ends])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return Model(net.eval(), chars)


@dataclasses.dataclass
class Step:
    """One token of one sequence, with what the server saw, so it can be replayed."""
    sequence_id: str
    logits: torch.Tensor   # the bfloat16 row sent
    history: List[int]     # the sequence's tokens before this step (prompt included)
    result: tokensampler.SampleResult


def generate(client: tokensampler.Client, model: Model, prompts: Dict[str, str],
             length: int, seed: int) -> "tuple[Dict[str, str], List[Step]]":
    """Generates `length` characters after each prompt; returns the texts and every step."""
    histories = {sid: model.encode(prompt) for sid, prompt in prompts.items()}
    steps = []
    with client.session() as session:
        for k in range(length):
            ids = list(histories)
            wire = model.logits([histories[sid] for sid in ids]).to(torch.bfloat16)
            results = session.step(
                {sid: wire[i] for i, sid in enumerate(ids)},
                context_token_ids={sid: histories[sid] for sid in ids} if k == 0 else None,
                seed=seed, **SAMPLING)
            for i, sid in enumerate(ids):
                steps.append(Step(sid, wire[i], list(histories[sid]), results[sid]))
                histories[sid].append(results[sid].token_id)
    texts = {sid: "".join(model.chars[t] for t in histories[sid][len(model.encode(p)):])
             for sid, p in prompts.items()}
    return texts, steps


PROMPTS = {"license": "This program is free software", "warranty": "THERE IS NO WARRANTY"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="127.0.0.1:50051")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--length", type=int, default=300)
    args = parser.parse_args()
    start, cpu = time.monotonic(), time.process_time()
    model = train()
    print(f"trained in {time.monotonic() - start:.1f} s ({time.process_time() - cpu:.1f} s CPU)")
    with tokensampler.Client(args.server) as client:
        texts, _ = generate(client, model, PROMPTS, args.length, args.seed)
    for sid, text in texts.items():
        print(f"--- {sid} (seed {args.seed})\n{PROMPTS[sid]}{text}\n")


if __name__ == "__main__":
    main()
