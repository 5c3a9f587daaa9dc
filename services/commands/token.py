"""``roadmap-monitor token NAME``: mint a bearer token for one publisher of the publishers file.

Prints the token (to hand to that publisher, for its own environment only: it is stored nowhere)
and the ``token_sha256`` line for ``deploy/publishers.yaml``. Nothing is written to disk.
"""

from __future__ import annotations

import re
from typing import TextIO

from contracts.publishers import PUBLISHER_NAME, RESERVED_NAMES, new_token, token_sha256


def mint_token(name: str, out: TextIO, err: TextIO) -> int:
    if not re.fullmatch(PUBLISHER_NAME, name) or name in RESERVED_NAMES:
        err.write(
            f"roadmap-monitor token: {name!r} is not a publisher name (lower case letters, "
            f"digits and '-', at most 32; not {', '.join(sorted(RESERVED_NAMES))})\n"
        )
        return 2
    token = new_token()
    out.write(
        f"token for {name} (give it to that publisher only, e.g. as INGEST_API_TOKEN for "
        f"roadmap-monitor publish; it is not kept anywhere):\n  {token}\n"
        f"in deploy/publishers.yaml, under {name}:\n    token_sha256: {token_sha256(token)}\n"
    )
    return 0
