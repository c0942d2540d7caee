"""What an address flag accepts (``--data_service``), declared where the flag
is defined and checked by one rule, as ``flag_domains`` does for numbers and
``path_args`` for paths: ``host:port`` (optionally ``grpc://host:port``), or
several separated by commas. A malformed address is refused in one line
naming the flag, before any work; whether something answers there is
checked when the run starts (``data.service.check_reachable``)."""

import dataclasses
from typing import List, Optional

SCHEME = "grpc://"


@dataclasses.dataclass(frozen=True)
class Addresses:
    """``host:port`` addresses of gRPC servers; ``several``: a comma-separated
    list is accepted; ``what``: what answers there, for messages."""

    what: str
    several: bool = True

    def describe(self) -> str:
        many = ", or several separated by commas" if self.several else ""
        return f"`host:port` of {self.what}{many}"

    def parse(self, text: str) -> List[str]:
        """The addresses ``text`` names, each as ``grpc://host:port``; a
        ValueError saying what is wrong otherwise."""
        parts = [part.strip() for part in str(text).split(",")] if self.several else [str(text).strip()]
        if not any(parts):
            raise ValueError(f"must be {self.describe()}; got {text!r}")
        return [self._one(part, text) for part in parts]

    def _one(self, part: str, text: str) -> str:
        bare = part[len(SCHEME):] if part.startswith(SCHEME) else part
        host, colon, port = bare.rpartition(":")
        problem = None
        if not part:
            problem = "an empty entry"
        elif not colon or not host:
            problem = f"{part!r} has no host and port (host:port, e.g. cpu-node-1:5050)"
        elif "/" in host or " " in host:
            problem = f"{part!r} is not host:port"
        elif not port.isdigit() or not 0 < int(port) < 65536:
            problem = f"{part!r} has no port number between 1 and 65535"
        if problem:
            raise ValueError(f"must be {self.describe()}: {problem}; got {text!r}")
        return SCHEME + bare

    def problem(self, text) -> Optional[str]:
        """What is wrong with ``text`` (None: nothing; empty text: unset)."""
        if not text:
            return None
        try:
            self.parse(text)
        except ValueError as error:
            return str(error)
        return None
