#!/usr/bin/python3
"""lmtp_sink.py - a minimal LMTP server (RFC 2033) that stores what it gets.

    lmtp_sink.py --port PORT --out DIR [--fail-rate P] [--fail-code 451]
                 [--delay S] [--max-size BYTES] [--host 127.0.0.1]

Listens on HOST:PORT (default host 127.0.0.1). Speaks LHLO, MAIL, RCPT, DATA,
RSET, NOOP, QUIT with PIPELINING, ENHANCEDSTATUSCODES, 8BITMIME, SMTPUTF8 and
SIZE. Each accepted transaction is written to DIR as two files:

    DIR/<stamp>.eml   the message exactly as received (wire form: CRLF line
                      ends, dot-stuffing removed)
    DIR/<stamp>.json  {"mail_from": "...", "rcpt": ["...", ...], "time": ...,
                       "size": N, "mail_params": [...]}

The .eml is complete before the .json appears (both are renamed into place),
so readers may wait for .json files. After DATA one reply is sent per
recipient (LMTP); all recipients of a transaction share one fate.

Fault injection: --fail-rate P answers a fraction P (0..1) of the messages
with --fail-code (default 451, "4.3.0"; use 5xx for a permanent failure) for
every recipient and stores nothing; --delay S waits S seconds after the final
"." before replying. Every transaction is logged to stderr as one line
("accepted"/"failed", sender, recipients). SIGTERM/SIGINT stop the server.
Python 3 standard library only.
"""
import argparse
import asyncio
import json
import os
import random
import signal
import socket
import sys
import time

HOSTNAME = socket.gethostname() or "lmtp-sink"


