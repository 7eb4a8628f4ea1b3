"""`curl` as the README's lines call it, run by the libcurl that pycurl's wheel bundles (8.23: one that
signs a path as SigV4 asks, from 8.14 on). The curl tool hands `--aws-sigv4` and `--user` to libcurl
as CURLOPT_AWS_SIGV4 and CURLOPT_USERPWD, and libcurl signs: this is that signing, with the tool's
options read as the tool reads them.

    python tests/ingest/libcurl_cli.py [-s] [-H HEADER]... [--aws-sigv4 PROVIDER] [--user USER:PASSWORD] URL
    python tests/ingest/libcurl_cli.py --version

Prints the response's body, as curl does without -f; any other option is refused (exit 2).
"""

from __future__ import annotations

import io
import sys

import pycurl


def main(argv: list[str]) -> int:
    if argv == ["--version"]:
        print(pycurl.version)
        return 0
    headers: list[str] = []
    options: dict[int, str] = {}
    urls: list[str] = []
    words = iter(argv)
    for word in words:
        if word in ("-s", "--silent"):
            continue
        if word in ("-H", "--header"):
            headers.append(next(words))
        elif word == "--aws-sigv4":
            options[pycurl.AWS_SIGV4] = next(words)
        elif word in ("-u", "--user"):
            options[pycurl.USERPWD] = next(words)
        elif not word.startswith("-"):
            urls.append(word)
        else:
            print(f"libcurl_cli: unsupported option {word!r}", file=sys.stderr)
            return 2
    if len(urls) != 1:
        print("libcurl_cli: give one URL", file=sys.stderr)
        return 2
    body = io.BytesIO()
    curl = pycurl.Curl()
    try:
        curl.setopt(pycurl.URL, urls[0])
        curl.setopt(pycurl.HTTPHEADER, headers)
        for option, value in options.items():
            curl.setopt(option, value)
        curl.setopt(pycurl.WRITEDATA, body)
        curl.perform()
    except pycurl.error as error:
        print(f"curl: ({error.args[0]}) {error.args[1]}", file=sys.stderr)
        return int(error.args[0])
    finally:
        curl.close()
    sys.stdout.buffer.write(body.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
