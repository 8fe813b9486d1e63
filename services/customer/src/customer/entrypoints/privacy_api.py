"""The customer service's subjects about personal data: erasures, and the data keys."""

from __future__ import annotations

import base64
from typing import Any

from shared.contracts.customer import CustomerCard
from shared.contracts.privacy import (
    DataKeyItem,
    DataKeys,
    DataKeysQuery,
    EraseContact,
    EraseCustomer,
    PrivacySubjects,
)
from shared.logging import current_correlation_id
from shared.rpc import Route

from customer.adapters.data_keys import DataKeyStore
from customer.application.commands import CustomerCommands


def privacy_routes(*, commands: CustomerCommands, keys: DataKeyStore) -> list[Route]:
    """Erase a deleted customer or a removed contact; hand data keys to the services that read."""

    async def erase(body: Any) -> bytes:
        body.meta.correlation_id = body.meta.correlation_id or current_correlation_id()
        return await commands.handle(body)

    async def data_keys(body: DataKeysQuery) -> bytes:
        found = await keys.describe(body.key_ids, body.subjects)
        items = [
            DataKeyItem(key_id=k.key_id, subject=k.subject,
                        key=base64.b64encode(k.secret).decode() if k.secret else None)
            for k in found
        ]
        return DataKeys(keys=items).model_dump_json().encode()

    s = PrivacySubjects
    return [
        Route(s.ERASE_CUSTOMER, EraseCustomer, CustomerCard, erase,
              "Erase a deleted customer's personal data (its card's and every contact's): the keys are"
              " destroyed; the fields read \"[erased]\" from then on. A reason is required."),
        Route(s.ERASE_CONTACT, EraseContact, CustomerCard, erase,
              "Erase a removed contact's personal data: its key is destroyed. A reason is required."),
        Route(s.DATA_KEYS, DataKeysQuery, DataKeys, data_keys,
              "Data keys by id (to read personal data) or by subject (to write it: made when missing,"
              " none for an erased subject). Only for the services that read personal data."),
    ]
