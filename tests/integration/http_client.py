"""A small HTTP/1.1 client on a raw socket for the HTTP binding's tests
(test_http.py), where a test must hold a response open or send bytes curl would
not, plus curl and the P-IMAP helpers those tests share."""

import re
import socket
import subprocess
import time

from harness import HOST, USERS, quote

PATH = "/pimap"
TYPE = "application/vnd.pimap"


# ----------------------------------------------------------------------------- client

class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # [(lowercase name, value)]
        self.body = body

    def header(self, name):
        for n, v in self.headers:
            if n == name:
                return v
        return None

    def all(self, name):
        return [v for n, v in self.headers if n == name]

    def lines(self):
        return self.body.split(b"\r\n")

    def tagged(self, tag):
        for line in self.lines():
            if line.startswith(tag.encode() + b" "):
                return line
        raise AssertionError("no tagged %s in %r" % (tag, self.body))

    def cookie(self):
        for v in self.all("set-cookie"):
            m = re.match(r"pimap=([^;]*)", v)
            if m:
                return m.group(1), v
        return None, None


class HttpClient:
    """HTTP/1.1 on one socket: requests written as given, responses read with
    Content-Length or chunked bodies, chunk by chunk when asked."""

    def __init__(self, port, tls_ctx=None, timeout=30.0):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        if tls_ctx is not None:
            self.sock = tls_ctx.wrap_socket(self.sock, server_hostname="localhost")
        self.buf = b""
        self.cookie = None

    def finish(self, r):
        """Reads what is left of a streaming body up to its end."""
        if not getattr(r, "ended", False):
            self.read_body(r)
            r.ended = True
        return r

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send_raw(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def request_bytes(self, body, path=PATH, method="POST", content_type=TYPE,
                      extra=""):
        body = body.encode() if isinstance(body, str) else body
        head = "%s %s HTTP/1.1\r\nHost: localhost\r\n" % (method, path)
        if content_type:
            head += "Content-Type: %s\r\n" % content_type
        if self.cookie:
            head += "Cookie: pimap=%s\r\n" % self.cookie
        head += "Content-Length: %d\r\n%s\r\n" % (len(body), extra)
        return head.encode() + body

    def post(self, body, **kw):
        self.send_raw(self.request_bytes(body, **kw))
        return self.read_response()

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed by the server")
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_head(self):
        status_line = self._line()
        m = re.match(rb"HTTP/1\.1 (\d{3}) ", status_line + b" ")
        assert m, status_line
        headers = []
        while True:
            line = self._line()
            if not line:
                break
            name, _, value = line.partition(b":")
            headers.append((name.decode().strip().lower(), value.decode().strip()))
        r = Response(int(m.group(1)), headers, b"")
        c, _ = r.cookie()
        if c is not None:
            self.cookie = c or None
        return r

    def read_chunk(self):
        """One chunk of a chunked body; b"" at its end."""
        size = int(self._line().split(b";")[0], 16)
        if size == 0:
            assert self._line() == b""
            return b""
        data = self._exact(size)
        assert self._line() == b""
        return data

    def read_body(self, r):
        if r.header("transfer-encoding") == "chunked":
            while True:
                c = self.read_chunk()
                if not c:
                    break
                r.body += c
        else:
            r.body += self._exact(int(r.header("content-length") or 0))
        return r

    def read_response(self):
        return self.read_body(self.read_head())

    def read_until(self, r, pred, timeout):
        """Chunks of a streaming body until pred(body) holds or timeout."""
        deadline = time.monotonic() + timeout
        while not pred(r.body):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                c = self.read_chunk()
            except socket.timeout:
                return False
            finally:
                self.sock.settimeout(30.0)
            if not c:
                r.ended = True
                return pred(r.body)
            r.body += c
        return True

    def eof(self, timeout=5.0):
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
                self.buf += data
        except ConnectionResetError:
            return True  # closed with our bytes unread: a reset
        except socket.timeout:
            return False


def login_line(tag, user, device):
    return "%s LOGIN %s %s\r\n" % (tag, quote("%s#%s" % (user, device)), quote(USERS[user]))


def curl(*args, data=None):
    cmd = ["curl", "-sS", "--max-time", "30", "-D", "-"] + list(args)
    p = subprocess.run(cmd, input=data, capture_output=True, timeout=60)
    assert p.returncode == 0, (cmd, p.returncode, p.stderr)
    head, _, body = p.stdout.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = [(n.strip().lower(), v.strip()) for n, _, v in
               (x.partition(":") for x in lines[1:])]
    return Response(status, headers, body), p.stderr


def http_session(port, user, device, tls_ctx=None):
    c = HttpClient(port, tls_ctx)
    r = c.post(login_line("L", user, device) + "s SELECT INBOX\r\n")
    assert r.status == 200, r.body
    assert r.tagged("L").startswith(b"L OK"), r.body
    assert r.tagged("s").startswith(b"s OK"), r.body
    assert c.cookie
    return c, r


EXISTS = re.compile(rb"^\* (\d+) EXISTS$", re.I)


def exists_of(body):
    """The last EXISTS count in a body (or in lines joined by CRLF), or None."""
    found = [int(EXISTS.match(x).group(1)) for x in body.split(b"\r\n")
             if EXISTS.match(x)]
    return found[-1] if found else None