class Session:
    def __init__(self, args, reader, writer, counter):
        self.args, self.r, self.w, self.counter = args, reader, writer, counter
        self.greeted = False
        self.reset()

    def reset(self):
        self.mail_from = None
        self.mail_params = []
        self.rcpt = []

    def reply(self, text):
        self.w.write(text.encode("utf-8", "replace") + b"\r\n")

    async def run(self):
        self.reply(f"220 {HOSTNAME} LMTP lmtp_sink ready")
        while True:
            await self.w.drain()
            line = await self.r.readline()
            if not line:
                return
            cmd = line.rstrip(b"\r\n").decode("utf-8", "replace")
            verb, _, arg = cmd.partition(" ")
            verb = verb.upper()
            if verb == "LHLO":
                self.greeted = True
                self.reset()
                self.w.write(
                    f"250-{HOSTNAME}\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n"
                    f"250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE {self.args.max_size}\r\n"
                    .encode())
            elif verb in ("HELO", "EHLO"):
                self.reply("500 5.5.1 this is LMTP, say LHLO")
            elif verb == "MAIL":
                self.mail(arg)
            elif verb == "RCPT":
                self.rcpt_to(arg)
            elif verb == "DATA":
                if not await self.data():
                    return
            elif verb == "RSET":
                self.reset()
                self.reply("250 2.0.0 Ok")
            elif verb == "NOOP":
                self.reply("250 2.0.0 Ok")
            elif verb == "QUIT":
                self.reply("221 2.0.0 Bye")
                await self.w.drain()
                return
            else:
                self.reply("500 5.5.2 command not recognized")

    @staticmethod
    def path(arg, prefix):
        """'FROM:<a@b> X=Y' -> ('a@b', ['X=Y']) or None if malformed."""
        if not arg.upper().startswith(prefix):
            return None
        rest = arg[len(prefix):].lstrip()
        if not rest.startswith("<") or ">" not in rest:
            return None
        addr, _, params = rest[1:].partition(">")
        return addr, params.split()

    def mail(self, arg):
        if not self.greeted:
            self.reply("503 5.5.1 send LHLO first")
            return
        if self.mail_from is not None:
            self.reply("503 5.5.1 nested MAIL command")
            return
        p = self.path(arg, "FROM:")
        if p is None:
            self.reply("501 5.5.4 syntax: MAIL FROM:<address>")
            return
        for param in p[1]:
            k, _, v = param.partition("=")
            if k.upper() == "SIZE" and v.isdigit() and int(v) > self.args.max_size:
                self.reply("552 5.3.4 message too big")
                return
        self.mail_from, self.mail_params = p
        self.reply("250 2.1.0 Ok")

    def rcpt_to(self, arg):
        if self.mail_from is None:
            self.reply("503 5.5.1 need MAIL first")
            return
        p = self.path(arg, "TO:")
        if p is None or not p[0]:
            self.reply("501 5.5.4 syntax: RCPT TO:<address>")
            return
        self.rcpt.append(p[0])
        self.reply("250 2.1.5 Ok")

    async def data(self):
        """Reads one message; False if the connection is gone."""
        if self.mail_from is None or not self.rcpt:
            self.reply("503 5.5.1 need MAIL and RCPT first")
            return True
        self.reply("354 3.0.0 end data with <CR><LF>.<CR><LF>")
        await self.w.drain()
        chunks, size = [], 0
        while True:
            line = await self.r.readline()
            if not line:
                return False
            if line in (b".\r\n", b".\n"):
                break
            if line.startswith(b"."):
                line = line[1:]
            size += len(line)
            if size <= self.args.max_size:
                chunks.append(line)
        if self.args.delay:
            await asyncio.sleep(self.args.delay)
        if size > self.args.max_size:
            code, text, ok = 552, "5.3.4 message too big", False
        elif random.random() < self.args.fail_rate:
            c = self.args.fail_code
            code, text, ok = c, f"{c // 100}.3.0 injected failure", False
        else:
            code, text, ok = 250, "2.0.0 Ok", True
        if ok:
            self.store(b"".join(chunks))
        print(f"lmtp_sink: {'accepted' if ok else f'failed {code}'} "
              f"from=<{self.mail_from}> rcpt={','.join(self.rcpt)} size={size}",
              file=sys.stderr, flush=True)
        for r in self.rcpt:
            self.reply(f"{code} {text} <{r}>")
        self.reset()
        return True

    def store(self, body):
        self.counter[0] += 1
        stamp = f"{time.time_ns()}-{os.getpid()}-{self.counter[0]:06d}"
        out = self.args.out
        meta = {"mail_from": self.mail_from, "rcpt": self.rcpt, "time": time.time(),
                "size": len(body), "mail_params": self.mail_params}
        for ext, data in ((".eml", body), (".json", json.dumps(meta).encode() + b"\n")):
            tmp = os.path.join(out, f".{stamp}{ext}.tmp")
            with open(tmp, "wb") as f:
                f.write(data)
            os.rename(tmp, os.path.join(out, stamp + ext))


async def main(args):
    os.makedirs(args.out, exist_ok=True)
    counter = [0]

    async def handle(reader, writer):
        try:
            await Session(args, reader, writer, counter).run()
        except (ConnectionError, ValueError, asyncio.IncompleteReadError):
            pass  # peer went away, or a line longer than the limit
        finally:
            writer.close()

    server = await asyncio.start_server(handle, args.host, args.port,
                                        limit=args.max_size + 1024)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    print(f"lmtp_sink: listening on {args.host}:{args.port}, writing to {args.out}",
          file=sys.stderr, flush=True)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="minimal LMTP sink")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--out", required=True, help="directory for .eml/.json files")
    ap.add_argument("--fail-rate", type=float, default=0.0,
                    help="fraction of messages answered with --fail-code")
    ap.add_argument("--fail-code", type=int, default=451)
    ap.add_argument("--delay", type=float, default=0.0,
                    help="seconds to wait before the replies to DATA")
    ap.add_argument("--max-size", type=int, default=64 * 1024 * 1024)
    a = ap.parse_args()
    try:
        asyncio.run(main(a))
    except OSError as e:
        print(f"lmtp_sink: {e}", file=sys.stderr)
        sys.exit(2)
