"""The certificate authority and certificates for jobyard's mutual TLS.

``init_certs`` makes a private CA, a server certificate and two client certificates
(``admin`` and ``viewer``); ``issue_client`` adds more clients later. A client's role is the
``OU`` of its certificate subject (``CN=<name>, OU=<role>, O=<project>``), as the seed shows;
``O=jobyard`` (what the seed and earlier versions write) means "no project". The server
reads it back with :func:`identity_from_pem`, which refuses a subject that does not name
exactly one owner, one known role and at most one project.

Keys are EC P-256 in unencrypted PKCS#8 PEM, written with mode 0600 (atomically: a file is
either absent or complete).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from jobyard.domain.access import Identity, Role
from jobyard.domain.errors import FailedPrecondition, InvalidArgument

# Roles a certificate may carry. ``ucloud`` is a token role of the HTTP provider face
# (SPEC.md §2): UCloud/Core authenticates with a bearer token, never a client certificate.
ROLES = (Role.ADMIN.value, Role.USER.value, Role.VIEWER.value)
INIT_ROLES = (Role.ADMIN.value, Role.VIEWER.value)  # the pairs `certs init` writes
# The organization of certificates without a project (and of the CA and server).
ORGANIZATION = "jobyard"
CA_CERT = "ca-cert.pem"
CA_KEY = "ca-key.pem"
SERVER_CERT = "server-cert.pem"
SERVER_KEY = "server-key.pem"
# The seed's CLI defaults point at certs/client-*.pem: init makes that a copy of the admin pair.
DEFAULT_CLIENT_CERT = "client-cert.pem"
DEFAULT_CLIENT_KEY = "client-key.pem"
DEFAULT_SERVER_HOSTS = ("localhost", "127.0.0.1", "::1")
CA_VALID_DAYS = 3650
LEAF_VALID_DAYS = 825
# Tolerate a client or server clock that is a little behind the issuing host's.
BACKDATE_SECONDS = 300
KEY_MODE = 0o600
CERT_MODE = 0o644

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

Key = ec.EllipticCurvePrivateKey


def client_files(name: str) -> tuple[str, str]:
    """The (certificate, key) file names of client ``name``."""
    return f"{name}-client-cert.pem", f"{name}-client-key.pem"


def init_certs(dir: Path, *, overwrite: bool = False, hosts: Sequence[str] = ()) -> list[Path]:
    """Create the CA, server and ``admin``/``viewer`` client pairs in ``dir``.

    ``hosts`` adds DNS names or IP addresses to the server certificate beyond
    localhost, 127.0.0.1 and ::1. Refuses to replace an existing CA unless ``overwrite``.
    Returns the files written.
    """
    dir = Path(dir)
    existing = [dir / n for n in (CA_CERT, CA_KEY) if (dir / n).exists()]
    if existing and not overwrite:
        raise FailedPrecondition(
            f"a CA already exists in {dir} ({existing[0].name}); refusing to overwrite it "
            "(certificates it signed would stop working)"
        )
    server_sans = _san_list([*DEFAULT_SERVER_HOSTS, *hosts])
    dir.mkdir(parents=True, exist_ok=True)
    ca_key = _new_key()
    ca_cert = _ca_certificate(ca_key)
    written = _write_pair(dir, CA_CERT, CA_KEY, ca_cert, ca_key)
    server_key = _new_key()
    server_cert = _leaf_certificate(
        ca_cert, ca_key, server_key, _name("jobyard-server", None), server=True, sans=server_sans
    )
    written += _write_pair(dir, SERVER_CERT, SERVER_KEY, server_cert, server_key)
    for role in INIT_ROLES:
        written += issue_client(dir, role, role, overwrite=True)
    admin_cert, admin_key = client_files("admin")
    written += [
        _copy(dir / admin_cert, dir / DEFAULT_CLIENT_CERT, CERT_MODE),
        _copy(dir / admin_key, dir / DEFAULT_CLIENT_KEY, KEY_MODE),
    ]
    return written


def issue_client(
    dir: Path, name: str, role: str, *, project: str = "", overwrite: bool = False
) -> list[Path]:
    """Issue ``<name>-client-cert.pem``/``<name>-client-key.pem`` signed by the CA in ``dir``.

    ``project`` ("" = none) becomes the subject's ``O``: users of one project see each
    other's jobs.
    """
    dir = Path(dir)
    if not _SAFE_NAME.match(name):
        raise InvalidArgument(
            f"invalid client name {name!r}: use letters, digits and . _ - "
            "(at most 64 characters, starting with a letter or digit)"
        )
    check_role(role)
    _check_project(project)
    cert_name, key_name = client_files(name)
    if not overwrite and ((dir / cert_name).exists() or (dir / key_name).exists()):
        raise FailedPrecondition(f"client {name!r} already exists in {dir}; refusing to overwrite")
    ca_cert, ca_key = load_ca(dir)
    key = _new_key()
    # A SAN makes the certificate conform to the Web PKI profile (which requires one); the
    # server identifies a client by its subject, not by this.
    sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(f"urn:jobyard:client:{name}")]
    subject = _name(name, role, project)
    cert = _leaf_certificate(ca_cert, ca_key, key, subject, server=False, sans=sans)
    return _write_pair(dir, cert_name, key_name, cert, key)


def check_role(role: str) -> None:
    """Refuse a role no certificate may carry, saying why."""
    if role == Role.UCLOUD:
        raise InvalidArgument(
            "invalid role 'ucloud' for a certificate: it is the UCloud/Core service "
            "account's role on the HTTP provider face, given by a token "
            "(`jobyard tokens create --role ucloud`)"
        )
    if role not in ROLES:
        raise InvalidArgument(f"invalid role {role!r}: expected one of {', '.join(ROLES)}")


def _check_project(project: str) -> None:
    if not project:
        return
    if not _SAFE_NAME.match(project):
        raise InvalidArgument(
            f"invalid project {project!r}: use letters, digits and . _ - "
            "(at most 64 characters, starting with a letter or digit)"
        )
    if project == ORGANIZATION:
        raise InvalidArgument(
            f"invalid project {ORGANIZATION!r}: O={ORGANIZATION} is what certificates "
            "without a project carry"
        )


def has_ca(dir: Path) -> bool:
    return (Path(dir) / CA_CERT).exists() and (Path(dir) / CA_KEY).exists()


def load_ca(dir: Path) -> tuple[x509.Certificate, Key]:
    """Read the CA certificate and key from ``dir``."""
    try:
        cert = x509.load_pem_x509_certificate((dir / CA_CERT).read_bytes())
        key = serialization.load_pem_private_key((dir / CA_KEY).read_bytes(), password=None)
    except FileNotFoundError as exc:
        raise FailedPrecondition(
            f"no CA in {dir} ({exc.filename} is missing): run `jobyard certs init --dir {dir}`"
        ) from exc
    except ValueError as exc:
        raise InvalidArgument(f"cannot read the CA in {dir}: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InvalidArgument(f"the CA key in {dir} is not an EC key")
    return cert, key


def identity_from_pem(pem: bytes) -> Identity:
    """The caller a client certificate in PEM form names: CN = owner, OU = role,
    O = project (``O=jobyard`` or none: no project).

    Raises ``ValueError``, saying why, when ``pem`` is not a certificate or its subject
    lacks a CN or an OU, has several of either (or several O), or names an unknown role.
    The first of several OUs must never win: ``OU=viewer, OU=admin`` is not an admin.
    """
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise ValueError(f"invalid client certificate: {exc}") from exc
    subject = cert.subject
    names = _attributes(subject, NameOID.COMMON_NAME)
    roles = _attributes(subject, NameOID.ORGANIZATIONAL_UNIT_NAME)
    projects = _attributes(subject, NameOID.ORGANIZATION_NAME)
    if len(names) != 1 or not names[0].strip():
        raise ValueError(
            "the client certificate has no CN (it names the owner of the jobs)"
            if not any(n.strip() for n in names)
            else f"the client certificate has {len(names)} CNs: exactly one owner is allowed"
        )
    if not roles:
        raise ValueError(f"the client certificate has no OU (the role: {', '.join(ROLES)})")
    if len(roles) > 1:
        raise ValueError(
            f"the client certificate has {len(roles)} OUs ({', '.join(roles)}): "
            "exactly one role is allowed"
        )
    if len(projects) > 1:
        raise ValueError(
            f"the client certificate has {len(projects)} O values: at most one project is allowed"
        )
    return Identity(names[0], _cert_role(roles[0]), _project(projects))


def _cert_role(value: str) -> Role:
    if value == Role.UCLOUD:
        raise ValueError(
            "role ucloud is not accepted in a client certificate: it is given by a token "
            "on the HTTP provider face"
        )
    if value not in ROLES:
        raise ValueError(
            f"unknown role {value[:64]!r} in the client certificate OU: "
            f"expected one of {', '.join(ROLES)}"
        )
    return Role(value)


def _project(values: list[str]) -> str:
    return "" if not values or values[0] == ORGANIZATION else values[0]


def _attributes(name: x509.Name, oid: x509.ObjectIdentifier) -> list[str]:
    out = []
    for attribute in name.get_attributes_for_oid(oid):
        value = attribute.value
        out.append(value if isinstance(value, str) else value.decode())
    return out


def _new_key() -> Key:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str, role: str | None, project: str = "") -> x509.Name:
    """Most significant first, so the RFC 4514 form reads ``CN=<name>,OU=<role>,O=<org>``."""
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, project or ORGANIZATION)]
    if role is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _san_list(hosts: Iterable[str]) -> list[x509.GeneralName]:
    sans: list[x509.GeneralName] = []
    for host in dict.fromkeys(h.strip() for h in hosts):
        if not host:
            continue
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            if not re.fullmatch(r"[A-Za-z0-9*]([A-Za-z0-9.-]*[A-Za-z0-9])?", host):
                raise InvalidArgument(f"invalid host {host!r}: not a DNS name or IP") from None
            sans.append(x509.DNSName(host))
    return sans


def _validity(builder: x509.CertificateBuilder, days: int) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return builder.not_valid_before(
        now - datetime.timedelta(seconds=BACKDATE_SECONDS)
    ).not_valid_after(now + datetime.timedelta(days=days))


def _ca_certificate(key: Key) -> x509.Certificate:
    name = _name("jobyard CA", None)
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    return _validity(builder, CA_VALID_DAYS).sign(key, hashes.SHA256())


def _leaf_certificate(
    ca_cert: x509.Certificate,
    ca_key: Key,
    key: Key,
    subject: x509.Name,
    *,
    server: bool,
    sans: list[x509.GeneralName] | None,
) -> x509.Certificate:
    public = key.public_key()
    eku = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return _validity(builder, LEAF_VALID_DAYS).sign(ca_key, hashes.SHA256())


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _write_pair(
    dir: Path, cert_name: str, key_name: str, cert: x509.Certificate, key: Key
) -> list[Path]:
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return [
        _write(dir / cert_name, cert.public_bytes(serialization.Encoding.PEM), CERT_MODE),
        _write(dir / key_name, key_pem, KEY_MODE),
    ]


def _write(path: Path, data: bytes, mode: int) -> Path:
    """Write ``data`` to ``path`` atomically with ``mode`` (never briefly world-readable)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _copy(src: Path, dst: Path, mode: int) -> Path:
    return _write(dst, src.read_bytes(), mode)
