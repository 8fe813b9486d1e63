"""Operator API tokens: create (secret shown once), list, revoke. Admin only."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response

from gateway.auth.roles import Permission
from gateway.dependencies import get_runtime, require
from gateway.errors import COMMON_ERRORS, CONFLICT_DOC, NOT_FOUND_DOC
from gateway.models import TokenCreate, TokenCreated, TokenInfo, TokenPage

router = APIRouter(prefix="/v1/tokens", tags=["tokens"], responses=COMMON_ERRORS,
                   dependencies=[Depends(require(Permission.TOKENS_MANAGE))])


@router.post("", status_code=201, response_model=TokenCreated, responses={409: CONFLICT_DOC},
             summary="Create a token")
async def create_token(request: Request, body: TokenCreate, response: Response) -> TokenCreated:
    """Make a token (optionally expiring); its secret is in this answer and nowhere else, ever."""
    record, token = await get_runtime(request).tokens.create(name=body.name, role=body.role,
                                                             expires_at=body.expiry())
    response.headers["Location"] = f"/v1/tokens/{record.id}"
    response.headers["Cache-Control"] = "no-store"
    return TokenCreated(id=record.id, name=record.name, role=record.role, token=token,
                        expires_at=record.expires_at)


@router.get("", response_model=TokenPage, summary="List tokens")
async def list_tokens(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[UUID | None, Query(description="`next_cursor` of the previous page.")] = None,
    include_revoked: bool = False,
) -> TokenPage:
    """Tokens in creation order, without secrets."""
    items, after, total = await get_runtime(request).tokens.list(
        limit=limit, after=cursor, include_revoked=include_revoked
    )
    return TokenPage(
        items=[TokenInfo(id=t.id, name=t.name, role=t.role, created_at=t.created_at,
                         revoked_at=t.revoked_at, expires_at=t.expires_at) for t in items],
        next_cursor=str(after) if after else None, total=total,
    )


@router.delete("/{token_id}", status_code=204, response_class=Response, responses={404: NOT_FOUND_DOC},
               summary="Revoke a token")
async def revoke_token(request: Request, token_id: UUID) -> Response:
    """Revoke a token: it answers 401 from now on."""
    await get_runtime(request).tokens.revoke(token_id)
    return Response(status_code=204)
