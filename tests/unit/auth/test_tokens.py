"""TokenValidator: signature, algorithm and claim checks, JWKS caching, rotation and issuer outages."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tenantry.auth.tokens import (
    InvalidTokenError,
    IssuerUnavailableError,
    TokenValidator,
    TrustedIssuers,
    bearer_token,
)
from tests.support.clock import ManualClock

ISSUER = "https://auth.example.test/application/o/tenantry/"
OTHER_ISSUER = "https://auth.example.test/application/o/elsewhere/"
AUDIENCE = "tenantry-api"
START = 1_800_000_000.0


@dataclass
class Signer:
    kid: str
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    alg: str

    def jwk(self) -> dict[str, Any]:
        algorithm = jwt.algorithms.RSAAlgorithm if self.alg.startswith("RS") else jwt.algorithms.ECAlgorithm
        data: dict[str, Any] = json.loads(algorithm.to_jwk(self.key.public_key()))
        return {**data, "kid": self.kid, "use": "sig", "alg": self.alg}

    def sign(self, claims: dict[str, Any], *, alg: str | None = None, kid: str | None = None) -> str:
        return jwt.encode(claims, self.key, algorithm=alg or self.alg, headers={"kid": kid or self.kid})

    def public_pem(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@dataclass
class FakeIssuer:
    """Serves discovery and JWKS for one issuer, counting fetches; ``down`` makes every request fail."""

    issuer: str
    signers: list[Signer]
    down: bool = False
    status: int = 200
    jwks_status: int = 200
    jwks_body: dict[str, Any] | None = None
    discovery_issuer: str | None = None
    discovery_fetches: int = 0
    jwks_fetches: int = 0
    extra_keys: list[dict[str, Any]] = field(default_factory=list)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0)  # let concurrent validations interleave like real I/O would
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        path = request.url.path
        if path.endswith("/.well-known/openid-configuration"):
            self.discovery_fetches += 1
            if self.status != 200:
                return httpx.Response(self.status)
            return httpx.Response(
                200, json={"issuer": self.discovery_issuer or self.issuer, "jwks_uri": f"{self.issuer}jwks/"}
            )
        if path.endswith("/jwks/"):
            self.jwks_fetches += 1
            keys = [s.jwk() for s in self.signers] + self.extra_keys
            return httpx.Response(self.jwks_status, json=self.jwks_body or {"keys": keys})
        return httpx.Response(404)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def rsa_key_2() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def signer(rsa_key: rsa.RSAPrivateKey) -> Signer:
    return Signer("key-1", rsa_key, "RS256")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def issuer(signer: Signer, ec_key: ec.EllipticCurvePrivateKey) -> FakeIssuer:
    return FakeIssuer(ISSUER, [signer, Signer("ec-1", ec_key, "ES256")])


@pytest.fixture
async def http(issuer: FakeIssuer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(issuer.handle)) as client:
        yield client


@pytest.fixture
def validator(http: httpx.AsyncClient, clock: ManualClock) -> TokenValidator:
    return TokenValidator(issuer=ISSUER, audience=AUDIENCE, http=http, clock=clock)


def claims(clock: ManualClock, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "exp": clock.now + 300,
        "iat": clock.now,
        "preferred_username": "alice",
        "email": "alice@example.test",
        "groups": ["acme-owners", "staff"],
        "scope": "openid profile email",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], payload: dict[str, Any]) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"


async def refused(validator: TokenValidator, token: str) -> str:
    with pytest.raises(InvalidTokenError) as caught:
        await validator.validate(token)
    return caught.value.reason


async def test_valid_token_yields_identity_with_groups_username_and_email(
    validator: TokenValidator, signer: Signer, clock: ManualClock
) -> None:
    identity = await validator.validate(signer.sign(claims(clock)))

    assert identity.sub == "user-1"
    assert identity.groups == frozenset({"acme-owners", "staff"})
    assert identity.username == "alice"
    assert identity.email == "alice@example.test"
    assert identity.is_member("staff")
    assert not identity.is_member("Staff")
    assert identity.claims["iss"] == ISSUER


async def test_identity_repr_leaves_out_the_claims(
    validator: TokenValidator, signer: Signer, clock: ManualClock
) -> None:
    identity = await validator.validate(signer.sign(claims(clock, secret_hint="do-not-log")))

    assert "do-not-log" not in repr(identity)


async def test_es256_token_is_accepted_with_an_ec_key(
    validator: TokenValidator, ec_key: ec.EllipticCurvePrivateKey, clock: ManualClock
) -> None:
    identity = await validator.validate(Signer("ec-1", ec_key, "ES256").sign(claims(clock)))

    assert identity.sub == "user-1"


async def test_audience_list_containing_ours_is_accepted(
    validator: TokenValidator, signer: Signer, clock: ManualClock
) -> None:
    identity = await validator.validate(signer.sign(claims(clock, aud=["portal", AUDIENCE])))

    assert identity.sub == "user-1"


async def test_garbage_is_refused_as_malformed_without_echoing_it(validator: TokenValidator) -> None:
    with pytest.raises(InvalidTokenError) as caught:
        await validator.validate("not-a.jwt-at.all")

    assert caught.value.reason == "malformed token"
    assert "not-a.jwt" not in str(caught.value)


async def test_empty_token_is_refused(validator: TokenValidator) -> None:
    assert await refused(validator, "") == "malformed token"


async def test_alg_none_is_refused(validator: TokenValidator, clock: ManualClock) -> None:
    token = unsigned({"alg": "none", "typ": "JWT", "kid": "key-1"}, claims(clock)) + "."

    assert await refused(validator, token) == "algorithm not allowed"


async def test_hs256_signed_with_the_rsa_public_key_is_refused_even_when_hs256_is_listed(
    http: httpx.AsyncClient, signer: Signer, clock: ManualClock
) -> None:
    validator = TokenValidator(issuer=ISSUER, audience=AUDIENCE, http=http, clock=clock, algorithms=("RS256", "HS256"))
    signing_input = unsigned({"alg": "HS256", "typ": "JWT", "kid": "key-1"}, claims(clock))
    mac = hmac.new(signer.public_pem(), signing_input.encode(), hashlib.sha256).digest()

    assert await refused(validator, f"{signing_input}.{b64(mac)}") == "algorithm not allowed"


async def test_algorithm_outside_the_allow_list_is_refused(
    validator: TokenValidator, signer: Signer, clock: ManualClock
) -> None:
    assert await refused(validator, signer.sign(claims(clock), alg="RS384")) == "algorithm not allowed"


async def test_ec_algorithm_naming_an_rsa_key_is_refused(
    validator: TokenValidator, ec_key: ec.EllipticCurvePrivateKey, clock: ManualClock
) -> None:
    token = Signer("ec-1", ec_key, "ES256").sign(claims(clock), kid="key-1")

    assert await refused(validator, token) == "algorithm does not match key"


def test_validator_refuses_an_allow_list_without_asymmetric_algorithms(http: httpx.AsyncClient) -> None:
    with pytest.raises(ValueError, match="asymmetric"):
        TokenValidator(issuer=ISSUER, audience=AUDIENCE, http=http, algorithms=("HS256", "none"))


async def test_expired_token_is_refused(validator: TokenValidator, signer: Signer, clock: ManualClock) -> None:
    token = signer.sign(claims(clock, exp=clock.now - 31, iat=clock.now - 600))

    assert await refused(validator, token) == "expired"


async def test_token_expired_within_the_leeway_is_accepted(
    validator: TokenValidator, signer: Signer, clock: ManualClock
) -> None:
    identity = await validator.validate(signer.sign(claims(clock, exp=clock.now - 10)))

    assert identity.sub == "user-1"


async def test_token_not_yet_valid_is_refused(validator: TokenValidator, signer: Signer, clock: ManualClock) -> None:
    assert await refused(validator, signer.sign(claims(clock, nbf=clock.now + 120))) == "not yet valid"


async def test_token_issued_in_the_future_is_refused(
    validator: TokenValidator, signer: Signer, clock: ManualClock
) -> None:
    token = signer.sign(claims(clock, iat=clock.now + 120))

    assert await refused(validator, token) == "issued in the future"


async def test_wrong_issuer_is_refused(validator: TokenValidator, signer: Signer, clock: ManualClock) -> None:
    # Issuers compare exactly: the same URL without its trailing slash is another issuer.
    assert await refused(validator, signer.sign(claims(clock, iss=ISSUER.rstrip("/")))) == "wrong issuer"


async def test_wrong_audience_is_refused(validator: TokenValidator, signer: Signer, clock: ManualClock) -> None:
    assert await refused(validator, signer.sign(claims(clock, aud=["portal", "other"]))) == "wrong audience"


@pytest.mark.parametrize("claim", ["sub", "exp", "aud", "iss"])
async def test_token_without_a_required_claim_is_refused(
    validator: TokenValidator, signer: Signer, clock: ManualClock, claim: str
) -> None:
    token = signer.sign(claims(clock, **{claim: None}))

    assert await refused(validator, token) == f"missing {claim} claim"


async def test_empty_subject_is_refused(validator: TokenValidator, signer: Signer, clock: ManualClock) -> None:
    assert await refused(validator, signer.sign(claims(clock, sub=""))) == "invalid subject"


async def test_tampered_payload_is_refused_as_bad_signature(
    validator: TokenValidator, signer: Signer, clock: ManualClock
) -> None:
    header, _, signature = signer.sign(claims(clock)).split(".")
    forged = b64(json.dumps(claims(clock, groups=["tenantry-admins"])).encode())

    assert await refused(validator, f"{header}.{forged}.{signature}") == "bad signature"


@pytest.mark.parametrize(("kid", "reason"), [("key-1", "bad signature"), ("other-1", "unknown key")])
async def test_token_from_a_second_issuer_with_its_own_keys_is_refused(
    validator: TokenValidator, rsa_key_2: rsa.RSAPrivateKey, clock: ManualClock, kid: str, reason: str
) -> None:
    other = Signer(kid, rsa_key_2, "RS256")

    assert await refused(validator, other.sign(claims(clock, iss=OTHER_ISSUER))) == reason


async def test_an_authorized_party_other_than_the_accepted_client_ids_is_refused(
    validator: TokenValidator, signer: Signer, clock: ManualClock
) -> None:
    accepted = await validator.validate(signer.sign(claims(clock, azp=AUDIENCE)))

    assert accepted.sub == "user-1"
    assert await refused(validator, signer.sign(claims(clock, azp="another-client"))) == "wrong authorized party"


# -- several trusted providers --------------------------------------------------------------------------------
PORTAL_ISSUER = "https://auth.example.test/application/o/portal/"
CLI_ISSUER = "https://auth.example.test/application/o/cli/"


@dataclass
class FakeAuthentik:
    """authentik's per-provider discovery and JWKS: every provider an issuer of its own, one shared key."""

    providers: dict[str, FakeIssuer]

    async def handle(self, request: httpx.Request) -> httpx.Response:
        for issuer, fake in self.providers.items():
            if str(request.url).startswith(issuer):
                return await fake.handle(request)
        return httpx.Response(404)


