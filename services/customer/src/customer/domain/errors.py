"""Rules the database keeps across customers (unique names, e-mails, blocks), as domain errors."""

from __future__ import annotations

from shared.errors import ErrorCode, ErrorDetail, ServiceError


class Taken(ServiceError):
    """A value that must be unique was taken by another customer while this command ran."""


class NameTaken(Taken):
    """Another live customer has this name (case-insensitively)."""

    MESSAGE = ("another customer already has this name (names are unique, case-insensitively,"
               " among customers that are not deleted)")

    def __init__(self) -> None:
        super().__init__(ErrorCode.NAME_TAKEN, self.MESSAGE,
                         [ErrorDetail(field="name", message=self.MESSAGE, type="name_taken")])


class EmailTaken(Taken):
    """Another live contact logs in with this e-mail (case-insensitively)."""

    MESSAGE = ("another contact already logs in with this e-mail (contact e-mails are unique across"
               " all customers)")

    def __init__(self) -> None:
        super().__init__(ErrorCode.EMAIL_TAKEN, self.MESSAGE,
                         [ErrorDetail(field="email", message=self.MESSAGE, type="email_taken")])


class BlockTaken(Taken):
    """The number block chosen was just assigned to another customer: choose again."""

    TYPE = "number_block_taken"

    def __init__(self) -> None:
        super().__init__(
            ErrorCode.CONFLICT, "that number block was just assigned to another customer; retry",
            [ErrorDetail(field="block", message="taken", type=self.TYPE)],
        )
