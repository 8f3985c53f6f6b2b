"""Real alert receivers for the routing tests and benchmarks: a webhook server that checks
signatures, and an SMTP server (aiosmtpd), each recording what it received, with the time;
and what a run against them sends: the signing secret they check, a contact-me form, a
roster alerting reps on them. Tests and benchmarks share these without importing each
other."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from aiosmtpd.controller import Controller

from leadscore.infra.processes import free_port
from leadscore.webhook_signatures import signature_error


@dataclass
class Received:
    at: float
    body: dict[str, Any]
    signature_error: str | None
    method: str = "POST"


#: In `Webhook.hanging` and `Webhook.failing`: matches every request.
EVERY = ""


@dataclass
class Webhook:
    """A webhook receiver; `answers` are the statuses of the next requests (then 200), a
    3xx sending the sender to `location`. A request whose body holds one of the strings in
    `hanging` (a rep's name, say) is never answered (until the receiver stops); one that
    holds one in `failing` is answered 500; neither is recorded, only counted."""

    secret: str
    url: str = ""
    received: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    location: str = ""
    hanging: set[str] = field(default_factory=set)
    failing: set[str] = field(default_factory=set)
    #: Seconds every answer takes.
    delay: float = 0.0
    #: Requests left hanging, and answered 500, so far.
    hung: int = 0
    failed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)

    def delivered(self) -> list[Received]:
        """The requests answered 2xx."""
        with self.lock:
            return [item for item in self.received if item.body.get("_status", 200) < 300]


@contextlib.contextmanager
def webhook_receiver(secret: str) -> Iterator[Webhook]:
    receiver = Webhook(secret)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            text = body.decode(errors="replace")
            receiver.stopping.wait(receiver.delay)
            if any(mark in text for mark in receiver.hanging):
                with receiver.lock:
                    receiver.hung += 1
                receiver.stopping.wait()
                return
            if any(mark in text for mark in receiver.failing):
                with receiver.lock:
                    receiver.failed += 1
                self.send_response(500)
                self.end_headers()
                return
            headers = {name.lower(): value for name, value in self.headers.items()}
            error = signature_error(body, headers, receiver.secret, time.time(), 300)
            with receiver.lock:
                status = receiver.answers.pop(0) if receiver.answers else 200
                receiver.received.append(Received(
                    time.time(), {**(orjson.loads(body) if body else {}), "_status": status},
                    error, self.command))
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", receiver.location)
            self.end_headers()

        # A sender that followed a redirect may come back with any method: all are recorded.
        do_GET = do_PUT = do_HEAD = do_POST

        def log_message(self, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        # socketserver's default backlog of 5 drops connections when a worker delivers
        # dozens of alerts at once (as after a Redis outage): a sender then times out on a
        # request the server takes late, and sends it again.
        request_queue_size = 128

    server = Server(("127.0.0.1", free_port()), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/leads"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.stopping.set()
        server.shutdown()
        server.server_close()


@dataclass
class Mailbox:
    """An SMTP server; `answers` are its replies to the next recipients, `data_answers` to
    the next messages (then 250)."""

    host: str = "127.0.0.1"
    port: int = 0
    messages: list[tuple[float, Message]] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    data_answers: list[str] = field(default_factory=list)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:
        if self.answers:
            return self.answers.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_answers:
            return self.data_answers.pop(0)
        self.messages.append((time.time(), message_from_bytes(envelope.content)))
        return "250 Message accepted for delivery"


@contextlib.contextmanager
def smtp_server() -> Iterator[Mailbox]:
    mailbox = Mailbox(port=free_port())
    controller = Controller(mailbox, hostname=mailbox.host, port=mailbox.port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


#: The Standard Webhooks secret the receivers check (24 bytes, base64).
SECRET = "whsec_" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3"


def contact_form(email: str, country: str = "ES") -> bytes:
    return orjson.dumps({"form": "contact_me", "email": email,
                         "submitted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                         "fields": {"name": "Ana López", "title": "VP Sales",
                                    "company": "Acme", "country": country}})


def isolation_roster(channels: dict[str, tuple[str, Webhook]]) -> str:
    """Rep `good` (Spain) and rep `slow` (France), both alerted on every channel (name:
    type, receiver)."""
    names = list(channels)
    text = "".join(f'\n  {name}: {{type: {kind}, url: "{receiver.url}", '
                   'secret_env: TEST_WEBHOOK_SECRET}'
                   for name, (kind, receiver) in channels.items())
    teams, reps = "", ""
    for rep, country in (("good", "ES"), ("slow", "FR")):
        teams += f"""
  - id: {rep}-team
    territory: {{countries: [{country}]}}
    escalation: {rep}
    sla: {{fast_track: {{acknowledge_within: 1h, ladder: [{{after: 1h, action: remind}}]}}}}"""
        reps += f"""
  - id: {rep}
    name: Rep {rep}
    email: {rep}@northwind.example
    role: MRR
    team: {rep}-team
    working_hours: {{days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "00:00"}}
    alerts: [{", ".join(names)}]"""
    return f"teams:{teams}\nreps:{reps}\nchannels:{text}\n"
