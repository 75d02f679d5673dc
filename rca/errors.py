"""One exception hierarchy. Raised in the stages, mapped once per interface."""

from __future__ import annotations


class RcaError(Exception):
    """Base of every domain error. ``code`` is stable and machine-readable."""

    code = "rca_error"
    http_status = 500
    exit_code = 1

    def __init__(self, message: str, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_dict(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class InvalidInput(RcaError):
    code = "invalid_input"
    http_status = 400
    exit_code = 2


class PayloadTooLarge(InvalidInput):
    code = "payload_too_large"
    http_status = 413


class NotFound(RcaError):
    code = "not_found"
    http_status = 404
    exit_code = 1


class NotFitted(RcaError):
    code = "not_fitted"
    http_status = 409
    exit_code = 1


class StoreError(RcaError):
    code = "store_error"
    http_status = 503
    exit_code = 1
