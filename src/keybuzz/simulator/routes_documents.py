"""Report document downloads: the pre-signed URLs ``getReportDocument`` hands out (S3-like)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from keybuzz.simulator.gateway import simulator_of
from keybuzz.simulator.reports import DOCUMENT_PATH

router = APIRouter()

_S3_ERRORS = {
    "AccessDenied": (403, "Request has expired"),
    "SignatureDoesNotMatch": (
        403,
        "The request signature we calculated does not match the signature you provided.",
    ),
    "AuthorizationQueryParametersError": (400, "X-Amz-Date and X-Amz-Expires are required."),
    "NoSuchKey": (404, "The specified key does not exist."),
}


def s3_error(code: str) -> Response:
    status, message = _S3_ERRORS[code]
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
    return Response(body, status, media_type="application/xml")


@router.get(DOCUMENT_PATH + "/{document_id}", include_in_schema=False)
async def download_report_document(document_id: str, request: Request) -> Response:
    simulator = simulator_of(request)
    params = dict(request.query_params)
    with simulator.lock:
        result = simulator.reports.download(document_id, params, simulator.clock.time())
    if isinstance(result, str):
        return s3_error(result)
    if params.get("response-content-encoding") == "gzip":
        headers = {"Content-Encoding": "gzip"}
        return Response(result.content, headers=headers, media_type="text/plain; charset=UTF-8")
    return Response(result.content, media_type="application/octet-stream")
