namespace Escrow.Grains.Domain;

/// <summary>Everything that can happen to an escrow. The machine decides each (status, command) pair.</summary>
public abstract record EscrowCommand
{
    /// <summary>The command's wire-style name, used in rejections, logs and history.</summary>
    public abstract string Name { get; }
}

// Results of the outbox effects, fed back by the grain. EffectId names the effect they complete.

public sealed record PaymentIntentCreated(int EffectId, string PaymentIntentId, string ClientSecret, string StripeStatus, long AmountMinor, string Currency) : EscrowCommand
{
    public override string Name => "payment_intent_created";
}

/// <param name="EffectId">The confirm effect whose answer this is; null when a webhook reports it.</param>
public sealed record PaymentAuthorised(string PaymentIntentId, long AmountMinor, string Currency, int? EffectId = null) : EscrowCommand
{
    public override string Name => "payment_authorised";
}

/// <summary>
/// The card was declined (by the create's or a retry's confirm, named by <paramref name="EffectId"/>, or reported by a
/// webhook). Stripe leaves the PaymentIntent in requires_payment_method: the sender may try another card.
/// </summary>
public sealed record PaymentFailed(string Reason, int? EffectId = null, string? PaymentIntentId = null, string? ClientSecret = null) : EscrowCommand
{
    public override string Name => "payment_failed";
}

/// <summary>The sender tries another card on an escrow whose payment was declined (the same create, another payment method).</summary>
public sealed record RetryPayment(string PaymentMethodId) : EscrowCommand
{
    public override string Name => "retry_payment";
}

/// <summary>The authorisation was cancelled or expired outside our flow (Stripe's payment_intent.canceled).</summary>
/// <param name="PaymentIntentId">The PaymentIntent the event names; one that is not the escrow's own changes nothing.</param>
public sealed record AuthorisationVoided(string Reason, string? PaymentIntentId = null) : EscrowCommand
{
    public override string Name => "authorisation_voided";
}

public sealed record AcceptReply(DateTimeOffset ReceivedAt, string Source, string? ReplyText = null) : EscrowCommand
{
    public override string Name => "accept_reply";
}

public sealed record Captured(int EffectId, string ChargeId) : EscrowCommand
{
    public override string Name => "captured";
}

/// <summary>Stripe refused the capture for good (e.g. the authorisation expired): an operator must decide.</summary>
public sealed record CaptureRejected(int EffectId, string Code) : EscrowCommand
{
    public override string Name => "capture_rejected";
}

public sealed record Transferred(int EffectId, string TransferId, string DestinationAccountId, bool Adopted) : EscrowCommand
{
    public override string Name => "transferred";
}

/// <summary>
/// An effect could not be done. <paramref name="Permanent"/>: asking again cannot succeed (Stripe refused a cancel, a
/// refund or a transfer reversal for good, <see cref="StripeRefusals.IsPermanent"/>), so the effect ends and an operator
/// decides what comes next; otherwise it is tried again with backoff (<see cref="EscrowPolicy.EffectRetry"/>).
/// </summary>
/// <param name="Error">Why: the provider's code, the exception's type, or the rejection of the effect's result.</param>
public sealed record EffectFailed(int EffectId, string Error, bool Permanent) : EscrowCommand
{
    public override string Name => "effect_failed";
}

public sealed record TransferRejected(int EffectId, string Code, bool Permanent) : EscrowCommand
{
    public override string Name => "transfer_rejected";
}

public sealed record RecipientNotReady(int EffectId) : EscrowCommand
{
    public override string Name => "recipient_not_ready";
}

/// <summary>
/// Replace the escrow's personal data with "erased", keeping ids and amounts: the subject and message (and reply texts
/// waiting to be sent) always, the sender's e-mail address too unless <paramref name="BodiesOnly"/> (the retention of
/// message bodies).
/// </summary>
public sealed record ErasePersonalData(bool BodiesOnly) : EscrowCommand
{
    public override string Name => "erase_personal_data";
}

/// <summary>An escrow waiting for payout setup asks the recipient again on its own schedule.</summary>
public sealed record PayoutCheckDue : EscrowCommand
{
    public override string Name => "payout_check_due";
}

public sealed record RecipientPayoutsEnabled : EscrowCommand
{
    public override string Name => "recipient_payouts_enabled";
}

public sealed record PaymentIntentCancelled(int EffectId) : EscrowCommand
{
    public override string Name => "payment_intent_cancelled";
}

public sealed record PaymentRefunded(int EffectId, string RefundId) : EscrowCommand
{
    public override string Name => "payment_refunded";
}

