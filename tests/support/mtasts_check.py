"""Validates a published MTA-STS policy with the resolver of the Debian package
postfix-mta-sts-resolver (its STSResolver.resolve: TXT selection and parsing,
policy parsing, version, mode, max_age and mx checks).

Only its two transports are replaced: the TXT answer is what `dig` got from
the test's Knot (argv[2], JSON list of strings) and the HTTPS fetch of
https://mta-sts.DOMAIN/.well-known/mta-sts.txt returns the policy file on disk
(argv[3]), as the test's web root would serve it (text/plain).

Prints JSON: {"result": ..., "url": ..., "id": ..., "policy": {...}}.
"""

import asyncio
import json
import sys

from postfix_mta_sts_resolver import resolver as res


class Answer:
    def __init__(self, text):
        self.text = text


class Content:
    def __init__(self, data):
        self.data = data

    async def read(self, n):
        chunk, self.data = self.data[:n], self.data[n:]
        return chunk


class Response:
    def __init__(self, data):
        self.status = 200
        self.headers = {"Content-Type": "text/plain", "Content-Length": str(len(data))}
        self.charset = None
        self.content = Content(data)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        return False


def main():
    domain, txts, policy_path = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    with open(policy_path, "rb") as f:
        policy = f.read()
    fetched = []

    class Session:
        def __init__(self, *args, **kwargs):
            pass

        async def __aenter__(self):
            return self

        async def __aexit__(self, *exc):
            return False

        def get(self, url, **kwargs):
            fetched.append(url)
            return Response(policy)

    res.aiohttp.ClientSession = Session

    async def run():
        loop = asyncio.get_running_loop()
        r = res.STSResolver(loop=loop)

        async def query(name, rtype):
            assert name == "_mta-sts." + domain and rtype == "TXT", (name, rtype)
            return [Answer(t) for t in txts]

        r._resolver.query = query
        return await r.resolve(domain)

    status, result = asyncio.run(run())
    out = {"result": status.name, "url": fetched[0] if fetched else None}
    if result:
        out["id"], out["policy"] = result[0], result[1]
    print(json.dumps(out))


main()
