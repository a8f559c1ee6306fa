"""Requests from Python arguments and results from responses; shared by Client and aio.

Sampling parameters are keyword arguments named as the proto's SamplingParams fields
(read from its descriptor, so a field added to the proto is accepted at once). None, or
leaving a parameter out, leaves the field unset: the server's "off" applies.
"""

import dataclasses
import operator
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import grpc
import numpy as np
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor

from tokensampler import _logits
from tokensampler._errors import SamplerError, invalid
from tokensampler._results import Distribution, HealthStatus, SampleResult, ServerInfo
from tokensampler.v1 import sampler_pb2 as pb2

_INT_TYPES = {FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_INT64,
              FieldDescriptor.CPPTYPE_UINT32, FieldDescriptor.CPPTYPE_UINT64}
_FLOAT_TYPES = {FieldDescriptor.CPPTYPE_FLOAT, FieldDescriptor.CPPTYPE_DOUBLE}


def _scalar(field: FieldDescriptor, value: Any, path: str) -> Any:
    try:
        if field.cpp_type in _INT_TYPES:
            return operator.index(value)
        if field.cpp_type in _FLOAT_TYPES:
            if isinstance(value, (str, bytes)):
                raise TypeError
            return float(value)
        if field.cpp_type == FieldDescriptor.CPPTYPE_BOOL:
            return bool(value)
        if field.cpp_type == FieldDescriptor.CPPTYPE_STRING:
            return str(value)
        if field.cpp_type == FieldDescriptor.CPPTYPE_ENUM:
            return _enum_value(field, value, path)
    except (TypeError, ValueError):
        pass
    kind = {**{t: "an integer" for t in _INT_TYPES}, **{t: "a number" for t in _FLOAT_TYPES},
            FieldDescriptor.CPPTYPE_BOOL: "a bool", FieldDescriptor.CPPTYPE_STRING: "a string",
            FieldDescriptor.CPPTYPE_ENUM: "an enum name"}[field.cpp_type]
    raise invalid(path, f"expected {kind}, got {value!r}")


def _enum_value(field: FieldDescriptor, value: Any, path: str) -> int:
    """An enum given as its number, full name ("PRESET_HF") or short name ("hf")."""
    enum = field.enum_type
    if isinstance(value, str):
        prefix = enum.values[0].name.rsplit("UNSPECIFIED", 1)[0]  # "PRESET_"
        name = value.upper()
        found = enum.values_by_name.get(name) or enum.values_by_name.get(prefix + name)
        if found is None:
            short = ", ".join(v.name[len(prefix):].lower() for v in enum.values[1:])
            raise invalid(path, f"unknown {enum.name} {value!r}; one of {short}")
        return found.number
    number = operator.index(value)
    if number not in enum.values_by_number:
        raise invalid(path, f"unknown {enum.name} value {number}")
    return number


def _message(field: FieldDescriptor, target: Any, value: Any, path: str) -> None:
    """Fills a message field from a dict in protobuf's JSON mapping (proto field names)."""
    try:
        json_format.ParseDict(value, target)
    except (json_format.ParseError, AttributeError, TypeError) as e:
        raise invalid(path, f"expected a dict for {field.message_type.name}: {e}") from None


def fill_params(params: Any, values: Mapping[str, Any], path: str) -> None:
    """Sets fields of params (a SamplingParams) from keyword arguments.

    None leaves a field unset. Scalars, enums (number or name), repeated fields, maps and
    message fields (a dict in protobuf's JSON mapping) are accepted, so fields the proto
    gains work without a client change.
    """
    fields = params.DESCRIPTOR.fields_by_name
    for name, value in values.items():
        field = fields.get(name)
        if field is None:
            raise TypeError(f"unknown sampling parameter {name!r}; known: "
                            + ", ".join(f.name for f in params.DESCRIPTOR.fields))
        if value is None:
            continue
        where = f"{path}.{name}"
        if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE and \
                not field.message_type.GetOptions().map_entry:
            if field.label == FieldDescriptor.LABEL_REPEATED:
                for i, item in enumerate(value):
                    if field.message_type.name == "TokenSequence" and \
                            isinstance(item, (list, tuple, np.ndarray)):
                        # bad_words=[[13, 7], [99]]: a token list per sequence.
                        getattr(params, name).add().token_ids.extend(
                            _token_list(item, f"{where}[{i}]"))
                        continue
                    _message(field, getattr(params, name).add(), item, f"{where}[{i}]")
            else:
                _message(field, getattr(params, name), value, where)
        elif field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_field, value_field = field.message_type.fields
            target = getattr(params, name)
            for k, v in dict(value).items():
                target[_scalar(key_field, k, f"{where}[{k!r}]")] = \
                    _scalar(value_field, v, f"{where}[{k!r}]")
        elif field.label == FieldDescriptor.LABEL_REPEATED:
            items = np.asarray(value).reshape(-1).tolist() if isinstance(value, np.ndarray) \
                else list(value)
            getattr(params, name).extend(
                _scalar(field, v, f"{where}[{i}]") for i, v in enumerate(items))
        else:
            setattr(params, name, _scalar(field, value, where))


