"""Launch and session tokens: what is accepted, and every way a token is refused."""

from __future__ import annotations

import json
import time

import pytest

from session_svc.tokens import (
    EDDSA,
    HS256,
    LaunchClaims,
    SessionClaims,
    SignKey,
    TokenError,
    b64url_encode,
    issue_session,
    parse_operator_keys,
    verify_launch,
    verify_session,
)
from tests.session_svc.operator import Operator, operator_keys_json

NOW = time.time()


@pytest.fixture(params=[HS256, EDDSA])
def operator(request: pytest.FixtureRequest) -> Operator:
    return Operator("op-1", alg=request.param)


def _verify(operator: Operator, token: str, now: float | None = None) -> LaunchClaims:
    key = parse_operator_keys(operator_keys_json(operator))["op-1"]
    when = time.time() if now is None else now  # tokens are signed at call time
    return verify_launch(token, "op-1", key, when, max_lifetime_s=600)


def test_a_documented_launch_token_is_accepted(operator: Operator) -> None:
    claims = operator.claims("player-7", cur="USD", jur="CA-ON")
    launch = _verify(operator, operator.sign(claims))
    assert (launch.player_id, launch.currency, launch.jurisdiction) == ("player-7", "USD", "CA-ON")
    assert launch.nonce == claims["jti"] and launch.expires_at == claims["exp"]


def test_an_audience_list_is_accepted(operator: Operator) -> None:
    token = operator.launch_token("p", aud=["other", "casino.session"])
    assert _verify(operator, token).player_id == "p"


def test_a_forged_signature_is_refused(operator: Operator) -> None:
    forger = Operator("op-1", alg=operator.alg)  # same id, another key
    with pytest.raises(TokenError, match="signature"):
        _verify(operator, forger.launch_token("p"))


def test_a_changed_payload_is_refused(operator: Operator) -> None:
    header, _, signature = operator.launch_token("alice").split(".")
    payload = b64url_encode(json.dumps(operator.claims("bob")).encode())
    with pytest.raises(TokenError, match="signature"):
        _verify(operator, f"{header}.{payload}.{signature}")


def test_an_expired_launch_token_is_refused_as_expired(operator: Operator) -> None:
    token = operator.launch_token("p", iat=int(NOW) - 200, exp=int(NOW) - 1)
    with pytest.raises(TokenError) as refused:
        _verify(operator, token)
    assert refused.value.expired


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"iss": "op-2"}, "issuer"),
        ({"aud": "someone-else"}, "audience"),
        ({"aud": None}, "audience"),
        ({"iat": int(NOW) + 120, "exp": int(NOW) + 200}, "future"),
        ({"nbf": int(NOW) + 120}, "future"),
        ({"exp": int(NOW) + 3600}, "lifetime"),
        ({"exp": str(int(NOW) + 60)}, "exp"),
        ({"exp": None}, "exp"),
        ({"sub": ""}, "sub"),
        ({"sub": "has space"}, "sub"),
        ({"cur": "eur"}, "cur"),
        ({"jur": "Malta"}, "jur"),
        ({"jti": "short"}, "jti"),
        ({"jti": None}, "jti"),
    ],
)
def test_bad_claims_are_refused(
    operator: Operator, overrides: dict[str, object], match: str
) -> None:
    # Times are pinned to NOW (taken at collection) so the cases mean the same however late
    # in a long run this test executes.
    claims = {"iat": int(NOW), "exp": int(NOW) + 120, **overrides}
    with pytest.raises(TokenError, match=match):
        _verify(operator, operator.launch_token("p", **claims), now=NOW)


def test_the_algorithm_is_pinned_by_the_key() -> None:
    """An HS256 token 'signed' with an Ed25519 operator's public key must not pass."""
    victim = Operator("op-1", alg=EDDSA)
    public = victim.key_entry()["public_key"]
    attacker = Operator("op-1", alg=HS256, secret=public.encode())
    with pytest.raises(TokenError, match="algorithm"):
        _verify(victim, attacker.launch_token("p"))


@pytest.mark.parametrize(
    "token",
    ["", "a.b", "a.b.c.d", "!!.??.**", "e30.e30.", "W10.e30.AAAA", "x" * 5000, "é.é.é"],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(TokenError):
        _verify(Operator("op-1"), token)


def test_a_session_token_round_trips_and_expires() -> None:
    key = SignKey(HS256, secret=b"k" * 32)
    claims = SessionClaims("s-1", "op-1", "p-1", "EUR", "MT", int(NOW), int(NOW) + 300)
    token = issue_session(claims, key)
    assert verify_session(token, key.verify_key(), NOW) == claims
    with pytest.raises(TokenError) as refused:
        verify_session(token, key.verify_key(), NOW + 300)
    assert refused.value.expired
    with pytest.raises(TokenError, match="signature"):
        verify_session(token, SignKey(HS256, secret=b"j" * 32).verify_key(), NOW)


def test_a_launch_token_is_not_a_session_token() -> None:
    """Same key, other issuer: a token of one kind never passes as the other."""
    operator = Operator("op-1")
    key = SignKey(HS256, secret=operator.secret)
    with pytest.raises(TokenError, match="not a session token"):
        verify_session(operator.launch_token("p"), key.verify_key(), NOW)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("not json", "not JSON"),
        ("[]", "JSON object"),
        ('{"o": {"alg": "none"}}', "alg"),
        ('{"o": {"alg": "HS256", "secret": "c2hvcnQ"}}', "32 bytes"),
        ('{"o": {"alg": "EdDSA", "public_key": "AAAA"}}', "32 bytes"),
        ('{"o": {"alg": "HS256"}}', "'o'"),
        ('{"acme:eu": {"alg": "HS256", "secret": "c2hvcnQ"}}', "operator id 'acme:eu'"),
        ('{"": {"alg": "HS256", "secret": "c2hvcnQ"}}', "operator id ''"),
    ],
)
def test_bad_operator_key_files_are_refused_at_start(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_operator_keys(text)
