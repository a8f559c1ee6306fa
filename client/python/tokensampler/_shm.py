"""Shared-memory logits: a POSIX shared memory object this process creates, registered
with the server as one region and seen as a writable NumPy array of shape (rows, vocab).

Row i lies at byte i * vocab * width of the object; a call names it by a SharedMemoryRef
(region, offset, byte_size) instead of carrying its bytes (docs/CLIENT.md, "Shared memory").

The object is created exclusively with mode 0600, its pages reserved up front (a full
/dev/shm is an error here, not a SIGBUS on a later write), and it is registered with
multiprocessing's resource tracker, so a process that dies without closing it does not
leave it behind in /dev/shm. close() unlinks it and takes it off the tracker's list, so
the tracker has nothing to clean up and warns about nothing at exit.
"""

import itertools
import mmap
import os
import re
import secrets
import weakref
from multiprocessing import resource_tracker
from typing import Any, Callable, List, NamedTuple, Optional, Tuple, Union

import _posixshmem  # shm_open/shm_unlink, as used by multiprocessing.shared_memory
import grpc
import numpy as np

from tokensampler import _logits
from tokensampler._errors import SamplerError, invalid
from tokensampler.v1 import sampler_pb2 as pb2

# dtype name -> (NumPy storage dtype, tokensampler.v1.Dtype, torch dtype name). The wire
# format is little-endian; bfloat16 is kept as its 16 bits (NumPy has no bfloat16).
_DTYPES = {
    "float32": (np.dtype("<f4"), _logits.DTYPE_FLOAT32, "float32"),
    "float16": (np.dtype("<f2"), _logits.DTYPE_FLOAT16, "float16"),
    "bfloat16": (np.dtype("<u2"), _logits.DTYPE_BFLOAT16, "bfloat16"),
}
_TRACKER_TYPE = "shared_memory"
_counter = itertools.count()


class SharedMemoryRef(NamedTuple):
    """Where one row lies: Logits.shared_memory of the proto."""

    region: str
    offset: int
    byte_size: int


def dtype_name(dtype: Any) -> str:
    """"float32" / "float16" / "bfloat16" from a name, a NumPy dtype or a torch dtype."""
    if isinstance(dtype, str):
        name = dtype
    elif type(dtype).__module__.startswith("torch"):
        name = str(dtype).replace("torch.", "", 1)
    else:
        try:
            name = np.dtype(dtype).name
        except TypeError:
            name = repr(dtype)
    if name not in _DTYPES:
        raise invalid("dtype", f"expected float32, float16 or bfloat16, got {dtype!r}")
    return name


def float_to_bfloat16_bits(values: np.ndarray) -> np.ndarray:
    """Float values as bfloat16 bits (uint16), rounded to nearest even like torch's .to().

    NaN stays NaN (quieted); overflow rounds to +-inf. Vectorized: no Python loop.
    """
    floats = np.ascontiguousarray(values, dtype=np.float32)
    bits = floats.view(np.uint32)
    # Adding 0x7FFF plus the lowest kept bit rounds half to even; uint32 wraps only for
    # NaN payloads, which are replaced below.
    out = ((bits + (np.uint32(0x7FFF) + ((bits >> 16) & 1))) >> 16).astype(np.uint16)
    nan = np.isnan(floats)
    if nan.any():
        out[nan] = (bits[nan] >> 16).astype(np.uint16) | np.uint16(0x0040)
    return out


def _create_object(prefix: str, byte_size: int) -> Tuple[str, mmap.mmap]:
    """Creates, sizes and maps a new object "<prefix>-py-<pid>-<n>-<random>"."""
    # The random part keeps processes of different PID namespaces (two containers
    # sharing /dev/shm) from colliding; O_EXCL makes a collision an error, never a share.
    while True:
        key = f"{prefix}-py-{os.getpid()}-{next(_counter)}-{secrets.token_hex(4)}"
        try:
            fd = _posixshmem.shm_open(key, os.O_CREAT | os.O_EXCL | os.O_RDWR, mode=0o600)
            break
        except FileExistsError:
            continue
        except OSError as e:
            raise SamplerError(grpc.StatusCode.FAILED_PRECONDITION,
                               f"shared_logits: cannot create {key}: {e.strerror}") from None
    resource_tracker.register(key, _TRACKER_TYPE)
    try:
        os.ftruncate(fd, byte_size)
        if hasattr(os, "posix_fallocate"):
            os.posix_fallocate(fd, 0, byte_size)
        mapping = mmap.mmap(fd, byte_size)
    except OSError as e:
        _unlink(key)
        raise SamplerError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                           f"shared_logits: cannot allocate {byte_size} bytes for {key}: "
                           f"{e.strerror}") from None
    finally:
        os.close(fd)
    return key, mapping


