"""Strict parsing of joblet requests: another era's layout is refused, never reinterpreted."""

from __future__ import annotations

from jobyard.api.gen import joblet_pb2 as pb
from jobyard.server.strict import MalformedRequest, strict_parser
from tests.joblet_layouts import ERA


def test_a_clean_request_parses_as_itself() -> None:
    request = pb.RunJobReq(command="echo", args=["hi"], maxCPU=50, labels={"a": "b"})
    assert strict_parser(pb.RunJobReq)(request.SerializeToString()) == request


def test_a_50b8d0a_run_job_request_is_malformed_not_reinterpreted() -> None:
    data = ERA["RunJobRequest"](name="greet", command="echo", args=["hi"]).SerializeToString()
    got = strict_parser(pb.RunJobReq)(data)
    assert isinstance(got, MalformedRequest)
    assert "field 3 with wire type LEN is not part of joblet.RunJobReq" in got.reason


def test_an_unknown_field_inside_a_nested_message_is_found() -> None:
    upload = pb.FileUpload(path="a").SerializeToString() + b"\x48\x01"  # field 9, varint
    data = b"\x2a" + bytes([len(upload)]) + upload  # RunWorkflowRequest.workflowFiles
    got = strict_parser(pb.RunWorkflowRequest)(data)
    assert isinstance(got, MalformedRequest)
    assert "not part of joblet.FileUpload" in got.reason


def test_bytes_that_do_not_parse_are_malformed() -> None:
    got = strict_parser(pb.GetJobStatusReq)(b"\x0a\x02\xff\xfe")  # id: invalid UTF-8
    assert isinstance(got, MalformedRequest)
    assert "does not parse as joblet.GetJobStatusReq" in got.reason
