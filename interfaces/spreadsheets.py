"""Spreadsheets as operators export them: CSV, XLSX (Excel, Google Sheets) and ODS.

`read_sheet(name, content)` tells the format from the bytes themselves (never from the file
name), reads the first sheet's cells with python-calamine (CSV with the standard library),
and turns the header row into column names. It judges no promotion: it only reports what
makes a sheet unreadable as a table, each with its row number and column (a missing or
unknown column, a formula where a value belongs, no rows at all). Rows are numbered as the
operator sees them: the header is row 1.

A formula cell is refused: the import takes the sheet's final values, and a formula's
stored value may be stale or absent (a file written by a program, never opened in Excel).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import zipfile
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from xml.etree import ElementTree

from python_calamine import CalamineError, CalamineWorkbook

from domain.promotions import COLUMNS, MOST_ROWS, REQUIRED, Cell, RowProblem, Sheet

ODS_MIME = b"application/vnd.oasis.opendocument.spreadsheet"
XLSX_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
XLSX_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
ODS_TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
XLSX_FORMULA = re.compile(rb'<(?:\w+:)?c r="([A-Z]+)([0-9]+)"[^>]*?>\s*<(?:\w+:)?f[\s>/]')
"""A cell that holds a formula: in SpreadsheetML its <f> comes first, before <v> and <is>."""
MOST_BYTES = 20 * 1024 * 1024
FORMULA = "a formula: export the sheet's values"


class UnreadableSheet(Exception):
    """Not a spreadsheet this import reads (neither CSV, XLSX nor ODS)."""


def sheet_format(content: bytes) -> str:
    """'xlsx', 'ods' or 'csv', by what the bytes are."""
    if content.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(content)) as archive:
                names = set(archive.namelist())
                if "xl/workbook.xml" in names:
                    return "xlsx"
                if "mimetype" in names and archive.read("mimetype").strip() == ODS_MIME:
                    return "ods"
        except zipfile.BadZipFile:
            raise UnreadableSheet("a damaged ZIP archive, neither XLSX nor ODS") from None
        raise UnreadableSheet("a ZIP archive that is neither XLSX nor ODS")
    return "csv"


def read_sheet(name: str, content: bytes) -> Sheet:
    """The first sheet of `content`, its header turned into column names."""
    if len(content) > MOST_BYTES:
        raise UnreadableSheet(f"the file has {len(content)} bytes; at most {MOST_BYTES}")
    kind = sheet_format(content)
    grid = _csv_grid(content) if kind == "csv" else _calamine_grid(content)
    formulas = _formula_cells(content, kind)
    sheet_hash = hashlib.sha256(content).hexdigest()
    problems: list[RowProblem] = []
    header_at = next((i for i, row in enumerate(grid) if any(_filled(c) for c in row)), None)
    if header_at is None:
        return Sheet(sheet_hash, name, [], [RowProblem(1, "", "the sheet is empty")])
    header = [_column_name(cell) for cell in grid[header_at]]
    columns: dict[int, str] = {}
    for index, column in enumerate(header):
        if not column:
            continue
        if column not in COLUMNS:
            problems.append(RowProblem(header_at + 1, column, "unknown column"))
        elif column in columns.values():
            problems.append(RowProblem(header_at + 1, column, "this column appears twice"))
        else:
            columns[index] = column
    problems += [
        RowProblem(header_at + 1, missing, "missing column")
        for missing in sorted(REQUIRED - set(columns.values()))
    ]
    if "percent_off" not in columns.values() and "fixed_price" not in columns.values():
        problems.append(
            RowProblem(header_at + 1, "percent_off", "needs percent_off or fixed_price")
        )
    rows: list[tuple[int, dict[str, Cell]]] = []
    for index in range(header_at + 1, len(grid)):
        cells = grid[index]
        if not any(_filled(cell) for cell in cells):
            continue
        row = index + 1
        values: dict[str, Cell] = {}
        for position, column in columns.items():
            cell = cells[position] if position < len(cells) else None
            if isinstance(cell, str):
                cell = cell.strip() or None
                if cell is not None and cell.startswith("="):  # a formula saved as text
                    problems.append(RowProblem(row, column, FORMULA))
            if formulas and (row, position) in formulas:
                problems.append(RowProblem(row, column, FORMULA))
            values[column] = cell
        rows.append((row, values))
    if not rows and not problems:
        problems.append(RowProblem(header_at + 2, "", "the sheet has no promotions"))
    if len(rows) > MOST_ROWS:
        problems.append(RowProblem(rows[MOST_ROWS][0], "", f"more than {MOST_ROWS} rows"))
    return Sheet(sheet_hash, name, rows, problems)


def _csv_grid(content: bytes) -> list[list[Cell]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise UnreadableSheet(f"not a spreadsheet, nor CSV in UTF-8 ({error.reason})") from None
    if "\x00" in text:
        raise UnreadableSheet("not a spreadsheet, nor CSV text")
    try:
        return [list(row) for row in csv.reader(io.StringIO(text, newline=""))]
    except csv.Error as error:
        raise UnreadableSheet(f"unreadable CSV: {error}") from None


def _calamine_grid(content: bytes) -> list[list[Cell]]:
    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(content))
        rows = workbook.get_sheet_by_index(0).to_python(skip_empty_area=False)
    except (CalamineError, OSError, ValueError) as error:
        raise UnreadableSheet(f"unreadable spreadsheet: {error}") from None
    return [[_cell(cell) for cell in row] for row in rows]


def _cell(value: object) -> Cell:
    if isinstance(value, str | int | float | bool | datetime | date) or value is None:
        return value
    if isinstance(value, time | timedelta):
        return str(value)  # a time alone is no moment: the row check says so
    return str(value)


def _filled(cell: Cell) -> bool:
    return cell is not None and cell != ""


def _column_name(cell: Cell) -> str:
    return str(cell or "").strip().lower().replace(" ", "_")


def _formula_cells(content: bytes, kind: str) -> set[tuple[int, int]]:
    """(row, column index) of every formula cell in the first sheet, rows from 1."""
    if kind == "csv":
        return set()
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            if kind == "xlsx":
                return set(_xlsx_formulas(archive))
            return set(_ods_formulas(archive))
    except (KeyError, ElementTree.ParseError, zipfile.BadZipFile) as error:
        raise UnreadableSheet(f"unreadable spreadsheet: {error}") from None


def _xlsx_formulas(archive: zipfile.ZipFile) -> Iterator[tuple[int, int]]:
    workbook = ElementTree.fromstring(archive.read("xl/workbook.xml"))  # noqa: S314 - a zip's XML
    first = workbook.find(f"{XLSX_MAIN}sheets/{XLSX_MAIN}sheet")
    if first is None:
        return
    rel_id = first.get(f"{XLSX_REL}id")
    rels = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))  # noqa: S314
    target = next(
        (r.get("Target") for r in rels.iter(f"{PKG_REL}Relationship") if r.get("Id") == rel_id),
        None,
    )
    if target is None:
        return
    path = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
    xml = archive.read(path)
    if b"<f" not in xml and b":f" not in xml:  # the usual sheet: values only, no parse
        return
    for found in XLSX_FORMULA.finditer(xml):
        yield int(found[2]), _column_index(found[1].decode())


def _column_index(letters: str) -> int:
    index = 0
    for letter in letters:
        index = index * 26 + ord(letter) - ord("A") + 1
    return index - 1


def _ods_formulas(archive: zipfile.ZipFile) -> Iterator[tuple[int, int]]:
    content = archive.read("content.xml")
    if b"formula=" not in content:  # the usual sheet: values only, no parse
        return
    tree = ElementTree.fromstring(content)  # noqa: S314
    table = next(tree.iter(f"{ODS_TABLE}table"), None)
    if table is None:
        return
    row = 0
    for row_element in table.iter(f"{ODS_TABLE}table-row"):
        repeat_rows = int(row_element.get(f"{ODS_TABLE}number-rows-repeated", "1"))
        column = 0
        for cell in row_element:
            repeat_columns = int(cell.get(f"{ODS_TABLE}number-columns-repeated", "1"))
            if cell.get(f"{ODS_TABLE}formula") is not None:
                for r in range(repeat_rows):
                    for c in range(repeat_columns):
                        yield row + r + 1, column + c
            column += repeat_columns
        row += repeat_rows