@pytest.fixture
def authentik(signer: Signer) -> FakeAuthentik:
    # OTHER_ISSUER is a provider of the same authentik, signing with the same key, that the API does not trust.
    return FakeAuthentik({i: FakeIssuer(i, [signer]) for i in (PORTAL_ISSUER, CLI_ISSUER, OTHER_ISSUER)})


@pytest.fixture
async def trusted(authentik: FakeAuthentik, clock: ManualClock) -> AsyncIterator[TrustedIssuers]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(authentik.handle)) as http:
        yield TrustedIssuers({PORTAL_ISSUER: ["portal"], CLI_ISSUER: ["cli", "cli-legacy"]}, http=http, clock=clock)


async def trusted_refusal(trusted: TrustedIssuers, token: str) -> str:
    with pytest.raises(InvalidTokenError) as caught:
        await trusted.validate(token)
    return caught.value.reason


async def test_trusted_issuers_accept_each_providers_tokens_for_its_own_client_ids(
    trusted: TrustedIssuers, signer: Signer, clock: ManualClock
) -> None:
    for iss, aud in ((PORTAL_ISSUER, "portal"), (CLI_ISSUER, "cli"), (CLI_ISSUER, "cli-legacy")):
        identity = await trusted.validate(signer.sign(claims(clock, iss=iss, aud=aud, azp=aud)))
        assert identity.sub == "user-1"


