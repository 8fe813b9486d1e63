"""The customer service's subjects for payments, balance, PayPal settings and IPNs."""

from __future__ import annotations

from shared.contracts.payments import (
    Balance,
    BalanceQuery,
    GetPaypalSettings,
    IpnAccepted,
    IpnLogPage,
    IpnLogQuery,
    ListPayments,
    Payment,
    PaymentPage,
    PaymentSubjects,
    PaypalSettingsReply,
    RecordPayment,
    SetPaymentStatus,
    SetPaypalSettings,
    SubmitIpn,
)
from shared.logging import current_correlation_id
from shared.rpc import Route

from customer.application.commands import CustomerCommands
from customer.application.payments import PaymentQueries, record_command, status_command
from customer.application.paypal import IpnInbox, PaypalSettingsService


def payment_routes(
    *,
    commands: CustomerCommands,
    queries: PaymentQueries,
    paypal: PaypalSettingsService,
    inbox: IpnInbox,
) -> list[Route]:
    """Every money subject with its models and handler."""

    async def record(body: RecordPayment) -> bytes:
        body.meta.correlation_id = body.meta.correlation_id or current_correlation_id()
        return await commands.handle(record_command(body))

    async def set_status(body: SetPaymentStatus) -> bytes:
        body.meta.correlation_id = body.meta.correlation_id or current_correlation_id()
        return await commands.handle(status_command(body))

    async def list_payments(body: ListPayments) -> bytes:
        return await queries.list(body)

    async def balance(body: BalanceQuery) -> bytes:
        return await queries.balance(body.customer_id)

    async def get_paypal(_: GetPaypalSettings) -> bytes:
        return await paypal.reply()

    async def set_paypal(body: SetPaypalSettings) -> bytes:
        body.meta.correlation_id = body.meta.correlation_id or current_correlation_id()
        return await paypal.set(body)

    async def ipn(body: SubmitIpn) -> bytes:
        return await inbox.submit(body)

    async def ipn_log(body: IpnLogQuery) -> bytes:
        return await inbox.log_page(body)

    s = PaymentSubjects
    return [
        Route(
            s.RECORD,
            RecordPayment,
            Payment,
            record,
            "Record a payment, refund or adjustment on a customer's ledger. Idempotent by"
            " payment.reference: the same values answer the payment, other values are a conflict.",
        ),
        Route(
            s.SET_STATUS,
            SetPaymentStatus,
            Payment,
            set_status,
            "A pending payment becomes completed or cancelled (nothing else).",
        ),
        Route(s.LIST, ListPayments, PaymentPage, list_payments, "A customer's payments, newest first."),
        Route(
            s.BALANCE,
            BalanceQuery,
            Balance,
            balance,
            "Balance and available credit (shared.money), with the totals they are made of.",
        ),
        Route(s.GET_PAYPAL, GetPaypalSettings, PaypalSettingsReply, get_paypal, "The PayPal settings."),
        Route(
            s.SET_PAYPAL,
            SetPaypalSettings,
            PaypalSettingsReply,
            set_paypal,
            "Set the PayPal settings: enabled, receiver_email, verify_url.",
        ),
        Route(
            s.IPN,
            SubmitIpn,
            IpnAccepted,
            ipn,
            "Keep a PayPal IPN as received (raw); it is verified and applied in the background.",
        ),
        Route(s.IPN_LOG, IpnLogQuery, IpnLogPage, ipn_log, "Every IPN with its outcome, newest first."),
    ]
