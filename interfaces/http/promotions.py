"""Operators import a sheet of promotions: `POST /promotions/imports` with the file as body.

201 when the sheet was recorded, 200 when the same file was imported before (nothing
changed), 422 with every problem (row, column, reason) when any row is wrong, in which case
nothing of the sheet is recorded.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, post
from litestar.params import QueryParameter
from msgspec import Meta, Struct

from application.promotions import SheetImported, SheetRejected
from interfaces.http.auth import Role, allow
from interfaces.http.contract import answers, repeat
from interfaces.http.errors import problem
from interfaces.http.schemas import Write
from interfaces.spreadsheets import UnreadableSheet, read_sheet
from ops.root import WriteSide

MOST_PROBLEMS = 1000
SheetName = Annotated[str, Meta(max_length=200)]


class SheetRecorded(Struct, kw_only=True):
    sheet_hash: str
    created: bool
    campaign_ids: list[str]
    promotions: int
    position: int | None


def import_file(side: WriteSide, name: str, content: bytes) -> SheetImported:
    """Read and import, in the command lane's thread (a big sheet is seconds of work)."""
    try:
        sheet = read_sheet(name, content)
    except UnreadableSheet as error:
        raise problem(422, "unreadable sheet", str(error)) from None
    try:
        return side.promotions.import_sheet(sheet)
    except SheetRejected as rejected:
        shown = rejected.problems[:MOST_PROBLEMS]
        raise problem(
            422,
            "sheet rejected",
            str(rejected),
            errors=[{"row": p.row, "column": p.column, "reason": p.reason} for p in shown],
        ) from None


class PromotionRoutes(Controller):
    tags = ["promotions"]
    guards = [allow(Role.OPERATOR)]

    @post(
        "/promotions/imports",
        responses=answers(422)
        | repeat(SheetRecorded, "this very sheet was imported before: nothing changed"),
    )
    async def import_sheet(
        self,
        request: Request[Any, Any, Any],
        write: Write,
        name: Annotated[SheetName, QueryParameter(name="name", required=False)] = "sheet",
    ) -> Response[SheetRecorded]:
        """The body is the file's bytes: CSV (UTF-8), XLSX or ODS, told apart by content."""
        data = await request.body()
        done = await write.run(import_file, write.side, name, data)
        body = SheetRecorded(
            sheet_hash=done.sheet_hash,
            created=done.created,
            campaign_ids=done.campaign_ids,
            promotions=done.promotions,
            position=done.position,
        )
        return Response(body, status_code=201 if done.created else 200)
