"""The small typed results of the client: no protobuf leaks out of the package."""

import dataclasses
import enum
from dataclasses import dataclass
from typing import Any, Dict, List, Union

import numpy as np

from tokensampler._draw import replay


@dataclass(frozen=True)
class SampleResult:
    """The draws of one row.

    token_ids, logprobs: one per sample (sample index 0 first), int32 / float32.
    top_token_ids, top_logprobs: (samples, top_logprobs) arrays of the alternatives,
      descending, ties by id (empty second axis unless top_logprobs was asked for).
    seed, step: what the server used; replay(dist.token_ids, dist.probs, seed, step, i)
      gives token_ids[i] again.
    sequence_id: the row's sequence ("" for stateless calls).
    ranks: per sample, 1 + the tokens whose value under logprobs_mode beats it (ties
      count against it); 0 unless top_logprobs or logprob_token_ids was asked for.
    token_logprobs: (samples, len(logprob_token_ids)) values of the asked tokens.
    kept_set: with return_kept_set, the support sampled from as a bitmask (b"" else);
      kept_token_ids() lists it.
    """

    token_ids: np.ndarray
    logprobs: np.ndarray
    top_token_ids: np.ndarray
    top_logprobs: np.ndarray
    seed: int
    step: int
    sequence_id: str = ""
    ranks: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int32))
    token_logprobs: np.ndarray = dataclasses.field(
        default_factory=lambda: np.zeros((0, 0), np.float32))
    kept_set: bytes = b""

    def kept_token_ids(self) -> np.ndarray:
        """The ids whose bit is set in kept_set, ascending (int32)."""
        bits = np.unpackbits(np.frombuffer(self.kept_set, dtype=np.uint8), bitorder="little")
        return np.flatnonzero(bits).astype(np.int32)

    @property
    def token_id(self) -> int:
        """The first sample's token (a row always has one unless it only ended a sequence)."""
        if self.token_ids.size == 0:
            raise ValueError(f"sequence {self.sequence_id!r}: this result has no samples")
        return int(self.token_ids[0])


@dataclass(frozen=True)
class Distribution:
    """One row's processed distribution: every token with p > 0, descending, ties by id."""

    token_ids: np.ndarray  # int32
    probs: np.ndarray      # float32, sums to 1
    sequence_id: str = ""

    def dense(self, vocab: int) -> np.ndarray:
        """The probabilities as a float32 vector of length vocab, indexed by token id."""
        out = np.zeros(vocab, dtype=np.float32)
        out[self.token_ids] = self.probs
        return out

    def replay(self, seed: int, step: int, index: Union[int, np.ndarray] = 0):
        """tokensampler.replay over this distribution."""
        return replay(self.token_ids, self.probs, seed, step, index)


class HealthStatus(enum.Enum):
    """grpc.health.v1 serving status of the server (or of one of its services)."""

    UNKNOWN = 0
    SERVING = 1
    NOT_SERVING = 2
    SERVICE_UNKNOWN = 3


@dataclass(frozen=True)
class ServerInfo:
    """GetServerInfo: version, kernels, limits and counters (README, "API").

    Enums (presets, dtypes) are given by name. Fields the proto gained after this class
    was written are in `extra`, by proto field name.
    """

    version: str
    simd_target: str
    presets: List[str]
    dtypes: List[str]
    max_vocab: int
    max_rows_per_request: int
    max_message_bytes: int
    max_sequences_per_stream: int
    max_history_tokens: int
    max_num_samples: int
    max_top_logprobs: int
    worker_threads: int
    requests_served: int
    rows_served: int
    instance: str
    shared_memory_mode: str = ""
    """Who may use shared memory: "SHARED_MEMORY_MODE_OFF", "_LOCAL" or "_ANY"."""
    shared_memory_prefix: str = ""
    """Every shared memory key must start with it (Client.shared_logits uses it)."""
    max_shared_memory_regions: int = 0
    max_shared_memory_bytes: int = 0
    extra: Dict[str, Any] = dataclasses.field(default_factory=dict)
    """Fields of a newer server's ServerInfo that this class does not name yet."""
