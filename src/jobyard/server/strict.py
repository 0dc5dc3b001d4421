"""Strict request parsing for the joblet services: refuse, never guess.

Joblet's protos changed layout between releases while keeping message names (a 50b8d0a
``RunJobRequest`` puts ``name`` at 1 and ``command`` at 2, where the seed's ``RunJobReq``
has ``command`` at 1). protobuf silently keeps fields it does not know, and a field whose wire
type does not match its declaration is kept as unknown too, so a client of another era would
have its request reinterpreted. This interceptor parses every ``joblet.*`` request itself and
answers INVALID_ARGUMENT, naming the message, when anything in it is unknown; the servicer
never sees such a request, so nothing runs.

Limit: a request whose every field happens to fit the expected layout (same numbers, same wire
types) is indistinguishable on the wire and is accepted as the expected message.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import descriptor_pool, message_factory, unknown_fields
from google.protobuf.message import DecodeError, Message

STRICT_PREFIX = "/joblet."
_WIRE_TYPES = {0: "VARINT", 1: "I64", 2: "LEN", 3: "SGROUP", 4: "EGROUP", 5: "I32"}


@dataclasses.dataclass(frozen=True, slots=True)
class MalformedRequest:
    """Stands in for a request that did not parse cleanly; the handler refuses it."""

    reason: str


def check_message(msg: Message) -> str | None:
    """The first unknown field in ``msg`` or any message inside it, described; else None."""
    unknown = unknown_fields.UnknownFieldSet(msg)
    for i in range(len(unknown)):
        field = unknown[i]
        wire = _WIRE_TYPES.get(field.wire_type, str(field.wire_type))
        where = msg.DESCRIPTOR.full_name
        return f"field {field.field_number} with wire type {wire} is not part of {where}"
    for desc, value in msg.ListFields():
        kind = desc.message_type
        if kind is None or kind.GetOptions().map_entry:
            continue  # map entries are string -> string here: nothing nested to check
        items = value if desc.is_repeated else [value]
        for item in items:
            problem = check_message(item)
            if problem:
                return problem
    return None


def strict_parser(message_class: type[Message]) -> Callable[[bytes], Message | MalformedRequest]:
    """A request deserializer that yields :class:`MalformedRequest` instead of guessing."""
    name = message_class.DESCRIPTOR.full_name

    def parse(data: bytes) -> Message | MalformedRequest:
        msg = message_class()
        try:
            msg.ParseFromString(data)
        except DecodeError as exc:
            return MalformedRequest(f"invalid request: does not parse as {name}: {exc}")
        problem = check_message(msg)
        if problem:
            return MalformedRequest(
                f"invalid request: does not parse as {name}: {problem} "
                "(built from another version of the Joblet protos?); nothing was run"
            )
        return msg

    return parse


def _request_class(method: str) -> type[Message]:
    """``/joblet.JobService/RunJob`` -> the generated class of its input message."""
    service, rpc = method.lstrip("/").split("/", 1)
    desc = descriptor_pool.Default().FindServiceByName(service).FindMethodByName(rpc)
    return message_factory.GetMessageClass(desc.input_type)


class StrictRequestInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Parses ``joblet.*`` requests strictly (see the module docstring)."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or not details.method.startswith(STRICT_PREFIX):
            return handler
        parse = strict_parser(_request_class(details.method))
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _unary(handler.unary_unary), parse, handler.response_serializer
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _stream(handler.unary_stream), parse, handler.response_serializer
            )
        return handler


def _unary(inner: Any) -> Any:
    async def unary(request: Any, context: Any) -> Any:
        if isinstance(request, MalformedRequest):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.reason)
        return await inner(request, context)

    return unary


def _stream(inner: Any) -> Any:
    async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
        if isinstance(request, MalformedRequest):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.reason)
        async for item in inner(request, context):
            yield item

    return stream
