#!/usr/bin/python3
"""SMTP server for taskstream development and tests; started by scripts/smtp.

Normal mode (aiosmtpd, Debian's python3-aiosmtpd): accepts every message and keeps it as
<mail-dir>/<time>-<n>.eml: the message exactly as received (after SMTP dot-unstuffing),
preceded by X-Envelope-From / X-Envelope-To lines so tests can check the envelope too.
Each file is written to a dot-named temp file and renamed, so a reader never sees half a
message. The 250 reply to DATA is sent only after the rename: a client told "sent" can
find its file.

Test hooks, so clients can be tested against real SMTP replies rather than a mock:
  recipient local part starting "reject"   -> 550 5.1.1 (permanent)
  recipient local part starting "tempfail" -> 451 4.3.0 (transient)
  AUTH PLAIN/LOGIN (also without TLS: loopback only) succeeds only for the user and password
  in env SMTP_TEST_USER / SMTP_TEST_PASSWORD (default taskstream / taskstream-smtp; read
  from the environment so they stay off the command line); a client that does not
  authenticate may still send.

Stall mode: accepts TCP connections and never answers (no greeting), for client timeout
tests. Needs no aiosmtpd.
"""

import argparse
import asyncio
import itertools
import logging
import os
import signal
import sys
import time

# aiosmtpd 1.4 logs a warning about its own deprecated attribute on every successful AUTH.
logging.getLogger("mail.log").addFilter(lambda record: "login_data is deprecated" not in record.getMessage())


def store(mail_dir: str, counter, mail_from: str, rcpt_tos, content: bytes) -> str:
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{int(now % 1 * 1e6):06d}Z"
    name = f"{stamp}-{next(counter)}.eml"
    final = os.path.join(mail_dir, name)
    tmp = os.path.join(mail_dir, f".{name}.tmp")
    # Envelope values come from the SMTP session; aiosmtpd already refuses CR/LF in them.
    envelope = f"X-Envelope-From: <{mail_from}>\r\nX-Envelope-To: " + ", ".join(f"<{r}>" for r in rcpt_tos) + "\r\n"
    with open(tmp, "wb") as f:
        f.write(envelope.encode("utf-8"))
        f.write(content)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, final)
    return final


class KeepingHandler:
    def __init__(self, mail_dir: str):
        self.mail_dir = mail_dir
        # Per-process counter: together with the microsecond time stamp it keeps names unique.
        self.counter = itertools.count(1)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith("reject"):
            return "550 5.1.1 <%s>: mailbox unavailable (test hook)" % address
        if local.startswith("tempfail"):
            return "451 4.3.0 <%s>: try again later (test hook)" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        # original_content: the bytes as received, before any decoding by aiosmtpd.
        path = store(self.mail_dir, self.counter, envelope.mail_from, envelope.rcpt_tos, envelope.original_content)
        print(f"stored {os.path.basename(path)} from <{envelope.mail_from}> to {envelope.rcpt_tos}", flush=True)
        return "250 OK message kept as " + os.path.basename(path)


def make_authenticator(user: str, password: str):
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        # handled=False: aiosmtpd then sends the 535 reply itself (True would mean "already replied").
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    return authenticator


async def serve_normal(args) -> None:
    from aiosmtpd.smtp import SMTP

    os.makedirs(args.mail_dir, exist_ok=True)
    handler = KeepingHandler(args.mail_dir)
    authenticator = make_authenticator(
        os.environ.get("SMTP_TEST_USER", "taskstream"), os.environ.get("SMTP_TEST_PASSWORD", "taskstream-smtp")
    )

    def factory():
        return SMTP(
            handler,
            hostname="taskstream-smtp",
            data_size_limit=10 * 1024 * 1024,
            enable_SMTPUTF8=True,
            decode_data=False,
            authenticator=authenticator,
            auth_required=False,
            auth_require_tls=False,  # loopback only; lets tests exercise AUTH without certificates
        )

    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, host=args.host, port=args.port)
    await run_until_signalled(server, f"smtp server on {args.host}:{args.port}, mail dir {args.mail_dir}")


class Silent(asyncio.Protocol):
    """Holds the connection open and never writes: the client waits for a greeting forever."""

    def data_received(self, data):
        pass


async def serve_stall(args) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Silent, host=args.host, port=args.port)
    await run_until_signalled(server, f"stalling server on {args.host}:{args.port} (never answers)")


async def run_until_signalled(server, what: str) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(what, flush=True)
    await stop.wait()
    server.close()
    print("stopped", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=("normal", "stall"), default="normal")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=2525)
    p.add_argument("--mail-dir", required=True)
    args = p.parse_args()
    asyncio.run(serve_normal(args) if args.mode == "normal" else serve_stall(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