def _unlink(key: str) -> None:
    try:
        _posixshmem.shm_unlink(key)
    except FileNotFoundError:
        pass
    resource_tracker.unregister(key, _TRACKER_TYPE)


def _release(key: str, mapping: mmap.mmap, owner_pid: int) -> None:
    """Unlinks the object and unmaps it (once the last NumPy view of it is gone)."""
    if os.getpid() != owner_pid:  # a forked child: the object is its parent's
        return
    _unlink(key)
    try:
        mapping.close()
    except BufferError:
        pass  # views still exist: the mapping goes with the last of them


class SharedRows:
    """Some rows of a SharedLogits, to pass as `logits`: one row (shared[i]) is 1-D,
    a slice (shared[a:b], or the SharedLogits itself) is a batch.

    Each row is sent as a SharedMemoryRef; its values are read by the server during
    the call, so keep them unchanged until the call has returned.
    """

    def __init__(self, owner: "SharedLogitsBase", index: Union[int, slice]):
        self._owner = owner
        self._index = index
        self._rows = range(owner.rows)[index]

    @property
    def array(self) -> np.ndarray:
        """The writable NumPy view of these rows ((vocab,) or (n, vocab))."""
        return self._owner.array[self._index]

    def write(self, values: Any) -> None:
        """Writes values of these rows' shape: a torch tensor (any float dtype, any
        device), a NumPy array (float16/32/64) or a list, converted to the region's dtype
        (bfloat16 rounded to nearest even) without a Python loop."""
        _write(self.array, self._owner.dtype, values)

    def _shared_refs(self, field: str) -> "_logits.EncodedLogits":
        """The rows as SharedMemoryRefs; FAILED_PRECONDITION naming `field` once closed."""
        owner = self._owner
        if owner.closed:
            raise SamplerError(grpc.StatusCode.FAILED_PRECONDITION,
                               f"{field}: shared logits {owner.name!r} are closed", field)
        size = owner.vocab * owner._storage.itemsize
        rows: List[Any] = [SharedMemoryRef(owner.name, i * size, size) for i in
                           (self._rows if isinstance(self._rows, range) else [self._rows])]
        return _logits.EncodedLogits(rows, owner._wire_dtype, isinstance(self._index, slice))


