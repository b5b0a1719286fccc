namespace Escrow;

/// <summary>
/// A business outcome that refuses a command. It changes nothing. The code is a stable snake_case name, the wire name
/// the API's problem details carry; the API maps each rejection to its HTTP status in one place (Problems.Rejection).
/// Compare rejections as values (<c>result.Rejection == Rejection.UnknownEscrow</c>), never their codes as strings.
/// </summary>
[GenerateSerializer, Immutable, Alias("escrow.rejection.v1")]
public sealed record Rejection([property: Id(0)] string Code, [property: Id(1)] string Message)
{
    /// <param name="command">The refused command's wire name.</param>
    public static Rejection NotAllowed(EscrowStatus status, string command) =>
        new("not_allowed_in_status", $"'{command}' is not allowed while the escrow is {status.ToWire()}.");

    public static readonly Rejection UnknownEscrow = new("unknown_escrow", "No escrow has this id.");
    public static readonly Rejection ReplyTooLate = new("reply_too_late", "The reply came after the deadline and its grace period.");
    public static readonly Rejection AlreadyReplied = new("already_replied", "A reply was already accepted for this escrow.");
    public static readonly Rejection DeadlineNotReached = new("deadline_not_reached", "The deadline and its grace period have not passed yet.");
    public static readonly Rejection NotDueYet = new("not_due_yet", "This action is not due yet.");
    public static readonly Rejection AlreadyDone = new("already_done", "This was already done.");
    public static readonly Rejection DuplicateEvent = new("duplicate_event", "This event was already applied.");
    public static readonly Rejection UnknownEffect = new("unknown_effect", "No pending effect has this id.");
    public static readonly Rejection PaymentNotDeclined = new("payment_not_declined", "The payment was not declined: there is nothing to retry.");
    public static readonly Rejection TooManyPaymentAttempts = new("too_many_payment_attempts", "The payment was declined too many times; create a new escrow.");
    public static readonly Rejection AmountMismatch = new("amount_mismatch", "The payment's amount or currency does not match the escrow.");
    public static readonly Rejection PaymentIntentMismatch = new("payment_intent_mismatch", "The payment intent does not belong to this escrow.");
    public static readonly Rejection TransferMismatch = new("transfer_mismatch", "The transfer does not pay the escrow's share, in its currency, to the recipient's own account.");
    public static readonly Rejection DisputeOpen = new("dispute_open", "A dispute is open: automatic actions are stopped until an operator resolves it.");
    public static readonly Rejection NoDispute = new("no_dispute", "No dispute is open on this escrow.");
    public static readonly Rejection NotAwaitingApproval = new("not_awaiting_approval", "This escrow's refund is not waiting for an operator's approval.");
    public static readonly Rejection RefundUnderway = new("refund_underway", "The refund of this escrow is already under way.");
    public static readonly Rejection IdempotencyKeyReused = new("idempotency_key_reused", "This Idempotency-Key was used with a different request body.");
    public static readonly Rejection UnknownRecipient = new("unknown_recipient", "No recipient has this id.");
    public static readonly Rejection DailyLimitReached = new("daily_limit_reached", "The recipient has reached their daily message limit.");
    public static readonly Rejection UnsupportedWindow = new("unsupported_response_window", "This response window is not offered.");
    public static readonly Rejection CurrencyNotEnabled = new("currency_not_enabled", "The recipient is priced in a currency this service no longer enables (Escrow:Currencies).");
    public static readonly Rejection EscrowOpen = new("escrow_open", "The escrow is not finished (or still has e-mails to send): its personal data is needed until it is.");
    public static readonly Rejection AlertsWaiting = new("alerts_waiting", "Too many alerts of this escrow wait to be raised; this one is logged only.");
    public static readonly Rejection TooManyUnpaid = new("too_many_unpaid", "Too many escrows are waiting for payment; pay or let one expire first.");
    public static readonly Rejection TooManyDeclines = new("too_many_declines", "Too many declined cards from this client; try again in an hour.");
    public static readonly Rejection RecipientHasNoPrice = new("recipient_has_no_price", "The recipient has no price set.");
}
