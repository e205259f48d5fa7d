"""Spreadsheet files as operators' tools write them, made by the tests: CSV, XLSX, ODS.

XLSX is written by openpyxl (a test-only dependency: the import reads with python-calamine,
so the writer is a second, independent implementation of the format). ODS is written here by
hand, as the OpenDocument spec lays it out (a zip: mimetype first and stored, a manifest,
content.xml), since no ODS writer is among the project's dependencies.
A cell that is a `Formula` is written as a formula (with no stored value for XLSX, with one
for ODS, as LibreOffice saves it).
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from xml.sax.saxutils import escape

import openpyxl

HEADER = ["campaign", "meal", "scope", "percent_off", "fixed_price", "starts_at", "ends_at"]
Value = str | int | float | date | datetime | None


@dataclass(frozen=True)
class Formula:
    expression: str  # without the leading "="
    value: float


Cell = Value | Formula


def csv_bytes(rows: list[list[Cell]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        writer.writerow(
            [
                f"={c.expression}"
                if isinstance(c, Formula)
                else (c.isoformat(sep=" ") if isinstance(c, datetime) else ("" if c is None else c))
                for c in row
            ]
        )
    return out.getvalue().encode()


def xlsx_bytes(rows: list[list[Cell]]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append([f"={c.expression}" if isinstance(c, Formula) else c for c in row])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def ods_bytes(rows: list[list[Cell]]) -> bytes:
    body = "".join(
        "<table:table-row>" + "".join(_ods_cell(c) for c in row) + "</table:table-row>"
        for row in rows
    )
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
        ' xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"'
        ' xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"'
        ' xmlns:of="urn:oasis:names:tc:opendocument:xmlns:of:1.2" office:version="1.2">'
        '<office:body><office:spreadsheet><table:table table:name="Promotions">'
        f"{body}</table:table></office:spreadsheet></office:body></office:document-content>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"'
        ' manifest:version="1.2">'
        '<manifest:file-entry manifest:full-path="/" manifest:version="1.2"'
        ' manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(
            zipfile.ZipInfo("mimetype"),
            "application/vnd.oasis.opendocument.spreadsheet",
            compress_type=zipfile.ZIP_STORED,
        )
        archive.writestr("META-INF/manifest.xml", manifest, compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("content.xml", content, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def _ods_cell(cell: Cell) -> str:
    if cell is None or cell == "":
        return "<table:table-cell/>"
    if isinstance(cell, Formula):
        return (
            f'<table:table-cell table:formula="of:={escape(cell.expression)}"'
            f' office:value-type="float" office:value="{cell.value}">'
            f"<text:p>{cell.value}</text:p></table:table-cell>"
        )
    if isinstance(cell, datetime):
        return (
            f'<table:table-cell office:value-type="date" office:date-value="{cell.isoformat()}">'
            f"<text:p>{cell.isoformat()}</text:p></table:table-cell>"
        )
    if isinstance(cell, date):
        return (
            f'<table:table-cell office:value-type="date" office:date-value="{cell.isoformat()}">'
            f"<text:p>{cell.isoformat()}</text:p></table:table-cell>"
        )
    if isinstance(cell, int | float):
        return (
            f'<table:table-cell office:value-type="float" office:value="{cell}">'
            f"<text:p>{cell}</text:p></table:table-cell>"
        )
    return (
        '<table:table-cell office:value-type="string">'
        f"<text:p>{escape(cell)}</text:p></table:table-cell>"
    )


WRITERS = {"csv": csv_bytes, "xlsx": xlsx_bytes, "ods": ods_bytes}