def _token_list(value: Any, path: str) -> List[int]:
    items = np.asarray(value).reshape(-1).tolist() if isinstance(value, np.ndarray) else value
    out = []
    for i, v in enumerate(items):
        try:
            out.append(operator.index(v))
        except TypeError:
            raise invalid(f"{path}[{i}]", f"expected a token id, got {v!r}") from None
    return out


def _per_row(value: Any, rows: int, nested: bool) -> List[Any]:
    """A value for every row: given once (shared) or as one entry per row."""
    is_list = isinstance(value, (list, tuple, np.ndarray))
    per_row = is_list and (not nested or (len(value) > 0 and isinstance(
        value[0], (list, tuple, np.ndarray))))
    if per_row:
        if len(value) != rows:
            raise invalid("rows", f"{len(value)} per-row values for {rows} rows")
        return list(value)
    return [value] * rows


# Row fields given as keyword arguments next to the sampling parameters.
ROW_FIELDS = ("allowed_token_bitmask", "num_prompt_tokens")


def _bitmask_bytes(value: Any, path: str) -> bytes:
    """A token bitmask as bytes: bytes as they are, or int32/uint32 words (an array,
    e.g. xgrammar's bitmask tensor .numpy(), or a list) as little-endian words."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if _logits.is_torch_tensor(value):
        value = value.cpu().numpy()
    words = np.asarray(value)
    if words.dtype.kind not in "iu":
        raise invalid(path, f"expected bytes or int32/uint32 words, got dtype {words.dtype}")
    return words.astype(np.int64).astype("<u4").reshape(-1).tobytes()


def _set_row_fields(row: Any, values: Mapping[str, Any], index: int, rows: int,
                    batched: bool) -> None:
    """allowed_token_bitmask (one for all rows, or a 2-D array with one per row) and
    num_prompt_tokens (an int, or one per row)."""
    mask = values.get("allowed_token_bitmask")
    if mask is not None:
        if batched and not isinstance(mask, (bytes, bytearray, memoryview)) and \
                np.ndim(mask if not _logits.is_torch_tensor(mask) else mask.cpu()) == 2:
            if len(mask) != rows:
                raise invalid("allowed_token_bitmask", f"{len(mask)} masks for {rows} rows")
            mask = mask[index]
        row.allowed_token_bitmask = _bitmask_bytes(mask, "allowed_token_bitmask")
    prompt = values.get("num_prompt_tokens")
    if prompt is not None:
        if batched and isinstance(prompt, (list, tuple, np.ndarray)):
            prompt = _per_row(prompt, rows, nested=False)[index]
        row.num_prompt_tokens = operator.index(prompt)


def _split(params: Mapping[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """The keyword arguments as (sampling parameters, row fields)."""
    row = {k: v for k, v in params.items() if k in ROW_FIELDS}
    return {k: v for k, v in params.items() if k not in ROW_FIELDS}, row


def _set_logits(target: "pb2.Logits", data: Any, dtype: int) -> None:
    """One row's Logits: its bytes as raw, or a reference into a shared memory region."""
    if isinstance(data, bytes):
        target.raw = data
    else:
        ref = target.shared_memory
        ref.region, ref.offset, ref.byte_size = data
    target.dtype = dtype


