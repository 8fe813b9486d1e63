"""Invoice settings: null clears a text and is refused for numbering (found by fuzzing: null was a 500)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from shared.contracts.invoices import InvoiceSettingsIn


def test_null_clears_a_text_and_left_out_keeps_it() -> None:
    body = InvoiceSettingsIn.model_validate({"footer": None, "company_name": None})
    assert body.model_dump(exclude_unset=True) == {"footer": "", "company_name": ""}
    assert InvoiceSettingsIn.model_validate({}).model_dump(exclude_unset=True) == {}


@pytest.mark.parametrize("field", ["prefix", "next_number", "due_days"])
def test_null_numbering_is_a_validation_error(field: str) -> None:
    with pytest.raises(ValidationError, match=f"{field} cannot be null"):
        InvoiceSettingsIn.model_validate({field: None})
