"""The synchronous client: tokensampler.Client and its decode Session."""

import queue
import threading
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import grpc

from tokensampler import _codec
from tokensampler._channel import Connection
from tokensampler._shm import SharedLogits
from tokensampler._errors import SamplerError
from tokensampler._results import Distribution, HealthStatus, SampleResult, ServerInfo
from tokensampler.v1 import sampler_pb2 as pb2
from tokensampler.v1 import sampler_pb2_grpc as pb2_grpc

Metadata = Sequence[Tuple[str, str]]


class Client(Connection):
    """A connection to a tokensampler server; thread-safe, one gRPC channel.

    Args:
      target: "host:port", "dns:///host:port", "h1:p1,h2:p2", or any gRPC target.
      timeout: deadline of each call in seconds (of each step in a session); None = none.
      retries: 0..4 retries of calls that fail UNAVAILABLE before the server answered.
      credentials: grpc.ChannelCredentials for TLS (e.g. grpc.ssl_channel_credentials());
        None = plaintext.
      metadata: (key, value) pairs sent with every call, e.g. an authorization header.
      max_message_bytes: largest message either way (256 MiB: batches of 128k-vocab rows).

    Every method raises SamplerError on failure.
    """

    def _call(self, method, request, sequence_ids: Sequence[str] = ()):
        try:
            return method(request, timeout=self.timeout, metadata=self._metadata or None)
        except grpc.RpcError as e:
            raise SamplerError.from_rpc_error(e, sequence_ids) from None

    def sample(self, logits: Any, *, step: Union[int, Sequence[int]] = 0,
               context_token_ids: Any = None,
               **params: Any) -> Union[SampleResult, List[SampleResult]]:
        """Samples every row of logits; one SampleResult for 1-D logits, a list for 2-D.

        logits: NumPy float32/float16 or torch float32/float16/bfloat16, (vocab,) or
          (rows, vocab), sent as raw bytes of its own dtype. step, context_token_ids: the
          row's step and context (for the penalties), shared or one per row.
        params: SamplingParams fields by name (temperature=0.8, top_p=0.95, seed=42,
          preset="hf", logit_bias={13: -inf}, ...); left out or None = off.
        """
        request, batched = _codec.build_request(logits, step, context_token_ids, params)
        return _codec.sample_results(self._call(self._stub.Sample, request), batched)

    def distribution(self, logits: Any, *, context_token_ids: Any = None,
                     **params: Any) -> Union[Distribution, List[Distribution]]:
        """The processed distribution of every row (GetDistribution); nothing is drawn."""
        request, batched = _codec.build_request(logits, 0, context_token_ids, params)
        return _codec.distributions(self._call(self._stub.GetDistribution, request), batched)

    def server_info(self) -> ServerInfo:
        """Version, SIMD target, presets, dtypes, limits and counters of the server."""
        return _codec.server_info(self._call(self._stub.GetServerInfo,
                                             pb2.GetServerInfoRequest()))

    def health(self, service: str = "") -> HealthStatus:
        """grpc.health.v1 Check of the server ("") or one service; NOT_FOUND = SERVICE_UNKNOWN."""
        try:
            return _codec.health_status(self._call(self._health, _codec.health_request(service)))
        except SamplerError as e:
            return _codec.health_of_error(e)

    def session(self) -> "Session":
        """A decode session over one SampleStream; use it as a context manager."""
        return Session(self._stub, self.timeout, self._metadata)

    def shared_logits(self, rows: int, vocab: int, dtype: Any = "float32", *,
                      name: Optional[str] = None,
                      prefix: Optional[str] = None) -> SharedLogits:
        """A (rows, vocab) NumPy view in shared memory, registered with the server once.

        Write each step's logits into `.array` (or with `.write(tensor)`), then pass the
        object (every row, a batch), `shared[i]` (one row) or `shared[a:b]` as `logits`:
        each row goes as a reference into the region, not as bytes. Only for a server on
        this host (or sharing its /dev/shm) whose --shared_memory allows this caller.

        dtype: "float32", "float16" or "bfloat16" (or the NumPy/torch dtype); bfloat16 is
          stored as uint16 bits. name: the region's name (default: the object's name).
          prefix: the object name's start (default: the server's shared_memory_prefix).
        Use it as a context manager or close() it (closing the client closes it too).
        Raises SamplerError: the server's (PERMISSION_DENIED when shared memory is off
        or this peer is not allowed), or the local object's creation failing.
        """
        if prefix is None:
            prefix = self.server_info().shared_memory_prefix or "/tokensampler"
        shared = SharedLogits(rows, vocab, dtype, prefix, name, self._unregister_shared)
        try:
            self._call(self._stub.RegisterSharedMemory, shared.register_request())
        except BaseException:
            shared._release_local()
            raise
        self._shared.add(shared)
        return shared

    def _unregister_shared(self, name: str) -> None:
        self._call(self._stub.UnregisterSharedMemory, pb2.UnregisterSharedMemoryRequest(name=name))

    def close(self) -> None:
        """Closes the shared logits still open (best effort), then the channel."""
        for shared in list(self._shared):
            try:
                shared.close()
            except SamplerError:
                pass
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_END = object()


