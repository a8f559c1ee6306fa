"""tokensampler.aio: the same client for asyncio callers, on grpc.aio.

    async with tokensampler.aio.Client("127.0.0.1:50051") as client:
        result = await client.sample(logits, temperature=0.8, seed=1)
        async with client.session() as session:
            tokens = await session.step({"a": row}, top_p=0.9)

Arguments, results and errors are those of tokensampler.Client.
"""

import asyncio
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import grpc
import grpc.aio

from tokensampler import _codec
from tokensampler._channel import Connection
from tokensampler._errors import SamplerError
from tokensampler._results import Distribution, HealthStatus, SampleResult, ServerInfo
from tokensampler._shm import AsyncSharedLogits as SharedLogits
from tokensampler.client import Metadata
from tokensampler.v1 import sampler_pb2 as pb2
from tokensampler.v1 import sampler_pb2_grpc as pb2_grpc


class Client(Connection):
    """An asyncio connection to a tokensampler server (see tokensampler.Client).

    Create and use it inside one running event loop.
    """

    _grpc = grpc.aio

    async def _call(self, method, request):
        try:
            return await method(request, timeout=self.timeout, metadata=self._metadata or None)
        except grpc.RpcError as e:
            raise SamplerError.from_rpc_error(e) from None

    async def sample(self, logits: Any, *, step: Union[int, Sequence[int]] = 0,
                     context_token_ids: Any = None,
                     **params: Any) -> Union[SampleResult, List[SampleResult]]:
        """See tokensampler.Client.sample."""
        request, batched = _codec.build_request(logits, step, context_token_ids, params)
        return _codec.sample_results(await self._call(self._stub.Sample, request), batched)

    async def distribution(self, logits: Any, *, context_token_ids: Any = None,
                           **params: Any) -> Union[Distribution, List[Distribution]]:
        """See tokensampler.Client.distribution."""
        request, batched = _codec.build_request(logits, 0, context_token_ids, params)
        return _codec.distributions(await self._call(self._stub.GetDistribution, request),
                                    batched)

    async def server_info(self) -> ServerInfo:
        """See tokensampler.Client.server_info."""
        return _codec.server_info(await self._call(self._stub.GetServerInfo,
                                                   pb2.GetServerInfoRequest()))

    async def health(self, service: str = "") -> HealthStatus:
        """See tokensampler.Client.health."""
        try:
            return _codec.health_status(await self._call(self._health,
                                                         _codec.health_request(service)))
        except SamplerError as e:
            return _codec.health_of_error(e)

    def session(self) -> "Session":
        """A decode session over one SampleStream; use it with `async with`."""
        return Session(self._stub, self.timeout, self._metadata)

    def shared_logits(self, rows: int, vocab: int, dtype: Any = "float32", *,
                      name: Optional[str] = None,
                      prefix: Optional[str] = None) -> "_OpeningSharedLogits":
        """See tokensampler.Client.shared_logits. Await it (`shared = await
        client.shared_logits(...)`, then `await shared.close()`) or use it with
        `async with client.shared_logits(...) as shared:`."""
        return _OpeningSharedLogits(self, rows, vocab, dtype, name, prefix)

    async def _open_shared(self, rows: int, vocab: int, dtype: Any, name: Optional[str],
                           prefix: Optional[str]) -> SharedLogits:
        if prefix is None:
            prefix = (await self.server_info()).shared_memory_prefix or "/tokensampler"
        shared = SharedLogits(rows, vocab, dtype, prefix, name, self._unregister_shared)
        try:
            await self._call(self._stub.RegisterSharedMemory, shared.register_request())
        except BaseException:
            shared._release_local()
            raise
        self._shared.add(shared)
        return shared

    async def _unregister_shared(self, name: str) -> None:
        await self._call(self._stub.UnregisterSharedMemory,
                         pb2.UnregisterSharedMemoryRequest(name=name))

    async def close(self) -> None:
        """Closes the shared logits still open (best effort), then the channel."""
        for shared in list(self._shared):
            try:
                await shared.close()
            except SamplerError:
                pass
        await self._channel.close()

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()


class Session:
    """An asyncio decode session (see tokensampler.client.Session)."""

    def __init__(self, stub: pb2_grpc.SamplerStub, timeout: Optional[float],
                 metadata: Metadata):
        self._timeout = timeout
        self._call = stub.SampleStream(metadata=metadata or None)
        self._error: Optional[SamplerError] = None
        self._closed = False

    async def _exchange(self, request: "pb2.SampleRequest", ids: List[str]):
        if self._error is not None:
            raise self._error
        if self._closed:
            raise SamplerError(grpc.StatusCode.FAILED_PRECONDITION, "session: already closed")
        try:
            await self._call.write(request)
            response = await asyncio.wait_for(self._call.read(), self._timeout)
        except asyncio.TimeoutError:
            self._call.cancel()
            self._error = SamplerError(grpc.StatusCode.DEADLINE_EXCEEDED,
                                       f"session: no response within {self._timeout} s")
            raise self._error from None
        except grpc.RpcError as e:
            self._error = SamplerError.from_rpc_error(e, ids)
            raise self._error from None
        if response is grpc.aio.EOF:
            code = await self._call.code()
            details = await self._call.details()
            self._error = SamplerError.from_rpc_error(_Status(code, details), ids) \
                if code != grpc.StatusCode.OK else SamplerError(
                    grpc.StatusCode.UNAVAILABLE, "session: the server ended the stream")
            raise self._error
        return response

    async def step(self, rows: Mapping[str, Any], *,
                   params: Optional[Mapping[str, Mapping[str, Any]]] = None,
                   context_token_ids: Optional[Mapping[str, Any]] = None,
                   end: Iterable[str] = (), **shared: Any) -> Dict[str, SampleResult]:
        """See tokensampler.client.Session.step."""
        request, ids = _codec.build_step(rows, shared, params, context_token_ids, end)
        return _codec.step_results(await self._exchange(request, ids), ids)

    async def end(self, *sequence_ids: str) -> None:
        """Frees sequences without sampling them."""
        if sequence_ids:
            request, ids = _codec.build_step({}, {}, None, None, sequence_ids)
            await self._exchange(request, ids)

    async def close(self) -> None:
        """Ends the stream (the server frees every sequence left) and waits for it."""
        if self._closed:
            return
        self._closed = True
        if self._error is None:
            try:
                await self._call.done_writing()
                while await asyncio.wait_for(self._call.read(), self._timeout) \
                        is not grpc.aio.EOF:
                    pass
                return
            except (grpc.RpcError, asyncio.TimeoutError):
                pass
        self._call.cancel()

    async def __aenter__(self) -> "Session":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()


class _OpeningSharedLogits:
    """What aio.Client.shared_logits returns: awaitable (gives the SharedLogits) and an
    async context manager (closes it on exit)."""

    def __init__(self, client: Client, *args: Any):
        self._client, self._args = client, args
        self._shared: Optional[SharedLogits] = None

    def __await__(self):
        return self._client._open_shared(*self._args).__await__()

    async def __aenter__(self) -> SharedLogits:
        self._shared = await self
        return self._shared

    async def __aexit__(self, *exc) -> None:
        await self._shared.__aexit__(*exc)


class _Status(grpc.RpcError):
    """A final stream status seen as an RpcError, for SamplerError.from_rpc_error."""

    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(details)
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details
