"""The one exception the client raises for a refused or failed call."""

import grpc


class TributaryError(Exception):
    """A call the server refused, or that the transport could not complete.

    `code` is the gRPC status code (a `grpc.StatusCode`, e.g. `NOT_FOUND`,
    `PERMISSION_DENIED`, `OUT_OF_RANGE`), and `message` the server's explanation, which
    names the field, path or limit at fault.
    """

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message

    @classmethod
    def from_rpc(cls, e: grpc.RpcError) -> "TributaryError":
        return cls(e.code(), e.details() or "")
