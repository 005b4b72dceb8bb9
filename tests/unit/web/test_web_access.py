"""The web page against strangers, in process: login, sessions and CSRF, exposure, the Host
header, throttled logins, one gateway channel shared by every visitor."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from podium.core.errors import FailedPrecondition
from podium.web.app import create_app
from podium.web.server import check_exposure
from podium.web.sessions import Sessions
from tests.support.web import JOB_ID, KEY, FakeGateway, csrf_of, finished_job, logged_in

# --- login, sessions, CSRF ---------------------------------------------------------


def test_pages_send_a_visitor_without_a_key_to_the_login_form(web):
    answer = web.get("/jobs?state=running", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login?next=/jobs%3Fstate%3Drunning"
    assert 'data-testid="api-key-input"' in web.get("/login").text


def test_a_wrong_key_is_refused_and_a_right_one_gets_a_fresh_cookie(web):
    first = web.get("/login")
    anonymous = web.cookies.get("podium_session")
    refused = web.post("/login", data={"api_key": "nope", "csrf_token": csrf_of(first.text)})
    assert 'data-testid="login-error"' in refused.text and web.cookies.get("podium_session") == anonymous
    answer = web.post("/login", data={"api_key": KEY, "csrf_token": csrf_of(first.text)}, follow_redirects=False)
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and KEY not in cookie
    assert web.cookies.get("podium_session") != anonymous  # a new session id at login
    page = web.get("/jobs")
    assert page.status_code == 200 and KEY not in page.text


def test_posts_without_the_session_csrf_token_are_refused(web, gateway):
    finished_job(gateway, [])
    logged_in(web)
    for token in ("", "0" * 64):
        answer = web.post(f"/jobs/{JOB_ID}/cancel", data={"csrf_token": token})
        assert answer.status_code == 400 and "CSRF" in answer.text
    assert gateway.cancelled == []
    other = TestClient(web.app, base_url="http://127.0.0.1")  # another visitor's token is not this session's
    answer = web.post(f"/jobs/{JOB_ID}/cancel", data={"csrf_token": csrf_of(other.get("/login").text)})
    assert answer.status_code == 400 and gateway.cancelled == []


def test_login_redirects_only_within_the_site(web):
    token = csrf_of(web.get("/login").text)
    for target in ("//evil.example/", "https://evil.example/", "/\\evil"):
        answer = web.post("/login", data={"api_key": KEY, "csrf_token": token, "next": target}, follow_redirects=False)
        assert answer.headers["location"] == "/"
        token = csrf_of(web.get("/login").text)


def test_sessions_expire_and_forged_cookies_are_refused():
    sessions = Sessions(ttl_s=60)
    session, cookie = sessions.new("k")
    assert sessions.get(cookie).api_key == "k"
    assert sessions.get(cookie[:-2] + "xx") is None
    assert Sessions(ttl_s=60).get(cookie) is None  # another process: another key
    sessions.end(session)
    assert sessions.get(cookie) is None


def test_the_pages_forbid_inline_script_and_framing(web):
    headers = web.get("/login").headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"


# --- exposure ----------------------------------------------------------------------


def test_a_public_address_needs_a_gateway_with_keys(settings):
    public = settings.model_copy(update={"host": "0.0.0.0", "gateway_wait_s": 0})
    with pytest.raises(FailedPrecondition, match="without an API key"):
        check_exposure(public, FakeGateway(keys=()))
    check_exposure(public, FakeGateway())  # keys: every visitor logs in
    check_exposure(public.model_copy(update={"allow_unauthenticated": True}), FakeGateway(keys=()))
    check_exposure(settings, FakeGateway(keys=()))  # loopback


# --- the Host header ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "allowed"),
    [
        ("127.0.0.1:8080", True),
        ("localhost:8080", True),
        ("LOCALHOST.", True),
        ("[::1]:8080", True),
        ("10.1.2.3:8080", True),  # a kubelet probe, a port-forward: browsers never send an address for a name
        ("podium.example.org", True),
        ("podium.example.org:443", True),
        ("evil.example", False),
        ("evil.example:8080", False),
        ("localhost.evil.example", False),
        ("", False),
        ("[::1", False),
    ],
)
def test_host_allow_list(header: str, allowed: bool):
    from podium.web.hosts import allowed_names, host_allowed

    assert host_allowed(header, allowed_names("podium.example.org, ", "127.0.0.1")) is allowed


def test_a_request_for_an_unknown_host_gets_400(web, gateway):
    """DNS rebinding: a site pointing its name at the page's address gets nothing."""
    for path in ("/jobs", "/login", "/healthz", "/api/jobs"):
        answer = web.get(path, headers={"Host": "evil.example"})
        assert answer.status_code == 400 and "PODIUM_WEB_ALLOWED_HOSTS" in answer.text
        assert "set-cookie" not in answer.headers
    assert web.get("/login", headers={"Host": "localhost:8080"}).status_code == 200


def test_a_name_the_operator_allows_is_served(gateway, settings):
    settings = settings.model_copy(update={"allowed_hosts": "podium.example.org"})
    with TestClient(create_app(settings, link=gateway), base_url="http://podium.example.org") as client:
        assert client.get("/login").status_code == 200


def test_cookieless_visitors_cannot_push_a_login_out(web, gateway):
    """Anonymous sessions are the signed cookie alone: 20,000 of them hold nothing."""
    token = logged_in(web)
    sessions = web.app.state.ctx.sessions
    stranger = TestClient(web.app, base_url="http://127.0.0.1")
    for _ in range(200):
        stranger.cookies.clear()
        assert stranger.get("/login").status_code == 200
    for _ in range(20_000):
        sessions.new()  # what each cookieless request does
    assert len(sessions) == 1
    page = web.get("/jobs")
    assert page.status_code == 200 and csrf_of(page.text) == token


def test_visitors_share_one_channel_and_never_close_it(settings):
    """Logins with 100 random keys create no channel and close none: no call in flight is cut."""
    from podium.web.link import GatewayLink

    link = GatewayLink(settings.model_copy(update={"gateway": "127.0.0.1:1"}))
    first = link.client("key-a")
    closed = []
    first._channel.close = lambda: closed.append(True)
    clients = [link.client(f"random-{i}") for i in range(100)]
    assert all(c._channel is first._channel for c in clients)
    assert clients[5]._metadata == (("x-api-key", "random-5"),) and link.client("")._metadata == ()
    for client in clients:
        client.close()
    assert closed == []
    link.close()
    assert closed == [True]


def test_failed_logins_from_one_address_are_throttled(web):
    """Ten wrong keys a minute from one address; then 429 with the wait, even for the right key."""
    from podium.web.sessions import MAX_FAILED_LOGINS

    token = csrf_of(web.get("/login").text)
    for _ in range(MAX_FAILED_LOGINS):
        refused = web.post("/login", data={"api_key": "guess", "csrf_token": token})
        assert refused.status_code == 200 and 'data-testid="login-error"' in refused.text
    limited = web.post("/login", data={"api_key": KEY, "csrf_token": token}, follow_redirects=False)
    assert limited.status_code == 429 and "too many failed logins" in limited.text


def test_the_throttle_forgets_failures_after_the_window(monkeypatch):
    from podium.web import sessions

    clock = [1000.0]
    monkeypatch.setattr(sessions.time, "monotonic", lambda: clock[0])
    throttle = sessions.LoginThrottle(limit=2, window_s=60)
    throttle.failed("a")
    throttle.failed("a")
    assert throttle.wait_s("a") == 60 and throttle.wait_s("b") == 0
    clock[0] += 61
    assert throttle.wait_s("a") == 0
