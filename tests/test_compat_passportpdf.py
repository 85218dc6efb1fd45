"""PassportPDF's /api protocol (seed 004) over real HTTP against `squeezer serve`: the seed's
load -> Reduce -> SaveDocument -> DocumentClose flow with its exact PascalCase fields, the
three ways to load, the Reduce option mapping and WarningsInfo, and PassportPDF's error
shape (HTTP 200, Error.ResultCode) for every failure."""

from __future__ import annotations

import base64
import http.server
import io
import threading
import uuid

import httpx
import pikepdf
import pytest

from squeezer.engines.pdf.options import PdfOptions

ERROR_KEYS = {"ResultCode", "ExtResultStatus", "ExtResultMessage", "InternalErrorId"}
#: EnableJBIG2 is false unless given (PassportPDF's default): in the job's options only when
#: the engine's own default differs
JBIG2_DEFAULT = PdfOptions.model_fields["jbig2"].default
JBIG2_OFF = {"jbig2": False} if JBIG2_DEFAULT else {}
JBIG2_ON = {} if JBIG2_DEFAULT else {"jbig2": True}


@pytest.fixture(scope="module")
def api(service):
    headers = {"X-PassportPDF-API-Key": service.key}
    with httpx.Client(base_url=service.url + "/api", headers=headers, timeout=120) as client:
        yield client


def assert_error(r: httpx.Response, result_code: str) -> dict:
    assert r.status_code == 200, r.text  # PassportPDF answers errors with HTTP 200
    body = r.json()
    assert set(body) == {"Error", "RemainingTokens"}, body
    assert set(body["Error"]) == ERROR_KEYS
    assert body["Error"]["ResultCode"] == result_code, body
    assert body["Error"]["InternalErrorId"] == r.headers["x-request-id"]
    assert body["Error"]["ExtResultMessage"]
    return body["Error"]


class _Source(http.server.BaseHTTPRequestHandler):
    pdf = b""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/pdf")
        self.send_header("Content-Length", str(len(self.pdf)))
        self.end_headers()
        self.wfile.write(self.pdf)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def source(fx):
    _Source.pdf = fx.photo().read_bytes()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Source)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def option_warnings(r: dict) -> list[dict]:
    """A successful Reduce's warnings about its options (not "could not be made smaller",
    which a Reduce of an already reduced document may add)."""
    assert r["Error"] is None, r
    return [w for w in r["WarningsInfo"] if w["WarningCode"] != "FileSizeReductionFailure"]


def latest_job(service) -> dict:
    r = httpx.get(service.url + "/v1/jobs", params={"limit": 1},
                  headers={"x-api-key": service.key})
    return r.json()["data"][0]


def test_the_seed_flow(service, api, source):
    """DocumentLoadFromURI -> Reduce (default options) -> SaveDocument -> DocumentClose."""
    loaded = api.post("/document/DocumentLoadFromURI", json={"URI": source + "/scan.pdf"})
    assert loaded.status_code == 200, loaded.text
    body = loaded.json()
    assert set(body) == {"Error", "RemainingTokens", "FileId", "DocumentFormat", "PageCount"}
    assert body["Error"] is None and isinstance(body["RemainingTokens"], int)
    assert body["DocumentFormat"] == "PDF" and body["PageCount"] == 1
    file_id = body["FileId"]
    data = {"FileId": file_id}

    reduced = api.post("/pdf/Reduce", json=data)
    body = reduced.json()
    assert set(body) == {"Error", "RemainingTokens", "ContentRemoved", "VersionChanged",
                         "NewFileSize", "WarningsInfo"}, body
    assert body["Error"] is None and body["ContentRemoved"] is False
    assert isinstance(body["VersionChanged"], bool) and body["WarningsInfo"] == []
    assert 0 < body["NewFileSize"] < len(_Source.pdf)
    # PassportPDF's defaults: images recompressed and downscaled to 150 dpi
    assert latest_job(service)["options"] == {"level": "medium", "dpi": 150, **JBIG2_OFF}

    saved = api.post("/pdf/SaveDocument", json=data).json()
    assert set(saved) == {"Error", "RemainingTokens", "Data", "FileName"}
    assert saved["Error"] is None and saved["FileName"] == "scan.pdf"
    pdf = base64.b64decode(saved["Data"].encode())
    assert len(pdf) == body["NewFileSize"]
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        assert len(doc.pages) == 1

    closed = api.post("/document/DocumentClose", json={"FileId": file_id})
    assert closed.status_code == 200 and closed.json() == {
        "Error": None, "RemainingTokens": closed.json()["RemainingTokens"]}
    assert_error(api.post("/pdf/SaveDocument", json=data), "FileNotFound")
    assert_error(api.post("/pdf/Reduce", json=data), "FileNotFound")
    native = httpx.get(f"{service.url}/v1/files/{file_id}", headers={"x-api-key": service.key})
    assert native.status_code == 410  # the document and its versions are deleted