def build_request(logits: Any, step: Any, context_token_ids: Any,
                  params: Mapping[str, Any]) -> Tuple["pb2.SampleRequest", bool]:
    """A stateless SampleRequest; returns it and whether the logits were a batch (2-D).

    step and context_token_ids apply to every row, or give one entry per row of a batch.
    """
    encoded = _logits.encode(logits)
    n = len(encoded.rows)
    steps = _per_row(step, n, nested=False) if encoded.batched else [step]
    contexts = (_per_row(context_token_ids, n, nested=True) if encoded.batched
                else [context_token_ids])
    params, row_fields = _split(params)
    request = pb2.SampleRequest()
    for i, data in enumerate(encoded.rows):
        row = request.rows.add()
        _set_logits(row.logits, data, encoded.dtype)
        fill_params(row.params, params, "params")
        _set_row_fields(row, row_fields, i, n, encoded.batched)
        if steps[i]:
            try:
                row.step = operator.index(steps[i])
            except (TypeError, ValueError):
                raise invalid("step", f"expected an integer in [0, 2^64), got {steps[i]!r}")
        if contexts[i] is not None:
            row.context_token_ids.extend(_token_list(contexts[i], "context_token_ids"))
    return request, encoded.batched


def build_step(rows: Mapping[str, Any], shared: Mapping[str, Any],
               per_sequence: Optional[Mapping[str, Mapping[str, Any]]],
               context_token_ids: Optional[Mapping[str, Any]],
               end: Iterable[str]) -> Tuple["pb2.SampleRequest", List[str]]:
    """One SampleStream message: a row per sequence (in the mapping's order).

    per_sequence[id] overrides the shared parameters for that sequence;
    context_token_ids[id] is appended to that sequence's history before sampling; the
    sequences in `end` are freed after this step (sampled first if they have a row).
    Returns the message and the sequence id of each row.
    """
    per_sequence = per_sequence or {}
    context_token_ids = context_token_ids or {}
    end = list(end)
    for name, mapping in (("params", per_sequence), ("context_token_ids", context_token_ids)):
        for sequence_id in mapping:
            if sequence_id not in rows:
                raise invalid(f"{name}[{sequence_id!r}]", "no row for this sequence in this step")
    request = pb2.SampleRequest()
    ids = []
    for sequence_id, logits in rows.items():
        where = f"rows[{sequence_id!r}]"
        encoded = _logits.encode(logits, where)
        if encoded.batched:
            raise invalid(where, "a session row must be 1-D (one sequence's logits)")
        row = request.rows.add()
        row.sequence_id = str(sequence_id)
        _set_logits(row.logits, encoded.rows[0], encoded.dtype)
        seq_params, row_fields = _split({**shared, **per_sequence.get(sequence_id, {})})
        fill_params(row.params, seq_params, "params")
        _set_row_fields(row, row_fields, 0, 1, False)
        if sequence_id in context_token_ids:
            row.context_token_ids.extend(
                _token_list(context_token_ids[sequence_id], f"context_token_ids[{sequence_id!r}]"))
        row.end_sequence = sequence_id in end
        ids.append(str(sequence_id))
    for sequence_id in end:
        if sequence_id not in rows:
            request.rows.add(sequence_id=str(sequence_id), end_sequence=True)
            ids.append(str(sequence_id))
    return request, ids


def sample_result(result: "pb2.SampleResult") -> SampleResult:
    samples = result.samples
    k = len(samples[0].top_logprobs) if samples else 0
    top_ids = np.array([[t.token_id for t in s.top_logprobs] for s in samples],
                       dtype=np.int32).reshape(len(samples), k)
    top_lp = np.array([[t.logprob for t in s.top_logprobs] for s in samples],
                      dtype=np.float32).reshape(len(samples), k)
    asked = len(samples[0].token_logprobs) if samples else 0
    return SampleResult(
        token_ids=np.array([s.token_id for s in samples], dtype=np.int32),
        logprobs=np.array([s.logprob for s in samples], dtype=np.float32),
        top_token_ids=top_ids, top_logprobs=top_lp,
        seed=int(result.seed), step=int(result.step), sequence_id=result.sequence_id,
        ranks=np.array([s.rank for s in samples], dtype=np.int32),
        token_logprobs=np.array([[t.logprob for t in s.token_logprobs] for s in samples],
                                dtype=np.float32).reshape(len(samples), asked),
        kept_set=bytes(result.kept_set))


