"""Upstreams and the token issuer behind a private CA: trusted with TENANTRY_CA_BUNDLE, refused without it."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tenantry.auth.tokens import TokenValidator
from tenantry.integrations.authentik.adapter import AuthentikIdentityProvider
from tenantry.integrations.authentik.client import AuthentikClient
from tenantry.integrations.errors import TransientStepError
from tenantry.integrations.http import build_http_client
from tenantry.sandbox.server import serve_in_thread
from tenantry.sandbox.suite import SandboxSuite

pytestmark = pytest.mark.slow


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@pytest.fixture(scope="module")
def private_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tuple[str, str]]:
    """A CA of our own and a certificate it issued for 127.0.0.1: (CA bundle, (certfile, keyfile))."""
    folder = tmp_path_factory.mktemp("ca")
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("Tenantry Test CA"))
        .issuer_name(_name("Tenantry Test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    bundle, certfile, keyfile = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    bundle.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return bundle, (str(certfile), str(keyfile))


def test_authentik_behind_a_private_ca_is_reached_with_the_bundle_and_refused_without(
    private_ca: tuple[Path, tuple[str, str]],
) -> None:
    import asyncio

    bundle, tls = private_ca
    suite = SandboxSuite(
        authentik_url="https://127.0.0.1", stalwart_url="http://stalwart.test", ocis_url="http://ocis.test"
    )
    with serve_in_thread(suite.authentik.app, tls=tls) as url:

        async def ping(ca_bundle: Path | None) -> None:
            async with build_http_client(ca_bundle=ca_bundle) as http:
                client = AuthentikClient(http, url, suite.credentials.authentik_token)
                await AuthentikIdentityProvider(client).ping()

        asyncio.run(ping(bundle))
        with pytest.raises(TransientStepError) as refused:
            asyncio.run(ping(None))
    assert refused.value.reason == "UpstreamUnreachable"
    assert "certificate" in refused.value.message.lower()  # says why: the server's certificate is not trusted
    assert suite.credentials.authentik_token not in refused.value.message


def test_tokens_are_validated_against_an_issuer_behind_a_private_ca(private_ca: tuple[Path, tuple[str, str]]) -> None:
    import asyncio
    import socket

    bundle, tls = private_ca
    with socket.socket() as probe:  # the issuer URL goes into the tokens, so the port is chosen up front
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    suite = SandboxSuite(
        authentik_url=f"https://127.0.0.1:{port}", stalwart_url="http://stalwart.test", ocis_url="http://ocis.test"
    )
    token = suite.issuer.mint_token(sub=suite.plain_user.sub, audience=suite.credentials.user_client_id)
    with serve_in_thread(suite.authentik.app, port=port, tls=tls):

        async def validate() -> str:
            async with build_http_client(ca_bundle=bundle) as http:
                issuer = suite.issuer.issuer_for(suite.credentials.user_client_id)
                validator = TokenValidator(issuer=issuer, audience=suite.audiences, http=http)
                return (await validator.validate(token)).sub

        assert asyncio.run(validate()) == suite.plain_user.sub