def test_multipart_and_base64_loads_and_reduce_in_place(service, api, fx):
    data = fx.photo().read_bytes()
    loaded = api.post("/document/DocumentLoadMultipart",
                      files={"fileData": ("photo.pdf", data, "application/pdf")}).json()
    assert loaded["Error"] is None and loaded["PageCount"] == 1
    first = api.post("/pdf/Reduce", json={"FileId": loaded["FileId"],
                                          "ImageQuality": "ImageQualityHigh"}).json()
    assert first["Error"] is None and first["NewFileSize"] < len(data)
    # reduced again in place: the second Reduce works on the first one's result
    second = api.post("/pdf/Reduce", json={"fileid": loaded["FileId"],  # any casing
                                           "imagequality": "ImageQualityLow",
                                           "downscaleresolution": 96}).json()
    assert second["Error"] is None and second["NewFileSize"] <= first["NewFileSize"]
    job = latest_job(service)
    # PassportPDF's EnableMRC defaults to false: the high preset's MRC is turned off
    assert job["options"] == {"level": "high", "dpi": 96, "mrc": False, **JBIG2_OFF}
    assert job["result"]["report"]["settings"]["mrc"] is False
    assert job["result"]["input"]["size"] == first["NewFileSize"]

    text = fx.metadata().read_bytes()
    loaded = api.post("/document/DocumentLoad", json={
        "Content": base64.b64encode(text).decode(), "FileName": "meta.pdf"}).json()
    assert loaded["Error"] is None and loaded["PageCount"] >= 1
    r = api.post("/pdf/Reduce", json={
        "FileId": loaded["FileId"], "RemoveMetadata": True, "RemoveAnnotations": True,
        "FastWebView": True, "RecompressImages": False}).json()
    assert r["Error"] is None and r["ContentRemoved"] is True
    assert latest_job(service)["options"] == {"level": "lossless", "remove_annotations": True,
                                              "remove_metadata": True, "linearize": True,
                                              **JBIG2_OFF}
    saved = api.post("/pdf/SaveDocument", json={"FileId": loaded["FileId"]}).json()
    assert saved["FileName"] == "meta.pdf"
    with pikepdf.open(io.BytesIO(base64.b64decode(saved["Data"]))) as pdf:
        assert pdf.is_linearized
    api.post("/document/DocumentClose", json={"FileId": loaded["FileId"]})