async def test_a_token_of_an_untrusted_provider_signed_with_the_same_key_is_refused_on_iss(
    trusted: TrustedIssuers, authentik: FakeAuthentik, signer: Signer, clock: ManualClock
) -> None:
    token = signer.sign(claims(clock, iss=OTHER_ISSUER, aud="other", azp="other"))

    assert await trusted_refusal(trusted, token) == "untrusted issuer"
    assert authentik.providers[OTHER_ISSUER].jwks_fetches == 0  # refused before any key is fetched


async def test_a_trusted_issuer_does_not_vouch_for_another_providers_client_id(
    trusted: TrustedIssuers, signer: Signer, clock: ManualClock
) -> None:
    cli_id_under_portal = signer.sign(claims(clock, iss=PORTAL_ISSUER, aud="cli"))
    foreign_azp = signer.sign(claims(clock, iss=PORTAL_ISSUER, aud="portal", azp="cli"))

    assert await trusted_refusal(trusted, cli_id_under_portal) == "wrong audience"
    assert await trusted_refusal(trusted, foreign_azp) == "wrong authorized party"


@pytest.mark.parametrize(
    ("iss", "reason"),
    [(None, "missing iss claim"), (42, "untrusted issuer"), (PORTAL_ISSUER.rstrip("/"), "untrusted issuer")],
)
async def test_a_missing_malformed_or_slashless_iss_is_refused(
    trusted: TrustedIssuers, signer: Signer, clock: ManualClock, iss: object, reason: str
) -> None:
    # Signed or not makes no difference: the issuer is looked at first.
    token = unsigned({"alg": "RS256", "kid": signer.kid}, claims(clock, iss=iss, aud="portal")) + ".c2ln"
    assert await trusted_refusal(trusted, token) == reason