class Session:
    """A decode session: one SampleStream, one message per step, in order.

    The server keeps each sequence's seed (from its first row), step counter and token
    history (context sent + tokens drawn); the session keeps nothing of that. Not
    thread-safe: one caller steps it. An error ends the stream (and every sequence in
    it) on the server; the session then raises that error again on every call.
    """

    def __init__(self, stub: pb2_grpc.SamplerStub, timeout: Optional[float],
                 metadata: Metadata):
        self._timeout = timeout
        self._requests: "queue.Queue[Any]" = queue.Queue()
        self._responses: "queue.Queue[Any]" = queue.Queue()
        self._error: Optional[SamplerError] = None
        self._closed = False
        self._call = stub.SampleStream(iter(self._requests.get, _END),
                                       metadata=metadata or None)
        self._reader = threading.Thread(target=self._read, daemon=True,
                                        name="tokensampler-session")
        self._reader.start()

    def _read(self) -> None:
        try:
            for response in self._call:
                self._responses.put(response)
            self._responses.put(_END)
        except grpc.RpcError as e:
            self._responses.put(e)

    def _exchange(self, request: "pb2.SampleRequest", ids: List[str]) -> "pb2.SampleResponse":
        if self._error is not None:
            raise self._error
        if self._closed:
            raise SamplerError(grpc.StatusCode.FAILED_PRECONDITION, "session: already closed")
        self._requests.put(request)
        try:
            response = self._responses.get(timeout=self._timeout)
        except queue.Empty:
            self._call.cancel()
            self._error = SamplerError(grpc.StatusCode.DEADLINE_EXCEEDED,
                                       f"session: no response within {self._timeout} s")
            raise self._error from None
        if isinstance(response, grpc.RpcError):
            self._error = SamplerError.from_rpc_error(response, ids)
            raise self._error
        if response is _END:
            self._error = SamplerError(grpc.StatusCode.UNAVAILABLE,
                                       "session: the server ended the stream")
            raise self._error
        return response

    def step(self, rows: Mapping[str, Any], *,
             params: Optional[Mapping[str, Mapping[str, Any]]] = None,
             context_token_ids: Optional[Mapping[str, Any]] = None,
             end: Iterable[str] = (), **shared: Any) -> Dict[str, SampleResult]:
        """Samples one step of some sequences; returns {sequence_id: SampleResult}.

        rows: {sequence_id: 1-D logits}. shared: SamplingParams fields for every row;
        params[sequence_id]: fields for one sequence, over the shared ones (a sequence's
        seed is fixed by its first row). context_token_ids[sequence_id]: tokens appended
        to that sequence's history first (the prompt, on its first step). end: sequences
        freed after this step.
        """
        request, ids = _codec.build_step(rows, shared, params, context_token_ids, end)
        return _codec.step_results(self._exchange(request, ids), ids)

    def end(self, *sequence_ids: str) -> None:
        """Frees sequences without sampling them."""
        if sequence_ids:
            request, ids = _codec.build_step({}, {}, None, None, sequence_ids)
            self._exchange(request, ids)

    def close(self) -> None:
        """Ends the stream (the server frees every sequence left) and waits for it."""
        if self._closed:
            return
        self._closed = True
        self._requests.put(_END)
        self._reader.join(timeout=self._timeout)
        if self._reader.is_alive():
            self._call.cancel()
            self._reader.join()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
