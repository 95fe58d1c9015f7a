#!/usr/bin/env python3
"""A small LMTP client for tests (Python's smtplib.LMTP reads one reply
after DATA, whatever the number of recipients, and falls out of step).

    lmtp_send.py ADDR --from A --to R [--to R ...] [--file F | --body TEXT]
                 [--count N] [--pipeline] [--bdat SIZE] [--raw]

ADDR is host:port or unix:/path.  Prints, per message, one line per
recipient: "<rcpt> <code> <text>".  Exit status 0 when every reply was read
(whatever the codes), 1 on a protocol or connection problem.
With --raw, stdin is sent as is and every reply line is printed (for
hostile-client tests)."""
import argparse
import socket
import sys


def connect(addr):
    if addr.startswith('unix:'):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(addr[5:])
    else:
        host, port = addr.rsplit(':', 1)
        s = socket.create_connection((host.strip('[]'), int(port)), timeout=30)
    s.settimeout(30)
    return s


class Conn:
    def __init__(self, s):
        self.s = s
        self.buf = b''

    def line(self):
        while b'\r\n' not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError('connection closed')
            self.buf += d
        ln, self.buf = self.buf.split(b'\r\n', 1)
        return ln.decode('utf-8', 'replace')

    def reply(self):
        """A whole (possibly multi-line) reply: (code, last text)."""
        lines = []
        while True:
            ln = self.line()
            lines.append(ln)
            if len(ln) < 4 or ln[3] != '-':
                break
        return int(lines[-1][:3]), '\n'.join(lines)

    def send(self, data):
        self.s.sendall(data)


def stuff(body):
    if not body.endswith(b'\r\n'):
        body += b'\r\n'
    out = []
    for ln in body.split(b'\r\n')[:-1]:
        out.append(b'.' + ln if ln.startswith(b'.') else ln)
    return b'\r\n'.join(out) + b'\r\n.\r\n'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('addr')
    ap.add_argument('--from', dest='sender', default='sender@example.test')
    ap.add_argument('--to', action='append', default=[])
    ap.add_argument('--file')
    ap.add_argument('--body')
    ap.add_argument('--count', type=int, default=1)
    ap.add_argument('--pipeline', action='store_true')
    ap.add_argument('--bdat', type=int, default=0, help='send with BDAT chunks of this size')
    ap.add_argument('--raw', action='store_true')
    ap.add_argument('--starttls', metavar='CAFILE', help='STARTTLS, verifying the server against CAFILE')
    a = ap.parse_args()
    c = Conn(connect(a.addr))
    if a.raw:
        print(c.reply()[1])
        c.send(sys.stdin.buffer.read())
        try:
            while True:
                print(c.line())
        except (EOFError, socket.timeout, ConnectionError):
            pass
        return 0
    code, text = c.reply()
    if code != 220:
        print('greeting:', text)
        return 1
    c.send(b'LHLO client.test\r\n')
    code, text = c.reply()
    if a.starttls:
        import ssl
        if 'STARTTLS' not in text:
            print('no STARTTLS offered')
            return 1
        c.send(b'STARTTLS\r\n')
        code, text = c.reply()
        if code != 220:
            print('STARTTLS', text)
            return 1
        ctx = ssl.create_default_context(cafile=a.starttls)
        ctx.check_hostname = False
        c.s = ctx.wrap_socket(c.s)
        print('tls', c.s.version())
        c.send(b'LHLO client.test\r\n')
        c.reply()
    if a.file:
        body = open(a.file, 'rb').read()
    else:
        body = (a.body or 'Subject: test\r\n\r\nhello\r\n').encode()
    for n in range(a.count):
        msg = body.replace(b'%N', str(n).encode())
        cmds = [b'MAIL FROM:<%s>\r\n' % a.sender.encode()]
        cmds += [b'RCPT TO:<%s>\r\n' % t.encode() for t in a.to]
        if a.pipeline and not a.bdat:
            c.send(b''.join(cmds) + b'DATA\r\n')
            replies = [c.reply() for _ in range(len(cmds) + 1)]
        else:
            replies = []
            for cmd in cmds:
                c.send(cmd)
                replies.append(c.reply())
            if not a.bdat:
                c.send(b'DATA\r\n')
                replies.append(c.reply())
        if replies[0][0] != 250:
            print('MAIL', replies[0][1])
        ok_rcpts = [t for t, r in zip(a.to, replies[1:1 + len(a.to)]) if r[0] == 250]
        for t, r in zip(a.to, replies[1:1 + len(a.to)]):
            if r[0] != 250:
                print(t, r[1])
        if replies[0][0] != 250 or not ok_rcpts:
            if not a.bdat and replies[-1][0] == 354:
                c.send(b'.\r\n')
                c.reply()
            c.send(b'RSET\r\n')
            c.reply()
            continue
        if a.bdat:
            data = msg
            chunks = [data[i:i + a.bdat] for i in range(0, len(data), a.bdat)] or [b'']
            for i, ch in enumerate(chunks):
                last = i == len(chunks) - 1
                c.send(b'BDAT %d%s\r\n' % (len(ch), b' LAST' if last else b'') + ch)
                if not last:
                    r = c.reply()
                    if r[0] != 250:
                        print('BDAT', r[1])
                        return 1
        else:
            if replies[-1][0] != 354:
                print('DATA', replies[-1][1])
                return 1
            c.send(stuff(msg))
        for t in ok_rcpts:
            print(t, c.reply()[1])
        sys.stdout.flush()
    c.send(b'QUIT\r\n')
    try:
        c.reply()
    except EOFError:
        pass
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except (EOFError, ConnectionError, socket.timeout) as e:
        print('connection:', e)
        sys.exit(1)