async def test_trusted_issuers_refuse_garbage_as_malformed(trusted: TrustedIssuers) -> None:
    assert await trusted_refusal(trusted, "not.a.jwt") == "malformed token"
    assert await trusted_refusal(trusted, "") == "malformed token"


async def test_keys_are_fetched_and_cached_per_issuer(
    trusted: TrustedIssuers, authentik: FakeAuthentik, signer: Signer, clock: ManualClock
) -> None:
    for _ in range(3):
        await trusted.validate(signer.sign(claims(clock, iss=PORTAL_ISSUER, aud="portal")))
    await trusted.validate(signer.sign(claims(clock, iss=CLI_ISSUER, aud="cli")))

    fetches = {i: (f.discovery_fetches, f.jwks_fetches) for i, f in authentik.providers.items()}
    assert fetches == {PORTAL_ISSUER: (1, 1), CLI_ISSUER: (1, 1), OTHER_ISSUER: (0, 0)}
    assert trusted.issuers == [PORTAL_ISSUER, CLI_ISSUER]


def test_trusted_issuers_need_at_least_one_issuer(http: httpx.AsyncClient) -> None:
    with pytest.raises(ValueError, match="at least one trusted issuer"):
        TrustedIssuers({}, http=http)


async def test_unknown_kid_triggers_exactly_one_jwks_refresh_then_is_refused(
    validator: TokenValidator, issuer: FakeIssuer, signer: Signer, rsa_key_2: rsa.RSAPrivateKey, clock: ManualClock
) -> None:
    await validator.validate(signer.sign(claims(clock)))
    clock.advance(60)

    reason = await refused(validator, Signer("rogue", rsa_key_2, "RS256").sign(claims(clock)))

    assert reason == "unknown key"
    assert issuer.jwks_fetches == 2


