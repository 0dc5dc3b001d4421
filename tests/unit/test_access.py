"""The role table and owner scoping (domain/access.py): who may do what, who sees which job."""

from __future__ import annotations

import dataclasses

import pytest

from jobyard.domain.access import (
    ROLE_TABLE,
    Identity,
    Role,
    Scope,
    authorize,
    may_change,
    principal,
    scope,
    visible,
)
from jobyard.domain.errors import PermissionDenied

READS = {
    "get_job_status", "list_jobs", "get_job_logs", "get_workflow_status", "list_workflows",
    "get_workflow_jobs", "get_job", "watch_jobs", "read_logs", "list_files", "download_file",
    "list_wallets",
}  # fmt: skip
CHANGES = {
    "run_job", "stop_job", "run_workflow", "delete_job", "suspend_job", "resume_job",
    "extend_job", "stop_workflow",
}  # fmt: skip
# The host as a whole (joblet.MonitoringService, GET /metrics): admin and viewer only.
HOST_READS = {"get_system_status", "stream_system_metrics", "read_metrics"}
# Volumes are owned like jobs; runtimes are the host's, managed by admins.
VOLUME_OPS = {"create_volume", "list_volumes", "remove_volume"}
NETWORK_OPS = {"create_network", "list_networks", "remove_network"}
RUNTIME_READS = {"list_runtimes", "get_runtime_info"}
RUNTIME_ADMIN = {"install_runtime", "test_runtime", "remove_runtime"}
# The UCloud provider face: Core's service account, nobody else.
PROVIDER = {"ucloud_provider"}

ADMIN = Identity("root-of-all", Role.ADMIN)
VIEWER = Identity("auditor", Role.VIEWER)
ALICE = Identity("alice", Role.USER, "physics")
BOB = Identity("bob", Role.USER, "physics")
CAROL = Identity("carol", Role.USER, "chemistry")
DAVE = Identity("dave", Role.USER)  # no project
CORE = Identity("core", Role.UCLOUD)


@dataclasses.dataclass(frozen=True)
class Item:
    owner: str
    project: str = ""


@dataclasses.dataclass(frozen=True)
class SharedItem:
    owner: str
    project: str
    shared_with: tuple[str, ...]


def test_the_table_names_every_operation_once() -> None:
    everything = READS | CHANGES | HOST_READS | VOLUME_OPS | NETWORK_OPS | RUNTIME_READS
    assert set(ROLE_TABLE) == everything | RUNTIME_ADMIN | PROVIDER


def test_the_provider_face_is_cores_alone() -> None:
    authorize(CORE, "ucloud_provider")
    for who in (ADMIN, VIEWER, ALICE):
        with pytest.raises(PermissionDenied, match=f"role {who.role} is not allowed"):
            authorize(who, "ucloud_provider")


def test_volumes_are_for_users_and_runtimes_for_admins() -> None:
    for operation in VOLUME_OPS | NETWORK_OPS | RUNTIME_READS:
        authorize(ALICE, operation)
    authorize(VIEWER, "list_volumes")
    authorize(VIEWER, "list_networks")
    for operation in RUNTIME_ADMIN:
        authorize(ADMIN, operation)
        for caller in (ALICE, VIEWER):
            with pytest.raises(PermissionDenied, match=f"perform operation {operation}"):
                authorize(caller, operation)
    with pytest.raises(PermissionDenied, match="role viewer is not allowed"):
        authorize(VIEWER, "create_volume")


@pytest.mark.parametrize("operation", sorted(HOST_READS))
def test_only_admin_and_viewer_read_the_host(operation: str) -> None:
    authorize(ADMIN, operation)
    authorize(VIEWER, operation)
    for caller in (ALICE, CORE):
        with pytest.raises(PermissionDenied, match=f"not allowed to perform operation {operation}"):
            authorize(caller, operation)


@pytest.mark.parametrize("operation", sorted(READS | CHANGES))
def test_admin_and_user_may_do_everything(operation: str) -> None:
    authorize(ADMIN, operation)
    authorize(ALICE, operation)


@pytest.mark.parametrize("operation", sorted(READS))
def test_a_viewer_reads(operation: str) -> None:
    authorize(VIEWER, operation)


@pytest.mark.parametrize("operation", sorted(CHANGES))
def test_a_viewer_changes_nothing_with_the_seeds_message(operation: str) -> None:
    with pytest.raises(PermissionDenied) as info:
        authorize(VIEWER, operation)
    assert str(info.value) == f"role viewer is not allowed to perform operation {operation}"


@pytest.mark.parametrize("operation", sorted(READS | CHANGES))
def test_ucloud_has_no_operation_of_the_grpc_face(operation: str) -> None:
    with pytest.raises(PermissionDenied, match="role ucloud is not allowed"):
        authorize(CORE, operation)


def test_an_operation_missing_from_the_table_is_refused_to_everyone() -> None:
    for who in (ADMIN, VIEWER, ALICE, CORE):
        with pytest.raises(PermissionDenied, match="operation launch_missiles"):
            authorize(who, "launch_missiles")


def test_admin_and_viewer_see_every_job() -> None:
    for who in (ADMIN, VIEWER):
        assert scope(who) is None
        assert visible(who, Item("anyone", "any-project"))
        assert visible(who, Item("", ""))


def test_a_user_sees_its_own_and_its_projects_jobs_only() -> None:
    assert visible(ALICE, Item("alice"))
    assert visible(ALICE, Item("alice", "chemistry"))  # its own, wherever filed
    assert visible(ALICE, Item("bob", "physics"))  # a project member's
    assert visible(BOB, Item("alice", "physics"))
    assert not visible(ALICE, Item("carol", "chemistry"))
    assert not visible(CAROL, Item("alice", "physics"))
    assert not visible(ALICE, Item("dave"))


def test_a_job_shared_with_a_user_or_project_is_visible_to_them_alone() -> None:
    shared = SharedItem("erin", "", ("user:alice", "project:chemistry"))
    assert visible(ALICE, shared) and visible(CAROL, shared)  # by name; by project
    assert not visible(BOB, shared) and not visible(DAVE, shared)
    assert not visible(DAVE, SharedItem("erin", "", ("project:",)))  # no empty project
    assert principal("user", "bob") == "user:bob"
    assert principal("project", "lab", edit=True) == "project+edit:lab"
    with pytest.raises(ValueError, match="kind"):
        principal("group", "x")


def test_a_share_to_see_does_not_let_one_act_a_share_to_edit_does() -> None:
    shared = SharedItem("erin", "", ("user:alice", "project+edit:chemistry"))
    assert visible(ALICE, shared) and not may_change(ALICE, shared)
    assert visible(CAROL, shared) and may_change(CAROL, shared)
    assert may_change(ALICE, Item("alice")) and may_change(BOB, Item("alice", "physics"))
    assert may_change(ADMIN, shared)


def test_users_without_a_project_do_not_share_the_empty_project() -> None:
    assert not visible(DAVE, Item("erin"))
    assert not visible(DAVE, Item("alice", "physics"))
    assert scope(DAVE) == Scope(owner="dave", project="")


def test_ucloud_is_scoped_like_a_user() -> None:
    assert visible(CORE, Item("core"))
    assert not visible(CORE, Item("alice", "physics"))