public sealed record RefundPermitAnswered(int EffectId, RefundPermit Outcome) : EscrowCommand
{
    public override string Name => "refund_permit_answered";
}

/// <summary>
/// Instead of a refund permit: a reply received by the reply deadline is recorded but not judged yet (its handling
/// was cut off, and the sender of the e-mail retries it). The refund waits for that retry.
/// </summary>
public sealed record ReplyAwaited(int EffectId, DateTimeOffset ReceivedAt) : EscrowCommand
{
    public override string Name => "reply_awaited";
}

/// <summary>An effect with no result of its own (email, alert, slot release) is done.</summary>
public sealed record EffectCompleted(int EffectId) : EscrowCommand
{
    public override string Name => "effect_completed";
}

// Time: produced by the grain when the clock passes a stored due time (EscrowMachine.DueCommands).

public sealed record UnpaidExpired : EscrowCommand
{
    public override string Name => "unpaid_expired";
}

public sealed record DeadlinePassed : EscrowCommand
{
    public override string Name => "deadline_passed";
}

public sealed record DeadlineReminderDue(EmailKind Reminder) : EscrowCommand
{
    public override string Name => "deadline_reminder_due";
}

public sealed record TransferRetryDue : EscrowCommand
{
    public override string Name => "transfer_retry_due";
}

public sealed record RefundPermitRetryDue : EscrowCommand
{
    public override string Name => "refund_permit_retry_due";
}

// Operators (audited by the API).

public sealed record OperatorRelease(string Reason) : EscrowCommand
{
    public override string Name => "operator_release";
}

public sealed record OperatorRefund(string Reason) : EscrowCommand
{
    public override string Name => "operator_refund";
}

public sealed record OperatorRetryTransfer : EscrowCommand
{
    public override string Name => "operator_retry_transfer";
}

public sealed record OperatorApproveRefund : EscrowCommand
{
    public override string Name => "operator_approve_refund";
}

public sealed record DisputeOpened(string DisputeId) : EscrowCommand
{
    public override string Name => "dispute_opened";
}

/// <summary>Stripe closed the dispute (charge.dispute.closed): won keeps the money with the platform, lost returns it to the sender.</summary>
public sealed record DisputeClosed(string DisputeId, bool Won) : EscrowCommand
{
    public override string Name => "dispute_closed";
}

public sealed record OperatorResolveDispute(string Reason) : EscrowCommand
{
    public override string Name => "operator_resolve_dispute";
}

/// <summary>Stripe says a transfer exists in this escrow's transfer group (transfer.created).</summary>
/// <param name="RecipientAccountId">The recipient's Stripe account as the recipient knows it now (null: none): a transfer elsewhere is not the escrow's payout.</param>
public sealed record TransferReported(string TransferId, long AmountMinor, string Currency, string DestinationAccountId, string? RecipientAccountId) : EscrowCommand
{
    public override string Name => "transfer_reported";
}

/// <summary>This service's reversal of the escrow's transfer was made (the answer of a ReverseTransfer effect).</summary>
public sealed record TransferReversalMade(int EffectId, string ReversalId) : EscrowCommand
{
    public override string Name => "transfer_reversal_made";
}

/// <summary>Stripe says a transfer of this escrow was reversed (transfer.reversed): by this service, or by someone else.</summary>
public sealed record TransferReversed(string TransferId, long AmountMinor) : EscrowCommand
{
    public override string Name => "transfer_reversed";
}

/// <summary>
/// Something about this escrow that an operator must see, found outside the escrow's own flow (a webhook it refused, a
/// transfer in its group it cannot adopt, a reply it could not trust): the alert goes through the escrow's outbox.
/// </summary>
/// <param name="Key">
/// What makes two reports the same finding (a transfer's or a message's id): an alert with the same kind and key is
/// raised once. Null: every report is its own.
/// </param>
public sealed record AlertRaised(AlertKind Kind, string Detail, string? Key = null) : EscrowCommand
{
    public override string Name => "alert_raised";
}

/// <summary>An inbound reply whose token matched was not passed on (<see cref="RefusedReplyReason"/>): an operator is alerted.</summary>
public sealed record ReplyRefused(RefusedReplyReason Reason, string MessageId, string? Why) : EscrowCommand
{
    public override string Name => "reply_refused";
}

/// <summary>An e-mail of the escrow bounced (<paramref name="Email"/> null: not one the escrow knows by its tag).</summary>
public sealed record EmailBounced(EmailKind? Email, string To, string Error) : EscrowCommand
{
    public override string Name => "email_bounced";
}