async def test_unknown_kids_in_quick_succession_cause_one_fetch(
    validator: TokenValidator, issuer: FakeIssuer, signer: Signer, rsa_key_2: rsa.RSAPrivateKey, clock: ManualClock
) -> None:
    await validator.validate(signer.sign(claims(clock)))
    clock.advance(60)

    for kid in ("rogue-1", "rogue-2", "rogue-3"):
        assert await refused(validator, Signer(kid, rsa_key_2, "RS256").sign(claims(clock))) == "unknown key"
        clock.advance(1)

    assert issuer.jwks_fetches == 2


async def test_key_rotation_is_picked_up_without_recreating_the_validator(
    validator: TokenValidator, issuer: FakeIssuer, signer: Signer, rsa_key_2: rsa.RSAPrivateKey, clock: ManualClock
) -> None:
    await validator.validate(signer.sign(claims(clock)))
    rotated = Signer("key-2", rsa_key_2, "RS256")
    issuer.signers.append(rotated)
    clock.advance(11)

    identity = await validator.validate(rotated.sign(claims(clock)))

    assert identity.sub == "user-1"
    assert issuer.jwks_fetches == 2
    assert (await validator.validate(signer.sign(claims(clock)))).sub == "user-1"


async def test_jwks_is_reused_within_the_ttl_and_refetched_after(
    validator: TokenValidator, issuer: FakeIssuer, signer: Signer, clock: ManualClock
) -> None:
    await validator.validate(signer.sign(claims(clock)))
    clock.advance(1800)
    await validator.validate(signer.sign(claims(clock)))
    assert issuer.jwks_fetches == 1
    clock.advance(1801)

    await validator.validate(signer.sign(claims(clock)))

    assert issuer.jwks_fetches == 2


async def test_issuer_down_with_a_warm_cache_keeps_validating(
    validator: TokenValidator, issuer: FakeIssuer, signer: Signer, clock: ManualClock
) -> None:
    await validator.validate(signer.sign(claims(clock)))
    issuer.down = True
    clock.advance(3601)  # past the cache TTL, so a refresh is attempted and fails

    identity = await validator.validate(signer.sign(claims(clock)))

    assert identity.sub == "user-1"


@pytest.mark.parametrize("outage", ["down", "http-500", "foreign-discovery", "jwks-without-keys"])
async def test_cold_cache_with_issuer_unavailable_raises_issuer_unavailable(
    validator: TokenValidator, issuer: FakeIssuer, signer: Signer, clock: ManualClock, outage: str
) -> None:
    issuer.down = outage == "down"
    issuer.status = 500 if outage == "http-500" else 200
    issuer.discovery_issuer = OTHER_ISSUER if outage == "foreign-discovery" else None
    issuer.jwks_body = {"issuer": ISSUER} if outage == "jwks-without-keys" else None

    with pytest.raises(IssuerUnavailableError):
        await validator.validate(signer.sign(claims(clock)))


async def test_validation_recovers_once_the_issuer_is_back(
    validator: TokenValidator, issuer: FakeIssuer, signer: Signer, clock: ManualClock
) -> None:
    issuer.down = True
    with pytest.raises(IssuerUnavailableError):
        await validator.validate(signer.sign(claims(clock)))
    issuer.down = False
    clock.advance(11)

    assert (await validator.validate(signer.sign(claims(clock)))).sub == "user-1"


async def test_failed_jwks_fetch_rediscovers_the_jwks_uri_next_time(
    validator: TokenValidator, issuer: FakeIssuer, signer: Signer, clock: ManualClock
) -> None:
    issuer.jwks_status = 404
    with pytest.raises(IssuerUnavailableError):
        await validator.validate(signer.sign(claims(clock)))
    issuer.jwks_status = 200
    clock.advance(11)

    assert (await validator.validate(signer.sign(claims(clock)))).sub == "user-1"
    assert issuer.discovery_fetches == 2


