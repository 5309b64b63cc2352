#!/usr/bin/python3
"""DKIM checks with dkimpy (Debian's python3-dkim), answering its key queries
from the test's DNS server through `dig` -- so neither signing nor verification
uses our code.

Usage:
  dkim_check.py DNS_PORT DOMAIN SELECTOR KEY_FILE
      signs a test message with KEY_FILE and verifies the signature;
  dkim_check.py --verify DNS_PORT
      verifies the first DKIM signature of the message on standard input (as a
      real signer, rspamd or OpenDKIM, made it).
Prints "verified s=SELECTOR" and exits 0 when the signature verifies, prints
"NOT verified s=SELECTOR" (or "no signature") and exits 1 otherwise.
"""

import base64
import logging
import re
import subprocess
import sys

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa


def dns_txt_from(port):
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

    return dns_txt


def verify(message, port):
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG)
    checker = dkim.DKIM(message, logger=logging.getLogger("dkim"))
    ok = checker.verify(dnsfunc=dns_txt_from(port))
    selector = (checker.selector or b"").decode()
    if not selector:
        print("no signature")
        return 1
    print("%s s=%s" % ("verified" if ok else "NOT verified", selector))
    return 0 if ok else 1


def sign_and_verify(port, domain, selector, key_file):
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
    return verify(signature + message, port)


def main():
    if sys.argv[1] == "--verify":
        return verify(sys.stdin.buffer.read(), sys.argv[2])
    return sign_and_verify(*sys.argv[1:5])


if __name__ == "__main__":
    sys.exit(main())
