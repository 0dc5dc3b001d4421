"""Messages in the layouts of real Joblet releases (shared/reference/joblet-wire.md), built
from hand-made descriptors: what a client generated from those protos sends and decodes.

Kept apart from jobyard's generated stubs on purpose (their own descriptor pool, package
``joblet_era``): a test that used jobyard's own messages on both sides could not fail.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_T = descriptor_pb2.FieldDescriptorProto
_SCALARS = {
    "string": _T.TYPE_STRING, "bytes": _T.TYPE_BYTES, "bool": _T.TYPE_BOOL,
    "int32": _T.TYPE_INT32, "int64": _T.TYPE_INT64, "uint32": _T.TYPE_UINT32,
    "double": _T.TYPE_DOUBLE,
}  # fmt: skip

# name -> [(field, number, type)]; "repeated X" and message types by name.
# fmt: off
LAYOUTS: dict[str, list[tuple[str, int, str]]] = {
    # joblet.JobletService era (7e244ec)
    "RunJobRes": [
        ("id", 1, "string"), ("command", 2, "string"), ("args", 3, "repeated string"),
        ("maxCPU", 4, "int32"), ("maxMemory", 5, "int32"), ("maxIOBPS", 6, "int32"),
        ("status", 7, "string"), ("startTime", 8, "string"), ("endTime", 9, "string"),
        ("exitCode", 10, "int32"),
    ],
    # 50b8d0a (the seed's commit)
    "RunJobRequest": [
        ("name", 1, "string"), ("command", 2, "string"), ("args", 3, "repeated string"),
        ("maxCpu", 4, "int32"), ("cpuCores", 5, "string"), ("maxMemory", 6, "int32"),
    ],
    "Timestamp": [("seconds", 1, "int64"), ("nanos", 2, "int32")],
    "FileUpload": [
        ("path", 1, "string"), ("content", 2, "bytes"), ("mode", 3, "uint32"),
        ("isDirectory", 4, "bool"),
    ],
    "RunWorkflowRequest": [
        ("workflow", 1, "string"), ("totalJobs", 2, "int32"), ("jobOrder", 3, "repeated string"),
        ("yamlContent", 4, "string"), ("workflowFiles", 5, "repeated FileUpload"),
    ],
    "RunWorkflowResponse": [("workflowUuid", 1, "string"), ("status", 2, "string")],
    "GetWorkflowStatusRequest": [("workflowUuid", 1, "string")],
    "ListWorkflowsRequest": [("includeCompleted", 1, "bool")],
    "WorkflowInfo": [
        ("uuid", 1, "string"), ("workflow", 2, "string"), ("status", 3, "string"),
        ("totalJobs", 4, "int32"), ("completedJobs", 5, "int32"), ("failedJobs", 6, "int32"),
        ("canceledJobs", 7, "int32"), ("createdAt", 8, "Timestamp"),
        ("startedAt", 9, "Timestamp"), ("completedAt", 10, "Timestamp"),
        ("yamlContent", 11, "string"),
    ],
    "WorkflowJob": [
        ("jobUuid", 1, "string"), ("jobName", 2, "string"), ("status", 3, "string"),
        ("dependencies", 4, "repeated string"), ("startTime", 5, "Timestamp"),
        ("endTime", 6, "Timestamp"), ("exitCode", 7, "int32"),
    ],
    "GetWorkflowStatusResponse": [
        ("workflow", 1, "WorkflowInfo"), ("jobs", 2, "repeated WorkflowJob"),
    ],
    "ListWorkflowsResponse": [("workflows", 1, "repeated WorkflowInfo")],
    "EmptyRequest": [],
    "CreateVolumeReq": [("name", 1, "string"), ("size", 2, "string"), ("type", 3, "string")],
    "CreateVolumeRes": [("name", 1, "string"), ("size", 2, "string"), ("type", 3, "string"),
                        ("path", 4, "string")],
    "Volume": [("name", 1, "string"), ("size", 2, "string"), ("type", 3, "string"),
               ("path", 4, "string"), ("createdTime", 5, "string"), ("jobCount", 6, "int32")],
    "Volumes": [("volumes", 1, "repeated Volume")],
    "RemoveVolumeReq": [("name", 1, "string")],
    "RemoveVolumeRes": [("success", 1, "bool"), ("message", 2, "string")],
    "CreateNetworkReq": [("name", 1, "string"), ("cidr", 2, "string")],
    "CreateNetworkRes": [("name", 1, "string"), ("cidr", 2, "string"), ("bridge", 3, "string")],
    "Network": [("name", 1, "string"), ("cidr", 2, "string"), ("bridge", 3, "string"),
                ("jobCount", 4, "int32")],
    "Networks": [("networks", 1, "repeated Network")],
    "HostInfo": [("hostname", 1, "string"), ("cpuCount", 9, "int32"),
                 ("totalMemory", 10, "int64")],
    "CPUMetrics": [("cores", 1, "int32"), ("usagePercent", 2, "double"),
                   ("loadAverage", 8, "repeated double")],
    "MemoryMetrics": [("totalBytes", 1, "int64"), ("usedBytes", 2, "int64")],
    "SystemStatusRes": [("timestamp", 1, "string"), ("available", 2, "bool"),
                        ("host", 3, "HostInfo"), ("cpu", 4, "CPUMetrics"),
                        ("memory", 5, "MemoryMetrics")],
    "RuntimeInfoReq": [("runtime", 1, "string")],
    "RuntimeInfoRes": [("found", 2, "bool")],
}
# fmt: on
LAYOUTS["GetJobStatusRes"] = LAYOUTS["RunJobRes"]


def _build() -> dict[str, Any]:
    file = descriptor_pb2.FileDescriptorProto(
        name="joblet_era.proto", package="joblet_era", syntax="proto3"
    )
    for name, fields in LAYOUTS.items():
        msg = file.message_type.add(name=name)
        for field, number, kind in fields:
            repeated = kind.startswith("repeated ")
            base = kind.removeprefix("repeated ")
            desc = msg.field.add(name=field, number=number, json_name=field)
            desc.label = _T.LABEL_REPEATED if repeated else _T.LABEL_OPTIONAL
            if base in _SCALARS:
                desc.type = _SCALARS[base]
            else:
                desc.type, desc.type_name = _T.TYPE_MESSAGE, f".joblet_era.{base}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"joblet_era.{name}"))
        for name in LAYOUTS
    }


ERA: dict[str, Any] = _build()
