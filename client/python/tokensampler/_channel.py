"""Channel target and options shared by the sync and asyncio clients."""

import json
import weakref
from typing import Any, List, Optional, Sequence, Tuple

import grpc

from tokensampler import _codec
from tokensampler.v1 import sampler_pb2_grpc as pb2_grpc

SAMPLER_SERVICE = "tokensampler.v1.Sampler"


def channel_config(target: str, retries: int,
                   max_message_bytes: int) -> Tuple[str, List[Tuple[str, object]]]:
    """The gRPC target and channel options for a tokensampler server address.

    "h1:p1,h2:p2" becomes gRPC's "ipv4:h1:p1,h2:p2" list. Targets naming several
    addresses (dns:///, ipv4:, ipv6:, lists) get round_robin with client-side health
    checking, like the C++ client and the CLI (docs/CLIENT.md, "Addressing"); retries > 0
    retries calls that fail UNAVAILABLE before the server answered.
    """
    if not isinstance(target, str) or not target:
        raise ValueError(f"target: expected 'host:port', got {target!r}")
    if not 0 <= retries <= 4:
        raise ValueError(f"retries: must be in [0, 4], got {retries}")
    if "," in target and not target.startswith(("ipv4:", "ipv6:", "dns:")):
        target = ("ipv6:" if target.startswith("[") else "ipv4:") + target
    config = {}
    if target.startswith(("dns:", "ipv4:", "ipv6:")):
        config["loadBalancingConfig"] = [{"round_robin": {}}]
        config["healthCheckConfig"] = {"serviceName": SAMPLER_SERVICE}
    if retries:
        config["methodConfig"] = [{
            "name": [{"service": SAMPLER_SERVICE}],
            "retryPolicy": {"maxAttempts": retries + 1, "initialBackoff": "0.01s",
                            "maxBackoff": "0.2s", "backoffMultiplier": 2,
                            "retryableStatusCodes": ["UNAVAILABLE"]}}]
    options = [("grpc.max_send_message_length", max_message_bytes),
               ("grpc.max_receive_message_length", max_message_bytes)]
    if config:
        options.append(("grpc.service_config", json.dumps(config)))
    if retries:
        options.append(("grpc.per_rpc_retry_buffer_size", max_message_bytes))
    return target, options


class Connection:
    """The channel, stub and call settings shared by tokensampler.Client and aio.Client.

    _grpc is the module whose channels are made: grpc, or grpc.aio for asyncio.
    """

    _grpc: Any = grpc

    def __init__(self, target: str, *, timeout: Optional[float] = 10.0, retries: int = 0,
                 credentials: Optional[grpc.ChannelCredentials] = None,
                 metadata: Sequence[Tuple[str, str]] = (),
                 max_message_bytes: int = 256 << 20):
        self.target = target
        self.timeout = timeout
        self._metadata = tuple(metadata)
        target, options = channel_config(target, retries, max_message_bytes)
        self._channel = (self._grpc.secure_channel(target, credentials, options=options)
                         if credentials is not None
                         else self._grpc.insecure_channel(target, options=options))
        self._stub = pb2_grpc.SamplerStub(self._channel)
        self._shared: "weakref.WeakSet[Any]" = weakref.WeakSet()  # open shared logits
        self._health = self._channel.unary_unary(
            _codec.HEALTH_CHECK, request_serializer=bytes, response_deserializer=bytes)
