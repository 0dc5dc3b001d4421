"""The CA and certificates: what is written, what the certificates say, that chains verify."""

from __future__ import annotations

import datetime
import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from jobyard import certs
from jobyard.domain.access import Identity, Role
from jobyard.domain.errors import FailedPrecondition, InvalidArgument

ALL_FILES = {
    "ca-cert.pem",
    "ca-key.pem",
    "server-cert.pem",
    "server-key.pem",
    "admin-client-cert.pem",
    "admin-client-key.pem",
    "viewer-client-cert.pem",
    "viewer-client-key.pem",
    "client-cert.pem",
    "client-key.pem",
}


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def verifier_store(dir: Path) -> PolicyBuilder:
    return PolicyBuilder().store(Store([load(dir / "ca-cert.pem")]))


@pytest.fixture(scope="module")
def certs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dir = tmp_path_factory.mktemp("certs")
    certs.init_certs(dir, hosts=["jobs.example.com", "10.1.2.3"])
    return dir


def test_init_writes_every_file_with_private_keys_owner_only(tmp_path: Path) -> None:
    written = certs.init_certs(tmp_path / "certs")

    assert {p.name for p in written} == ALL_FILES
    assert {p.name for p in (tmp_path / "certs").iterdir()} == ALL_FILES
    for path in written:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o600 if path.name.endswith("-key.pem") else 0o644), path.name


def test_server_certificate_names_local_addresses_and_extra_hosts(certs_dir: Path) -> None:
    cert = load(certs_dir / "server-cert.pem")
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value

    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "jobs.example.com"}
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
        ipaddress.ip_address("10.1.2.3"),
    }
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]


@pytest.mark.parametrize(
    "subject",
    [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
        x509.DNSName("jobs.example.com"),
    ],
)
def test_server_chain_verifies_for_each_name(certs_dir: Path, subject: x509.GeneralName) -> None:
    verifier = verifier_store(certs_dir).build_server_verifier(subject)  # type: ignore[arg-type]

    chain = verifier.verify(load(certs_dir / "server-cert.pem"), [])

    assert chain[-1] == load(certs_dir / "ca-cert.pem")


def test_server_chain_does_not_verify_for_another_name(certs_dir: Path) -> None:
    verifier = verifier_store(certs_dir).build_server_verifier(x509.DNSName("evil.example.com"))

    with pytest.raises(VerificationError):
        verifier.verify(load(certs_dir / "server-cert.pem"), [])


@pytest.mark.parametrize("role", ["admin", "viewer"])
def test_client_certificates_carry_name_role_and_client_auth(certs_dir: Path, role: str) -> None:
    cert = load(certs_dir / f"{role}-client-cert.pem")

    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == role
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == role
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "jobyard"
    assert cert.subject.rfc4514_string() == f"CN={role},OU={role},O=jobyard"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
    verified = verifier_store(certs_dir).build_client_verifier().verify(cert, [])
    assert verified.chain[-1] == load(certs_dir / "ca-cert.pem")


def test_ca_is_a_ca_and_leaves_are_not(certs_dir: Path) -> None:
    ca = load(certs_dir / "ca-cert.pem")
    server = load(certs_dir / "server-cert.pem")

    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert server.issuer == ca.subject
    now = datetime.datetime.now(datetime.UTC)
    assert server.not_valid_before_utc < now < server.not_valid_after_utc


@pytest.mark.parametrize("name", ["ca", "server", "admin-client", "viewer-client", "client"])
def test_each_key_belongs_to_its_certificate(certs_dir: Path, name: str) -> None:
    key = serialization.load_pem_private_key(
        (certs_dir / f"{name}-key.pem").read_bytes(), password=None
    )
    cert = load(certs_dir / f"{name}-cert.pem")

    assert cert.public_key() == key.public_key()


def test_default_client_pair_is_the_admin_pair(certs_dir: Path) -> None:
    assert (certs_dir / "client-cert.pem").read_bytes() == (
        certs_dir / "admin-client-cert.pem"
    ).read_bytes()
    assert (certs_dir / "client-key.pem").read_bytes() == (
        certs_dir / "admin-client-key.pem"
    ).read_bytes()


def test_issue_client_signs_with_the_existing_ca(tmp_path: Path) -> None:
    certs.init_certs(tmp_path)

    written = certs.issue_client(tmp_path, "alice", "viewer")

    assert [p.name for p in written] == ["alice-client-cert.pem", "alice-client-key.pem"]
    cert = load(tmp_path / "alice-client-cert.pem")
    assert certs.identity_from_pem(cert.public_bytes(serialization.Encoding.PEM)) == Identity(
        "alice", Role.VIEWER
    )
    verifier_store(tmp_path).build_client_verifier().verify(cert, [])
    assert stat.S_IMODE((tmp_path / "alice-client-key.pem").stat().st_mode) == 0o600


def test_a_client_from_another_ca_does_not_verify(tmp_path: Path) -> None:
    certs.init_certs(tmp_path / "a")
    certs.init_certs(tmp_path / "b")

    with pytest.raises(VerificationError):
        verifier_store(tmp_path / "a").build_client_verifier().verify(
            load(tmp_path / "b" / "admin-client-cert.pem"), []
        )


def test_init_refuses_to_replace_a_ca_unless_told(tmp_path: Path) -> None:
    certs.init_certs(tmp_path)
    before = (tmp_path / "ca-cert.pem").read_bytes()

    with pytest.raises(FailedPrecondition, match="already exists"):
        certs.init_certs(tmp_path)
    assert (tmp_path / "ca-cert.pem").read_bytes() == before

    certs.init_certs(tmp_path, overwrite=True)
    assert (tmp_path / "ca-cert.pem").read_bytes() != before