def test_scan_options_reach_the_job(service, api, fx):
    """EnableMRC, DownscaleResolutionMRC, PreserveSmoothing, EnableCharRepair and EnableJBIG2
    are engine options; JBIG2PMSThreshold is ignored with a warning."""
    loaded = api.post("/document/DocumentLoadMultipart",
                      files={"fileData": ("t.pdf", fx.text().read_bytes())}).json()
    r = api.post("/pdf/Reduce", json={
        "FileId": loaded["FileId"], "EnableMRC": True, "DownscaleResolutionMRC": 150,
        "PreserveSmoothing": True, "EnableCharRepair": True, "EnableJBIG2": True,
        "JBIG2PMSThreshold": 0.9}).json()
    job = latest_job(service)
    assert job["options"] == {"level": "medium", "dpi": 150, "mrc": True,
                              "mrc_background_dpi": 150, "mrc_preserve_smoothing": True,
                              "char_repair": True, **JBIG2_ON}
    report = job["result"]["report"]
    settings = report["settings"]
    assert settings["mrc"] is True and settings["mrc_background_dpi"] == 150
    assert settings["mrc_preserve_smoothing"] is True
    assert settings["char_repair"] is True and settings["jbig2"] is True
    warned = option_warnings(r)
    assert [w["WarningCode"] for w in warned] == ["OK"]
    assert "JBIG2PMSThreshold is ignored" in warned[0]["ExtWarningMessage"]
    assert "MRCImageReplacementFailure" not in str(r)
    assert "EnableCharRepair" not in str(r)

    # MRC's own defaults: PassportPDF's 100 dpi background; out of Squeezer's range: clamped
    # (each Reduce works on the last one's result, which may not get smaller again)
    r = api.post("/pdf/Reduce", json={"FileId": loaded["FileId"], "EnableMRC": True,
                                      "ImageQuality": "ImageQualityLow"}).json()
    assert option_warnings(r) == []
    assert latest_job(service)["options"] == {"level": "high", "dpi": 150, "mrc": True,
                                              "mrc_background_dpi": 100, **JBIG2_OFF}
    r = api.post("/pdf/Reduce", json={"FileId": loaded["FileId"], "EnableMRC": True,
                                      "DownscaleResolutionMRC": 1200}).json()
    warned = option_warnings(r)
    assert [w["WarningCode"] for w in warned] == ["ImageResizeFailure"]
    assert "DownscaleResolutionMRC 1200" in warned[0]["ExtWarningMessage"]
    assert latest_job(service)["result"]["report"]["settings"]["mrc_background_dpi"] == 600
    # MRC's knobs without EnableMRC: validated, not passed on
    r = api.post("/pdf/Reduce", json={"FileId": loaded["FileId"], "PreserveSmoothing": True,
                                      "DownscaleResolutionMRC": 300,
                                      "JBIG2PMSThreshold": 0.5}).json()
    assert option_warnings(r) == []
    assert latest_job(service)["options"] == {"level": "medium", "dpi": 150, **JBIG2_OFF}
    for bad in ({"EnableMRC": "yes"}, {"DownscaleResolutionMRC": "high"},
                {"DownscaleResolutionMRC": 0}, {"EnableCharRepair": 2},
                {"PreserveSmoothing": "maybe"}, {"EnableJBIG2": None}):
        err = assert_error(api.post("/pdf/Reduce", json={"FileId": loaded["FileId"], **bad}),
                           "InvalidParameter")
        assert next(iter(bad)) in err["ExtResultMessage"]
    api.post("/document/DocumentClose", json={"FileId": loaded["FileId"]})


def test_unsupported_options_are_accepted_and_reported(api, fx):
    loaded = api.post("/document/DocumentLoadMultipart",
                      files={"fileData": ("t.pdf", fx.text().read_bytes())}).json()
    r = api.post("/pdf/Reduce", json={
        "FileId": loaded["FileId"], "EnableJBIG2": True, "JBIG2PMSThreshold": 0.85,
        "EnableJPEG2000": True, "RemoveBlankPages": True,
        "RemoveHyperlinks": True, "OutputVersion": "PdfVersion17", "PackFonts": False,
        "PackDocument": False, "EnableColorDetection": False, "RemovePageThumbnails": False,
        "RemovePagePieceInfo": True, "DownscaleImages": False, "RemoveBookmarks": True,
        "RemoveFormFields": True, "RemoveEmbeddedFiles": True, "RemoveJavaScript": True}).json()
    assert r["Error"] is None, r
    codes = [w["WarningCode"] for w in r["WarningsInfo"]]
    assert "BlankPageRemovalFailure" in codes and "ColorDetectionFailure" not in codes
    messages = " ".join(w["ExtWarningMessage"] for w in r["WarningsInfo"])
    for name in ("JBIG2PMSThreshold", "EnableJPEG2000", "RemoveHyperlinks",
                 "OutputVersion", "PackFonts", "PackDocument", "RemovePageThumbnails"):
        assert name in messages
    assert all(set(w) == {"WarningCode", "PageNumber", "PageImageNumber", "ExtWarningMessage"}
               for w in r["WarningsInfo"])
    assert r["ContentRemoved"] is True
    api.post("/document/DocumentClose", json={"FileId": loaded["FileId"]})


