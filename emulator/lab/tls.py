"""The lab's own certificate authority: created at `up` in the state directory (gone with it at
`down`), trusted in every lab namespace, issuing each https instance a certificate for its names
and addresses.

Trust: `ip netns exec` bind-mounts /etc/netns/<ns>/ssl over /etc/ssl, so curl, openssl s_client,
Python and anything else using OpenSSL's default paths (certs/ca-certificates.crt and the hashed
certs/ directory) trust the lab's CA there, and only the lab's CA: nothing outside a lab is reachable.
The host's own /etc/ssl is never touched.
"""
from __future__ import annotations

import datetime
import functools
import shutil
import subprocess
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from emulator.errors import LabError
from emulator.ids import private_dns_name, public_dns_name
from emulator.model import Instance

from .state import private

VALIDITY = datetime.timedelta(days=365)
CLOCK_SKEW = datetime.timedelta(hours=1)      # valid a little before now: clocks differ
HOST_SSL = Path("/etc/ssl")
BUNDLE = "ca-certificates.crt"                # Debian's, and what curl and OpenSSL read there


@dataclass(frozen=True)
class LabCa:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    dir: Path

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @functools.cached_property
    def subject_hash(self) -> str:
        """OpenSSL's name for the CA in a hashed certs/ directory (asked of openssl once)."""
        return _subject_hash(self.dir / "ca.pem")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _write(path: Path, data: bytes) -> None:
    with private(path, "wb") as out:
        out.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def create_ca(lab: str, directory: Path) -> LabCa:
    """A fresh CA (P-256) in `directory` (0700): ca.pem, ca.key."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sgemu"),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"sgemu lab {lab} CA")])
    now = _now()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW).not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                                         key_cert_sign=True, crl_sign=True, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    _write(directory / "ca.key", _key_pem(key))
    _write(directory / "ca.pem", cert.public_bytes(serialization.Encoding.PEM))    # the state directory is root's
    return LabCa(key, cert, directory)


def load_ca(directory: Path) -> LabCa:
    """The CA create_ca wrote, for issuing certificates later in the same `up`."""
    try:
        key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
    except (OSError, ValueError) as exc:
        raise LabError(f"the lab's CA in {directory} cannot be read ({exc}); bring the lab down and up again") \
            from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise LabError(f"{directory / 'ca.key'} is not the lab's CA key")
    return LabCa(key, cert, directory)


def _subject_hash(pem: Path) -> str:
    try:
        done = subprocess.run(["openssl", "x509", "-noout", "-subject_hash", "-in", str(pem)],
                              capture_output=True, text=True, check=True)
    except FileNotFoundError:
        raise LabError("the lab's CA needs the openssl command; install openssl") from None
    except subprocess.CalledProcessError as exc:
        raise LabError(f"openssl cannot read the lab's CA {pem}: {exc.stderr.strip()}") from None
    return done.stdout.strip()


def names_of(instance: Instance) -> tuple[list[str], list[IPv4Address | IPv6Address]]:
    """What an instance is called and where it answers: its lab name, its EC2 private and public
    DNS names, and its private, public and IPv6 addresses."""
    dns = [instance.name, private_dns_name(instance.private_ip)]
    ips: list[IPv4Address | IPv6Address] = [instance.private_ip]
    if instance.public_ip is not None:
        dns.append(public_dns_name(instance.public_ip))
        ips.append(instance.public_ip)
    if instance.ipv6 is not None:
        ips.append(instance.ipv6)
    return dns, ips


def issue(ca: LabCa, instance: Instance) -> tuple[Path, Path]:
    """A server certificate for `instance`, signed by the lab's CA: (cert.pem, key.pem) paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    dns, ips = names_of(instance)
    san = x509.SubjectAlternativeName([*(x509.DNSName(n) for n in dns), *(x509.IPAddress(a) for a in ips)])
    now = _now()
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, instance.name)]))
            .issuer_name(ca.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW).not_valid_after(now + VALIDITY)
            .add_extension(san, critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
            .sign(ca.key, hashes.SHA256()))
    cert_path, key_path = ca.dir / f"{instance.name}.pem", ca.dir / f"{instance.name}.key"
    _write(key_path, _key_pem(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def install_trust(ca: LabCa, netns_dir: Path) -> None:
    """/etc/netns/<ns>/ssl: the lab's CA as the whole bundle and in the hashed directory, and the
    host's openssl.cnf (OpenSSL reads it from there)."""
    ssl_dir = netns_dir / "ssl"
    certs = ssl_dir / "certs"
    certs.mkdir(parents=True, exist_ok=True)
    (ssl_dir / "private").mkdir(mode=0o700, exist_ok=True)
    (certs / "sgemu-lab-ca.pem").write_bytes(ca.pem)
    (certs / BUNDLE).write_bytes(ca.pem)
    (certs / f"{ca.subject_hash}.0").symlink_to("sgemu-lab-ca.pem")
    if (HOST_SSL / "openssl.cnf").is_file():
        shutil.copyfile(HOST_SSL / "openssl.cnf", ssl_dir / "openssl.cnf")
