"""The customer service's sign-up subjects: the settings and the sign-up itself."""

from __future__ import annotations

from shared.contracts.signup import (
    GetSignupSettings,
    SetSignupSettings,
    SignupOutcome,
    SignupSettings,
    SignupSubjects,
    SubmitSignup,
)
from shared.logging import current_correlation_id
from shared.rpc import Route

from customer.application.signup import Signups, SignupSettingsService


def signup_routes(*, signups: Signups, settings: SignupSettingsService) -> list[Route]:
    """Every sign-up subject with its models and handler."""

    async def get_settings(_: GetSignupSettings) -> bytes:
        return await settings.reply()

    async def set_settings(body: SetSignupSettings) -> bytes:
        if body.meta.correlation_id is None:
            body.meta.correlation_id = current_correlation_id()
        return await settings.set(body)

    async def submit(body: SubmitSignup) -> bytes:
        if body.meta.correlation_id is None:
            body.meta.correlation_id = current_correlation_id()
        return await signups.submit(body)

    s = SignupSubjects
    return [
        Route(s.GET_SETTINGS, GetSignupSettings, SignupSettings, get_settings, "Sign-up settings."),
        Route(s.SET_SETTINGS, SetSignupSettings, SignupSettings, set_settings,
              "Turn sign-up on or off and choose its currencies (SignupSettingsChanged)."),
        Route(s.SUBMIT, SubmitSignup, SignupOutcome, submit,
              "A sign-up: a pending_approval customer and its contact; a known e-mail makes nothing."),
    ]
