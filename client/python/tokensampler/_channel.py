"""Channel target and options shared by the sync and asyncio clients."""

import json
from typing import List, Tuple

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
