#!/usr/bin/python3
"""Signs a test message with a DKIM key file and verifies the signature with
dkimpy (Debian's python3-dkim), answering its key query from the test's DNS
server through `dig` -- so neither signing nor verification uses our code.

Usage: dkim_check.py DNS_PORT DOMAIN SELECTOR KEY_FILE
Exit 0 and "verified" when the signature verifies, 1 otherwise.
"""

import base64
import logging
import re
import subprocess
import sys

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa


def main():
    port, domain, selector, key_file = sys.argv[1:5]
    with open(key_file, "rb") as f:
        pem = f.read()
    # Reading the PEM with `cryptography` checks it is a real PKCS#8 key.
    key = serialization.load_pem_private_key(pem, password=None)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        privkey, algorithm = base64.b64encode(raw), b"ed25519-sha256"
    elif isinstance(key, rsa.RSAPrivateKey):
        privkey, algorithm = pem, b"rsa-sha256"
    else:
        sys.exit("unexpected key type %r" % type(key))

    def dns_txt(name, timeout=5):
        qname = name.decode().rstrip(".")
        out = subprocess.run(
            ["dig", "+norec", "+short", "+tries=1", "@127.0.0.1", "-p", port, qname, "TXT"],
            capture_output=True, text=True, timeout=timeout + 5, check=True,
        ).stdout
        records = []
        for line in out.splitlines():
            strings = re.findall(r'"((?:[^"\\]|\\.)*)"', line)
            if strings:
                records.append("".join(strings))
        print("dns %s: %d record(s)" % (qname, len(records)), file=sys.stderr)
        return records[0].encode() if len(records) == 1 else None

    message = (
        "From: Sender <sender@%s>\r\n"
        "To: someone@example.org\r\n"
        "Subject: DKIM rotation test\r\n"
        "Message-ID: <test-%s@%s>\r\n"
        "\r\n"
        "Signed with selector %s.\r\n" % (domain, selector, domain, selector)
    ).encode()
    signature = dkim.sign(
        message, selector.encode(), domain.encode(), privkey,
        signature_algorithm=algorithm,
        include_headers=[b"from", b"to", b"subject", b"message-id"],
    )
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG)
    if dkim.verify(signature + message, logger=logging.getLogger("dkim"), dnsfunc=dns_txt):
        print("verified")
        return 0
    print("NOT verified")
    return 1


if __name__ == "__main__":
    sys.exit(main())
