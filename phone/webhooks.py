"""Webhooks to the service, signed exactly as Twilio signs them."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests
from twilio.request_validator import RequestValidator

# Twilio waits this long for a webhook before giving up on it.
TWILIO_WEBHOOK_TIMEOUT = 15.0


class PhoneError(Exception):
    """Something the person at the terminal phone should be told, in plain words."""


@dataclass(frozen=True)
class WebhookAnswer:
    """What the service answered to one webhook."""

    url: str
    status: int
    content_type: str
    body: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def is_xml(self) -> bool:
        return self.content_type.split(";")[0].strip() in {"text/xml", "application/xml"}


class Webhooks:
    """Sends Twilio's webhooks to the service.

    URLs are the public ones the service handed out (under ``public_base_url``), and
    signatures are computed over them; requests go to ``listen_url`` instead when the
    service listens somewhere else (behind a proxy, or on a test port).
    """

    def __init__(
        self,
        public_base_url: str,
        auth_token: str,
        listen_url: str | None = None,
        session: requests.Session | None = None,
        timeout: float = TWILIO_WEBHOOK_TIMEOUT,
    ) -> None:
        self.public_base_url = public_base_url.rstrip("/")
        self.listen_url = (listen_url or public_base_url).rstrip("/")
        self.validator = RequestValidator(auth_token)
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = "TwilioProxy/1.1"
        self.timeout = timeout

    def public_url(self, path: str) -> str:
        """The public URL of a path on the service, e.g. ``/sms/inbound``."""
        return self.public_base_url + path

    def destination(self, url: str) -> str:
        """Where a request for a public URL actually goes."""
        public = urlsplit(self.public_base_url)
        target = urlsplit(url)
        if (target.scheme, target.netloc) != (public.scheme, public.netloc):
            return url
        listen = urlsplit(self.listen_url)
        return urlunsplit(
            (listen.scheme, listen.netloc, listen.path + target.path, target.query, "")
        )

    def send(self, url: str, form: dict[str, str], method: str = "POST") -> WebhookAnswer:
        """Send a webhook as Twilio does: form-encoded POST (or GET with the query), signed."""
        method = method.upper()
        if method == "GET":
            separator = "&" if urlsplit(url).query else "?"
            url, form = f"{url}{separator}{urlencode(form)}", {}
        elif method != "POST":
            raise PhoneError(f"Twilio only requests webhooks with GET or POST, not {method}")
        headers = {"X-Twilio-Signature": self.validator.compute_signature(url, form)}
        try:
            response = self.session.request(
                method,
                self.destination(url),
                data=form or None,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.Timeout:
            raise PhoneError(
                f"the service did not answer {url} within {self.timeout:.0f} s"
            ) from None
        except requests.RequestException as exc:
            raise PhoneError(
                f"cannot reach the service at {self.destination(url)} "
                f"({type(exc).__name__}): is it running? (--url says where it listens)"
            ) from None
        return WebhookAnswer(
            url=url,
            status=response.status_code,
            content_type=response.headers.get("Content-Type", ""),
            body=response.text,
        )


def inbound_text_form(
    *, account_sid: str, sid: str, from_number: str, to: str, body: str
) -> dict[str, str]:
    """The form Twilio posts to a number's SMS webhook for a text it received."""
    return {
        "AccountSid": account_sid,
        "ApiVersion": "2010-04-01",
        "Body": body,
        "From": from_number,
        "MessageSid": sid,
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsMessageSid": sid,
        "SmsSid": sid,
        "SmsStatus": "received",
        "To": to,
    }


def describe_failure(answer: WebhookAnswer) -> str:
    """Why Twilio would not use a webhook's answer, in words."""
    if answer.status == 403:
        return (
            f"the service refused the webhook to {answer.url} (HTTP 403): its signature "
            "did not check out; the phone signs with the service's auth token for the "
            "URL under PUBLIC_BASE_URL"
        )
    if not answer.ok:
        return f"the service answered {answer.url} with HTTP {answer.status}"
    return f"the service answered {answer.url} with {answer.content_type or 'no content type'}"
