"""Turns NumPy arrays and torch tensors into raw little-endian logits bytes, per row.

No element is touched in Python: each row is one contiguous buffer of the caller's own
dtype (float32, float16, bfloat16) sent as Logits.raw. A CUDA tensor is copied to the
host once; a non-contiguous one is made contiguous once.
"""

import sys
from typing import Any, List, NamedTuple

import numpy as np

from tokensampler._errors import invalid

# tokensampler.v1.Dtype values (the proto's enum; fixed by the wire format).
DTYPE_FLOAT32 = 1
DTYPE_BFLOAT16 = 2
DTYPE_FLOAT16 = 3


class EncodedLogits(NamedTuple):
    rows: List[Any]    # per row: its little-endian bytes, or a _shm.SharedMemoryRef
    dtype: int         # tokensampler.v1.Dtype
    batched: bool      # the input was 2-D


def is_torch_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "dtype") \
        and hasattr(value, "device")


def _from_torch(tensor: Any, field: str):
    import torch  # the caller already has it loaded

    tensor = tensor.detach()
    if tensor.device.type != "cpu":
        tensor = tensor.to("cpu")
    tensor = tensor.contiguous()
    if tensor.dtype == torch.float32:
        return tensor.numpy(), DTYPE_FLOAT32
    if tensor.dtype == torch.float16:
        return tensor.numpy(), DTYPE_FLOAT16
    if tensor.dtype == torch.bfloat16:
        # Same 16 bits, seen as integers: NumPy has no bfloat16.
        return tensor.view(torch.int16).numpy().view(np.uint16), DTYPE_BFLOAT16
    raise invalid(field, f"torch dtype {tensor.dtype} is not sent; use torch.float32, "
                         "torch.float16 or torch.bfloat16")


def _from_numpy(array: np.ndarray, field: str):
    kind = array.dtype.newbyteorder("=")  # byte order is fixed in encode()
    if kind.name == "bfloat16":  # ml_dtypes' bfloat16, if the caller uses it
        return array.view(np.uint16), DTYPE_BFLOAT16
    if kind == np.float32:
        return array, DTYPE_FLOAT32
    if kind == np.float16:
        return array, DTYPE_FLOAT16
    raise invalid(field, f"numpy dtype {array.dtype} is not sent; use float32 or float16 "
                         "(e.g. .astype(numpy.float32))")


def encode(logits: Any, field: str = "logits") -> EncodedLogits:
    """Splits logits (1-D = one row, 2-D = one row per line) into raw row buffers.

    Accepts a NumPy array (float32, float16), a torch tensor (float32, float16,
    bfloat16; any device), a list of numbers (sent as float32), or shared logits
    (Client.shared_logits, its rows: sent as references into the region). Raises
    SamplerError (INVALID_ARGUMENT, naming `field`) for any other type, dtype or number of
    dimensions.
    """
    shared_refs = getattr(logits, "_shared_refs", None)
    if shared_refs is not None:
        return shared_refs(field)
    if is_torch_tensor(logits):
        array, dtype = _from_torch(logits, field)
    elif isinstance(logits, np.ndarray):
        array, dtype = _from_numpy(logits, field)
    elif isinstance(logits, (list, tuple)):
        try:
            array = np.asarray(logits, dtype=np.float32)
        except (TypeError, ValueError) as e:
            raise invalid(field, f"not a list of numbers ({e})") from None
        dtype = DTYPE_FLOAT32
    else:
        raise invalid(field, f"expected a numpy array, a torch tensor or a list of numbers, "
                             f"got {type(logits).__name__}")
    if array.ndim not in (1, 2):
        raise invalid(field, f"must be 1-D (one row) or 2-D (rows, vocab), got shape "
                             f"{tuple(array.shape)}")
    little = array.dtype.newbyteorder("<")
    if array.dtype != little or sys.byteorder != "little":
        array = array.astype(little)
    array = np.ascontiguousarray(array)
    if array.ndim == 1:
        return EncodedLogits([array.tobytes()], dtype, False)
    return EncodedLogits([row.tobytes() for row in array], dtype, True)
