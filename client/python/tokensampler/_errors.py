"""SamplerError: every failed call, with its gRPC code and the field path the server named."""

import re
from typing import Optional, Sequence

import grpc

# Codes whose messages start with the request field they are about, e.g.
# "rows[3].params.top_p: must be in (0, 1], got 1.5" (README, "Errors").
_FIELD_CODES = frozenset({
    grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.PERMISSION_DENIED,
})
_FIELD_RE = re.compile(r"^([A-Za-z_]\w*(?:\[[^\]]*\]|\.[A-Za-z_]\w*)*): ")
_ROW_RE = re.compile(r"^rows\[(\d+)\]")


class SamplerError(Exception):
    """A call failed, or the input was rejected before the call.

    Attributes:
      code: the grpc.StatusCode (INVALID_ARGUMENT for input the client rejects itself).
      message: the server's message, unchanged, e.g.
        "rows[0].params.top_p: must be in (0, 1], got 1.5".
      field: the field path the message starts with ("rows[0].params.top_p"), or None.
      sequence_id: in a session, the sequence of the row the field path names, or None.
    """

    def __init__(self, code: grpc.StatusCode, message: str, field: Optional[str] = None,
                 sequence_id: Optional[str] = None):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.field = field
        self.sequence_id = sequence_id

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError,
                       sequence_ids: Sequence[str] = ()) -> "SamplerError":
        """Wraps a grpc.RpcError (sync or aio); sequence_ids maps rows[i] to a sequence."""
        code = error.code()
        message = error.details() or ""
        field = sequence_id = None
        if code in _FIELD_CODES:
            match = _FIELD_RE.match(message)
            if match:
                field = match.group(1)
                row = _ROW_RE.match(field)
                if row and int(row.group(1)) < len(sequence_ids):
                    sequence_id = sequence_ids[int(row.group(1))]
        return cls(code, message, field, sequence_id)


def invalid(field: str, problem: str) -> SamplerError:
    """An input the client rejects before calling: INVALID_ARGUMENT naming the argument."""
    return SamplerError(grpc.StatusCode.INVALID_ARGUMENT, f"{field}: {problem}", field)