@pytest.mark.parametrize("floor", [10.0, 0.0])
async def test_concurrent_validations_on_a_cold_cache_fetch_once(
    http: httpx.AsyncClient, issuer: FakeIssuer, signer: Signer, clock: ManualClock, floor: float
) -> None:
    validator = TokenValidator(
        issuer=ISSUER, audience=AUDIENCE, http=http, clock=clock, jwks_min_refresh_interval=floor
    )
    tokens = [signer.sign(claims(clock, sub=f"user-{i}")) for i in range(20)]

    identities = await asyncio.gather(*(validator.validate(t) for t in tokens))

    assert {i.sub for i in identities} == {f"user-{i}" for i in range(20)}
    assert (issuer.discovery_fetches, issuer.jwks_fetches) == (1, 1)


async def test_symmetric_key_in_the_jwks_is_ignored(
    validator: TokenValidator, issuer: FakeIssuer, signer: Signer, clock: ManualClock
) -> None:
    issuer.extra_keys.append({"kty": "oct", "kid": "hmac-1", "k": b64(b"shared-secret-of-some-length-32b")})

    assert await refused(validator, signer.sign(claims(clock), kid="hmac-1")) == "unknown key"


# -- ID tokens are not access tokens ------------------------------------------------------------------------
# authentik's ID token is its access token's claim set without azp, uid and scope; at_hash only ever appears in
# an ID token, while nonce and c_hash appear in both (code flow with a nonce; hybrid flow).
ID_TOKEN = "an ID token is not accepted, only an access token"


@pytest.mark.parametrize(
    ("extra", "removed", "outcome"),
    [
        pytest.param({"nonce": "n-1"}, (), None, id="access token of a code flow with a nonce"),
        pytest.param({"scope": ""}, (), None, id="access token granted no scope"),
        pytest.param({"nonce": "n-1", "c_hash": "abc"}, (), None, id="access token of a hybrid flow"),
        pytest.param({}, ("scope",), ID_TOKEN, id="ID token of the token endpoint"),
        pytest.param({"nonce": "n-1"}, ("scope",), ID_TOKEN, id="ID token with a nonce"),
        pytest.param({"at_hash": "x"}, ("scope",), ID_TOKEN, id="ID token of an implicit flow"),
        pytest.param({"at_hash": "x"}, (), ID_TOKEN, id="ID token given a scope claim by a mapping"),
        pytest.param({"scope": ["openid"]}, (), "malformed scope claim", id="scope that is not a string"),
    ],
)
async def test_the_api_tells_id_tokens_from_access_tokens_by_scope_and_at_hash(
    validator: TokenValidator,
    signer: Signer,
    clock: ManualClock,
    extra: dict[str, Any],
    removed: tuple[str, ...],
    outcome: str | None,
) -> None:
    payload = {k: v for k, v in claims(clock, **extra).items() if k not in removed}
    token = signer.sign(payload)

    if outcome is None:
        assert (await validator.validate(token)).sub == "user-1"
    else:
        assert await refused(validator, token) == outcome


async def test_a_validator_expecting_id_tokens_accepts_them(
    http: httpx.AsyncClient, signer: Signer, clock: ManualClock
) -> None:
    id_tokens = TokenValidator(issuer=ISSUER, audience=AUDIENCE, http=http, clock=clock, expects="id")
    payload = {k: v for k, v in claims(clock, nonce="n-1", at_hash="x").items() if k != "scope"}

    identity = await id_tokens.validate(signer.sign(payload))

    assert identity.claims["nonce"] == "n-1"


@pytest.mark.parametrize("header", ["Bearer abc.def.ghi", "bearer abc.def.ghi", "BEARER   abc.def.ghi  "])
def test_bearer_token_is_read_with_a_case_insensitive_scheme(header: str) -> None:
    assert bearer_token(header) == "abc.def.ghi"


@pytest.mark.parametrize("header", [None, "", "Basic dXNlcjpwdw==", "Bearer", "Bearer a b", "Bearerabc"])
def test_bearer_token_refuses_anything_else(header: str | None) -> None:
    with pytest.raises(InvalidTokenError) as caught:
        bearer_token(header)

    assert caught.value.reason == "missing bearer token"