def test_error_shapes(service, api, fx):
    body = {"URI": "http://127.0.0.1:9/a.pdf"}
    for headers in ({"X-PassportPDF-API-Key": "not-a-key"}, {}):
        r = httpx.post(service.url + "/api/document/DocumentLoadFromURI", json=body,
                       headers=headers)
        assert_error(r, "InvalidAPIKey")
    assert_error(api.post("/pdf/Reduce", json={"FileId": str(uuid.uuid4())}), "FileNotFound")
    assert_error(api.post("/pdf/Reduce", json={"FileId": "not-an-id"}), "FileNotFound")
    assert_error(api.post("/pdf/Reduce", json={}), "EmptyParameter")
    assert_error(api.post("/document/DocumentLoadFromURI", json={"URI": ""}), "EmptyParameter")
    assert_error(api.post("/document/DocumentLoad", json={}), "EmptyParameter")
    # a wrong PDF password: the document loads, Reduce says it cannot decrypt it
    locked = api.post("/document/DocumentLoadMultipart",
                      files={"fileData": ("locked.pdf", fx.encrypted().read_bytes())}).json()
    assert locked["Error"] is None
    err = assert_error(api.post("/pdf/Reduce", json={"FileId": locked["FileId"]}),
                       "PdfCanNotBeDecrypted")
    assert err["ExtResultStatus"] == "password_required"
    err = assert_error(api.post("/pdf/Reduce", json={"FileId": locked["FileId"],
                                                     "Password": "wrong"}), "PdfCanNotBeDecrypted")
    assert err["ExtResultStatus"] == "invalid_password"
    ok = api.post("/pdf/Reduce", json={"FileId": locked["FileId"], "Password": "user"}).json()
    assert ok["Error"] is None
    # not a PDF, in each way of loading
    junk = b"just some text, no PDF header at all\n" * 10
    assert_error(api.post("/document/DocumentLoad",
                          json={"Content": base64.b64encode(junk).decode()}), "PdfCanNotOpenFile")
    assert_error(api.post("/document/DocumentLoadMultipart", files={"fileData": ("x.pdf", junk)}),
                 "PdfCanNotOpenFile")
    broken = b"%PDF-1.7\n" + b"\x00garbage" * 50
    assert_error(api.post("/document/DocumentLoadMultipart",
                          files={"fileData": ("x.pdf", broken)}), "PdfCanNotOpenFile")
    # bad parameters
    loaded = api.post("/document/DocumentLoadMultipart",
                      files={"fileData": ("t.pdf", fx.text().read_bytes())}).json()
    for bad in ({"ImageQuality": "Ultra"}, {"DownscaleResolution": "abc"},
                {"FastWebView": "maybe"}, {"OutputVersion": "PdfVersion99"}):
        err = assert_error(api.post("/pdf/Reduce", json={"FileId": loaded["FileId"], **bad}),
                           "InvalidParameter")
        assert next(iter(bad)) in err["ExtResultMessage"]
    assert_error(api.post("/pdf/Reduce", content=b"{nope",
                          headers={"content-type": "application/json"}), "InvalidParameter")
    assert_error(api.post("/document/DocumentLoad", json={"Content": "%%%not base64"}),
                 "InvalidParameter")
    assert_error(api.post("/document/DocumentLoadFromURI",
                          json={"URI": "http://169.254.169.254/latest"}), "InvalidParameter")
    assert_error(api.post("/pdf/NoSuchAction", json={}), "NotImplemented")
    for file_id in (loaded["FileId"], locked["FileId"]):
        api.post("/document/DocumentClose", json={"FileId": file_id})


def test_remaining_tokens_and_the_rate_limit(service):
    key = service.new_key("passport-limited")
    url = service.api(SQUEEZER_RATE_LIMIT="2", SQUEEZER_RATE_WINDOW_SECONDS="600")
    headers = {"X-PassportPDF-API-Key": key}
    seen = [httpx.post(url + "/api/pdf/SaveDocument", json={"FileId": str(uuid.uuid4())},
                       headers=headers) for _ in range(3)]
    assert [r.json()["RemainingTokens"] for r in seen] == [1, 0, 0]
    assert_error(seen[0], "FileNotFound")
    assert_error(seen[2], "NotEnoughTokens")
    assert 0 < int(seen[2].headers["retry-after"]) <= 2 * 600  # rolling window