def test_issue_client_refuses_to_replace_a_pair_unless_told(tmp_path: Path) -> None:
    certs.init_certs(tmp_path)
    before = (tmp_path / "viewer-client-cert.pem").read_bytes()

    with pytest.raises(FailedPrecondition, match="already exists"):
        certs.issue_client(tmp_path, "viewer", "viewer")
    assert (tmp_path / "viewer-client-cert.pem").read_bytes() == before

    certs.issue_client(tmp_path, "viewer", "admin", overwrite=True)
    assert certs.identity_from_pem((tmp_path / "viewer-client-cert.pem").read_bytes()) == Identity(
        "viewer", Role.ADMIN
    )


@pytest.mark.parametrize("name", ["", "../evil", "a/b", "-rf", "has space", "x" * 65, "é"])
def test_issue_client_rejects_unsafe_names(tmp_path: Path, name: str) -> None:
    certs.init_certs(tmp_path)

    with pytest.raises(InvalidArgument, match="invalid client name"):
        certs.issue_client(tmp_path, name, "admin")


def test_issue_client_rejects_unknown_roles(tmp_path: Path) -> None:
    certs.init_certs(tmp_path)

    with pytest.raises(InvalidArgument, match="invalid role 'root'"):
        certs.issue_client(tmp_path, "bob", "root")
    assert not (tmp_path / "bob-client-cert.pem").exists()


def test_issue_client_without_a_ca_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(FailedPrecondition, match="jobyard certs init"):
        certs.issue_client(tmp_path, "alice", "admin")


def test_init_rejects_a_bad_extra_host(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="invalid host"):
        certs.init_certs(tmp_path, hosts=["bad host!"])
    assert not (tmp_path / "ca-cert.pem").exists()


def test_identity_from_pem(certs_dir: Path) -> None:
    assert certs.identity_from_pem((certs_dir / "admin-client-cert.pem").read_bytes()) == Identity(
        "admin", Role.ADMIN, project=""
    )
    # No OU: the server's certificate carries no role, and is no client.
    with pytest.raises(ValueError, match="has no OU"):
        certs.identity_from_pem((certs_dir / "server-cert.pem").read_bytes())
    with pytest.raises(ValueError, match="invalid client certificate"):
        certs.identity_from_pem(b"not a certificate")


def test_a_user_certificate_carries_its_project_as_o(tmp_path: Path) -> None:
    certs.init_certs(tmp_path)

    certs.issue_client(tmp_path, "alice", "user", project="physics")
    certs.issue_client(tmp_path, "bob", "user")

    alice = load(tmp_path / "alice-client-cert.pem")
    assert alice.subject.rfc4514_string() == "CN=alice,OU=user,O=physics"
    pem = (tmp_path / "alice-client-cert.pem").read_bytes()
    assert certs.identity_from_pem(pem) == Identity("alice", Role.USER, "physics")
    # Without --project the subject keeps O=jobyard, which means no project.
    bob = (tmp_path / "bob-client-cert.pem").read_bytes()
    assert certs.identity_from_pem(bob) == Identity("bob", Role.USER, "")


@pytest.mark.parametrize(
    ("project", "why"),
    [("../x", "invalid project"), ("has space", "invalid project"), ("jobyard", "without a")],
)
def test_issue_client_rejects_bad_projects(tmp_path: Path, project: str, why: str) -> None:
    certs.init_certs(tmp_path)

    with pytest.raises(InvalidArgument, match=why):
        certs.issue_client(tmp_path, "alice", "user", project=project)
    assert not (tmp_path / "alice-client-cert.pem").exists()


def test_issue_client_refuses_the_ucloud_role_and_says_why(tmp_path: Path) -> None:
    certs.init_certs(tmp_path)

    with pytest.raises(InvalidArgument, match=r"ucloud.*HTTP provider face.*token"):
        certs.issue_client(tmp_path, "core", "ucloud")


def _pem_with_subject(dir: Path, attributes: list[tuple[x509.ObjectIdentifier, str]]) -> bytes:
    """A client certificate signed by the CA in ``dir`` with exactly this subject."""
    from cryptography.hazmat.primitives.asymmetric import ec

    ca_cert, ca_key = certs.load_ca(dir)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])
    cert = certs._leaf_certificate(ca_cert, ca_key, key, subject, server=False, sans=None)
    return cert.public_bytes(serialization.Encoding.PEM)


OU, CN, ORG = NameOID.ORGANIZATIONAL_UNIT_NAME, NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME


@pytest.mark.parametrize(
    ("subject", "why"),
    [
        ([(OU, "admin")], "has no CN"),
        ([(CN, " "), (OU, "admin")], "has no CN"),
        ([(CN, "a"), (CN, "b"), (OU, "admin")], "2 CNs: exactly one owner"),
        ([(CN, "mallory")], "has no OU"),
        ([(CN, "mallory"), (OU, "admin"), (OU, "viewer")], r"2 OUs \(admin, viewer\)"),
        ([(CN, "mallory"), (OU, "viewer"), (OU, "admin")], "exactly one role"),
        ([(CN, "mallory"), (OU, "root")], "unknown role 'root'"),
        ([(CN, "mallory"), (OU, "ucloud")], "ucloud is not accepted.*token"),
        ([(CN, "mallory"), (OU, "user"), (ORG, "a"), (ORG, "b")], "at most one project"),
    ],
)
def test_identity_from_pem_refuses_subjects_that_do_not_name_one_caller(
    certs_dir: Path, subject: list[tuple[x509.ObjectIdentifier, str]], why: str
) -> None:
    with pytest.raises(ValueError, match=why):
        certs.identity_from_pem(_pem_with_subject(certs_dir, subject))
