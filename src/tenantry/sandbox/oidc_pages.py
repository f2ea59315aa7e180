"""Plain, accessible HTML pages of the sandbox OIDC issuer: sign-in, device code entry, messages."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from starlette.responses import HTMLResponse

# Inline styles only and nothing external, so the pages work offline and behind any proxy.
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:26rem;margin:3rem auto;padding:0 1rem;line-height:1.5}"
    "label{display:block;margin-top:1rem;font-weight:600}"
    "input{width:100%;padding:.5rem;font-size:1rem;box-sizing:border-box}"
    "button{margin-top:1.25rem;margin-right:.5rem;padding:.5rem 1rem;font-size:1rem}"
    ".error{border:2px solid #a00;color:#a00;padding:.5rem;margin-top:1rem}"
    ":focus{outline:3px solid #05a;outline-offset:2px}"
)


def _document(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n<h1>{escape(title)}</h1>\n{body}\n</main>\n</body>\n</html>\n"
    )


def _error(message: str | None) -> str:
    if not message:
        return ""
    return f'<p class="error" role="alert" id="form-error">{escape(message)}</p>\n'


def _credentials(username: str, described: bool) -> str:
    described_by = ' aria-describedby="form-error"' if described else ""
    return (
        '<label for="username">Username</label>\n'
        f'<input id="username" name="username" autocomplete="username" required value="{escape(username)}"'
        f"{described_by}>\n"
        '<label for="password">Password</label>\n'
        '<input id="password" name="password" type="password" autocomplete="current-password" required'
        f"{described_by}>\n"
    )


def page(html: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


def login_page(
    *, action: str, client_name: str, params: Mapping[str, str], username: str = "", error: str | None = None
) -> str:
    """The sign-in form; the authorization request travels along in hidden fields."""
    hidden = "".join(
        f'<input type="hidden" name="{escape(key)}" value="{escape(value)}">\n'
        for key, value in params.items()
        if value
    )
    body = (
        f"<p>Sign in to continue to <strong>{escape(client_name)}</strong>.</p>\n"
        f"{_error(error)}"
        f'<form method="post" action="{escape(action)}">\n{hidden}'
        f"{_credentials(username, bool(error))}"
        '<button type="submit" name="action" value="login">Sign in</button>\n'
        '<button type="submit" name="action" value="deny" formnovalidate>Cancel</button>\n'
        "</form>"
    )
    return _document("Sign in", body)


def device_page(*, action: str, user_code: str = "", username: str = "", error: str | None = None) -> str:
    """Where a user types the code shown on their device, signs in, and approves or denies it."""
    described_by = ' aria-describedby="form-error"' if error else ""
    body = (
        "<p>Enter the nine-digit code shown on your device, then sign in to approve it.</p>\n"
        f"{_error(error)}"
        f'<form method="post" action="{escape(action)}">\n'
        '<label for="user_code">Device code</label>\n'
        f'<input id="user_code" name="user_code" autocomplete="off" inputmode="numeric" required '
        f'value="{escape(user_code)}"{described_by}>\n'
        f"{_credentials(username, bool(error))}"
        '<button type="submit" name="action" value="approve">Approve</button>\n'
        '<button type="submit" name="action" value="deny">Deny</button>\n'
        "</form>"
    )
    return _document("Connect a device", body)


def message_page(title: str, message: str) -> str:
    return _document(title, f"<p>{escape(message)}</p>")