class SharedLogitsBase:
    """A writable (rows, vocab) NumPy view of a shared memory region the server reads.

    Made by Client.shared_logits / aio.Client.shared_logits, which register it; the
    subclasses add close(). Attributes: name (the region), key (the POSIX object), rows,
    vocab, dtype ("float32", "float16", "bfloat16"), nbytes, closed.
    """

    def __init__(self, rows: int, vocab: int, dtype: Any, prefix: str, name: Optional[str],
                 unregister: Callable[[str], Any]):
        for field, value in (("rows", rows), ("vocab", vocab)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise invalid(field, f"expected an integer >= 1, got {value!r}")
        self.dtype = dtype_name(dtype)
        self._storage, self._wire_dtype, _ = _DTYPES[self.dtype]
        self.rows, self.vocab = int(rows), int(vocab)
        self.nbytes = self.rows * self.vocab * self._storage.itemsize
        self.key, mapping = _create_object(prefix, self.nbytes)
        # By default the region is named after the object, in the characters and length
        # (the unique end) a region name allows.
        self.name = name if name is not None else re.sub(r"[^A-Za-z0-9_.-]", "_",
                                                         self.key[1:])[-128:]
        self._unregister = unregister
        self._array: Optional[np.ndarray] = np.frombuffer(
            mapping, dtype=self._storage).reshape(self.rows, self.vocab)
        self._finalizer = weakref.finalize(self, _release, self.key, mapping, os.getpid())

    @property
    def closed(self) -> bool:
        return self._array is None

    @property
    def array(self) -> np.ndarray:
        """The writable (rows, vocab) NumPy view: float32, float16, or uint16 holding
        bfloat16 bits (write those with write())."""
        if self._array is None:
            raise SamplerError(grpc.StatusCode.FAILED_PRECONDITION,
                               f"shared logits {self.name!r} are closed")
        return self._array

    def write(self, values: Any) -> None:
        """Writes all rows; see SharedRows.write."""
        _write(self.array, self.dtype, values)

    def __getitem__(self, index: Union[int, slice]) -> SharedRows:
        """shared[i]: row i (1-D logits); shared[a:b]: a batch of rows."""
        if isinstance(index, (int, np.integer)) and not isinstance(index, bool):
            index = int(index)
            if not -self.rows <= index < self.rows:
                raise IndexError(f"row {index} out of range for {self.rows} rows")
        elif not isinstance(index, slice):
            raise TypeError(f"shared logits are indexed by an int or a slice, got {index!r}")
        return SharedRows(self, index)

    def __len__(self) -> int:
        return self.rows

    def _shared_refs(self, field: str) -> "_logits.EncodedLogits":
        return SharedRows(self, slice(None))._shared_refs(field)

    def register_request(self) -> "pb2.RegisterSharedMemoryRequest":
        """The whole object as one region."""
        return pb2.RegisterSharedMemoryRequest(name=self.name, key=self.key, offset=0,
                                               byte_size=self.nbytes)

    def _begin_close(self) -> bool:
        """Marks it closed; False if it already was. The caller unregisters, then calls
        _release_local (also when unregistering failed)."""
        if self._array is None:
            return False
        self._array = None
        return True

    def _release_local(self) -> None:
        """Unlinks and unmaps the object (no RPC); what the garbage collector does too."""
        self._array = None
        self._finalizer()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return (f"<{type(self).__name__} {self.name!r} {self.rows}x{self.vocab} "
                f"{self.dtype} {state}>")


class SharedLogits(SharedLogitsBase):
    """Shared logits of tokensampler.Client; see Client.shared_logits.

    close() (or leaving the `with`) unregisters the region, then unlinks and unmaps the
    object, also when unregistering failed; it raises that failure afterwards (not while
    an exception leaves the `with`), except NOT_FOUND (the region is gone already). A
    second close() does nothing; using it afterwards raises FAILED_PRECONDITION.
    """

    def close(self) -> None:
        if not self._begin_close():
            return
        try:
            self._unregister(self.name)
        except SamplerError as e:
            if e.code != grpc.StatusCode.NOT_FOUND:  # NOT_FOUND: the region is gone already
                raise
        finally:
            self._release_local()

    def __enter__(self) -> "SharedLogits":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        try:
            self.close()
        except SamplerError:
            if kind is None:
                raise


class AsyncSharedLogits(SharedLogitsBase):
    """Shared logits of tokensampler.aio.Client: as SharedLogits, with `await close()`
    and `async with`."""

    async def close(self) -> None:
        if not self._begin_close():
            return
        try:
            await self._unregister(self.name)
        except SamplerError as e:
            if e.code != grpc.StatusCode.NOT_FOUND:  # NOT_FOUND: the region is gone already
                raise
        finally:
            self._release_local()

    async def __aenter__(self) -> "AsyncSharedLogits":
        return self

    async def __aexit__(self, kind, value, traceback) -> None:
        try:
            await self.close()
        except SamplerError:
            if kind is None:
                raise


def _write(target: np.ndarray, dtype: str, values: Any, field: str = "values") -> None:
    source = _as_storage(values, dtype, field)
    if source.shape != target.shape:
        raise invalid(field, f"shape {tuple(source.shape)} does not match the rows' "
                             f"{tuple(target.shape)}")
    np.copyto(target, source, casting="unsafe")


def _as_storage(values: Any, dtype: str, field: str) -> np.ndarray:
    """values converted to the storage of `dtype` (bfloat16 as uint16 bits)."""
    if _logits.is_torch_tensor(values):
        import torch  # the caller already has it loaded

        tensor = values.detach()
        if not tensor.is_floating_point():
            raise invalid(field, f"expected a floating-point tensor, got {tensor.dtype}")
        # Convert on the tensor's device first: a CUDA tensor crosses to the host once,
        # already in the region's (narrower) dtype.
        tensor = tensor.to(device="cpu", dtype=getattr(torch, _DTYPES[dtype][2])).contiguous()
        if dtype == "bfloat16":
            return tensor.view(torch.int16).numpy().view(np.uint16)
        return tensor.numpy()
    if isinstance(values, (list, tuple)):
        try:
            values = np.asarray(values, dtype=np.float32)
        except (TypeError, ValueError) as e:
            raise invalid(field, f"not a list of numbers ({e})") from None
    if not isinstance(values, np.ndarray):
        raise invalid(field, f"expected a torch tensor, a numpy array or a list of numbers, "
                             f"got {type(values).__name__}")
    if values.dtype.name == "bfloat16":  # ml_dtypes' bfloat16: already the right bits
        return values.view(np.uint16) if dtype == "bfloat16" else values.astype(np.float32)
    if values.dtype.kind != "f":
        raise invalid(field, f"expected floating-point values, got numpy dtype {values.dtype}")
    if dtype == "bfloat16":
        return float_to_bfloat16_bits(values)
    return values
