"""tokensampler: the Python client of the tokensampler.v1.Sampler gRPC service.

    import numpy as np
    import tokensampler

    with tokensampler.Client("127.0.0.1:50051") as client:
        result = client.sample(np.array([2.0, 1.0, 0.1], np.float32), temperature=0.8, seed=42)
        dist = client.distribution(np.array([2.0, 1.0, 0.1], np.float32), temperature=0.8)
        assert tokensampler.replay(dist.token_ids, dist.probs, result.seed, result.step) \
            == result.token_id

Client (sample, distribution, server_info, health, session, shared_logits: logits in
shared memory), tokensampler.aio for asyncio, replay/uniform (the README's draw in
NumPy), SamplerError. docs/CLIENT.md of the repository has the whole API.
"""

# The generated stubs (tokensampler.v1) are built from proto/ at install time; from a
# source tree the tests generate them into another folder on sys.path, which this adds.
__path__ = __import__("pkgutil").extend_path(__path__, __name__)

from tokensampler._draw import philox4x32_10, replay, uniform  # noqa: E402
from tokensampler._errors import SamplerError  # noqa: E402
from tokensampler._results import (Distribution, HealthStatus, SampleResult,  # noqa: E402
                                   ServerInfo)
from tokensampler._shm import SharedLogits, SharedRows  # noqa: E402
from tokensampler.client import Client, Session  # noqa: E402

__version__ = "0.1.0"

__all__ = ["Client", "Distribution", "HealthStatus", "SampleResult", "SamplerError",
           "ServerInfo", "Session", "SharedLogits", "SharedRows", "philox4x32_10", "replay", "uniform", "__version__"]
