"""A real SMTP server (aiosmtpd) on 127.0.0.1 for the integration tests.

The tests point the mail notifier at it and read back what it stored, so
the client side is checked against a server that speaks the protocol for
real, not against a hand-written stand-in. It can also misbehave on
purpose: answer the first DATA commands with a temporary failure, refuse
some recipients, and require a login.

    smtp_server.py --port-file PATH --maildir DIR [--fail-first N]
                   [--reject PATTERN] [--auth USER:PASS] [--log FILE]

The port (bound as 0, so the system picks a free one) is written to
--port-file once the server listens. Each accepted message is stored in
the Maildir as the exact bytes received. --log gets one line per outcome:
"451 <recipients>", "250 <Message-ID>", "550 <recipient>", "535 <login>".
SIGTERM (or SIGINT) stops the server and it exits with status 0.
"""

import argparse
import asyncio
import logging
import mailbox
import os
import signal
import sys
import warnings
from email.parser import BytesHeaderParser
from email.policy import default as default_policy

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Handler:
    """aiosmtpd hooks: refuse recipients, fail DATA, store and log mail."""

    def __init__(self, maildir, fail_first, reject, log):
        self.maildir = mailbox.Maildir(maildir, create=True)
        self.fail_left = fail_first  # shared by every connection
        self.reject = reject
        self.log = log

    def note(self, line):
        if self.log is not None:
            self.log.write(line + "\n")
            self.log.flush()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reject and self.reject in address:
            self.note(f"550 {address}")
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.fail_left > 0:
            self.fail_left -= 1
            self.note("451 " + " ".join(envelope.rcpt_tos))
            return "451 4.3.0 Try again later"
        raw = envelope.original_content  # bytes, after dot-unstuffing only
        self.maildir.add(raw)  # bytes are written as they are
        headers = BytesHeaderParser(policy=default_policy).parsebytes(raw)
        message_id = headers.get("Message-ID")
        self.note("250 " + (str(message_id).strip() if message_id else "-"))
        return "250 OK"


def authenticator(user, password, handler):
    """An aiosmtpd authenticator accepting only USER/PASS (PLAIN or LOGIN)."""

    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        if not ok:
            login = getattr(auth_data, "login", b"")
            handler.note("535 " + login.decode("utf-8", "replace"))
        return AuthResult(success=ok, handled=False)

    return check


async def serve(args):
    log = open(args.log, "a", encoding="utf-8") if args.log else None
    handler = Handler(args.maildir, args.fail_first, args.reject, log)
    options = {"hostname": "localhost"}
    if args.auth:
        user, sep, password = args.auth.partition(":")
        if not sep:
            sys.exit("--auth wants USER:PASS")
        # Loopback only, so a login without TLS is fine here.
        options.update(
            auth_required=True,
            auth_require_tls=False,
            authenticator=authenticator(user, password, handler),
        )

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, **options), host="127.0.0.1", port=0
    )
    port = server.sockets[0].getsockname()[1]

    # Tell the waiting test the port: written whole, then renamed into place.
    tmp = args.port_file + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(f"{port}\n")
    os.replace(tmp, args.port_file)

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    await server.wait_closed()
    if log is not None:
        log.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--maildir", required=True)
    parser.add_argument("--fail-first", type=int, default=0, metavar="N")
    parser.add_argument("--reject", metavar="PATTERN")
    parser.add_argument("--auth", metavar="USER:PASS")
    parser.add_argument("--log", metavar="FILE")
    args = parser.parse_args()
    # aiosmtpd warns about AUTH without TLS; on loopback that is intended.
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
