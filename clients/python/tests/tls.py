"""The Python client's TLS options against a server with mutual TLS.

usage: tls.py HTTPS_URL CA_CERT ADMIN_TOKEN CLIENT_CERT CLIENT_KEY

Prints who the server sees for each way in: a token over TLS (the CA as a path), a client
certificate and no token (PEM bytes), `HOST:PORT` with a CA (TLS implied), and the code
of a call that does not trust the server (no CA: the system's roots do not know it).
tests/tests/tls.rs compares the lines.
"""

import sys
from pathlib import Path

from tributary import Client, TributaryError


def main(url, ca, token, cert, key):
    print("TOKEN", Client(url, token, ca_cert=ca).whoami().name)
    pem = Path(ca).read_bytes()
    print("CERT", Client(url, ca_cert=pem, client_cert=cert, client_key=key).whoami().name)
    host_port = url.split("://", 1)[1]
    print("HOSTPORT", Client(host_port, token, ca_cert=ca).whoami().name)
    try:
        Client(url, token, timeout=10).whoami()
        print("UNTRUSTED served")
    except TributaryError as e:
        print("UNTRUSTED", e.code.name)


if __name__ == "__main__":
    if len(sys.argv) != 6:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