def sample_results(response: "pb2.SampleResponse", batched: bool):
    results = [sample_result(r) for r in response.results]
    return results if batched else results[0]


def distributions(response: "pb2.DistributionResponse", batched: bool):
    out = [Distribution(token_ids=np.array(d.token_ids, dtype=np.int32),
                        probs=np.array(d.probs, dtype=np.float32),
                        sequence_id=d.sequence_id) for d in response.distributions]
    return out if batched else out[0]


def step_results(response: "pb2.SampleResponse", ids: Sequence[str]) -> Dict[str, SampleResult]:
    if len(response.results) != len(ids):
        raise RuntimeError(f"session: {len(response.results)} results for {len(ids)} rows")
    return {r.sequence_id: sample_result(r) for r in response.results}


def _plain(field: FieldDescriptor, value: Any) -> Any:
    """A protobuf field value as plain Python (enums by name, messages as dicts)."""
    if field.label == FieldDescriptor.LABEL_REPEATED:
        return [_plain_one(field, v) for v in value]
    return _plain_one(field, value)


def _plain_one(field: FieldDescriptor, value: Any) -> Any:
    if field.cpp_type == FieldDescriptor.CPPTYPE_ENUM:
        found = field.enum_type.values_by_number.get(value)
        return found.name if found else value
    if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
        return {f.name: _plain(f, v) for f, v in value.ListFields()}
    return value


_SERVER_INFO_NAMED = {f.name for f in dataclasses.fields(ServerInfo)}


def server_info(info: "pb2.ServerInfo") -> ServerInfo:
    extra = {f.name: _plain(f, getattr(info, f.name)) for f in info.DESCRIPTOR.fields
             if f.name not in _SERVER_INFO_NAMED}
    return ServerInfo(
        version=info.version, simd_target=info.simd_target,
        presets=[pb2.Preset.Name(p) for p in info.presets],
        dtypes=[pb2.Dtype.Name(d) for d in info.dtypes],
        max_vocab=info.max_vocab, max_rows_per_request=info.max_rows_per_request,
        max_message_bytes=info.max_message_bytes,
        max_sequences_per_stream=info.max_sequences_per_stream,
        max_history_tokens=info.max_history_tokens, max_num_samples=info.max_num_samples,
        max_top_logprobs=info.max_top_logprobs, worker_threads=info.worker_threads,
        requests_served=info.requests_served, rows_served=info.rows_served,
        instance=info.instance,
        shared_memory_mode=pb2.SharedMemoryMode.Name(info.shared_memory_mode),
        shared_memory_prefix=info.shared_memory_prefix,
        max_shared_memory_regions=info.max_shared_memory_regions,
        max_shared_memory_bytes=info.max_shared_memory_bytes, extra=extra)


# grpc.health.v1.Health/Check without its generated stubs: HealthCheckRequest is
# {1: string service}, HealthCheckResponse is {1: enum status}.
HEALTH_CHECK = "/grpc.health.v1.Health/Check"


def health_request(service: str) -> bytes:
    data = service.encode()
    length, size = bytearray(), len(data)
    while True:
        length.append((size & 0x7F) | (0x80 if size > 0x7F else 0))
        size >>= 7
        if not size:
            break
    return (b"\x0a" + bytes(length) + data) if data else b""


def health_of_error(error: SamplerError) -> HealthStatus:
    """A failed Check: NOT_FOUND means the server does not know the service; else raise."""
    if error.code == grpc.StatusCode.NOT_FOUND:
        return HealthStatus.SERVICE_UNKNOWN
    raise error


def health_status(response: bytes) -> HealthStatus:
    status, i = 0, 0
    while i < len(response):
        tag = response[i]
        i += 1
        value, shift = 0, 0
        while i < len(response):  # every field of this message is a varint
            byte = response[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        if tag == 0x08:
            status = value
    try:
        return HealthStatus(status)
    except ValueError:
        return HealthStatus.UNKNOWN
