using System.Collections.Concurrent;

namespace Escrow.Grains.Domain;

/// <summary>Everything that can happen to an escrow. The machine decides each (status, command) pair.</summary>
public abstract record EscrowCommand
{
    private static readonly ConcurrentDictionary<Type, string> Names = new();

    /// <summary>The command's wire-style name (its type's name in snake_case), used in rejections, logs and history.</summary>
    public string Name => Names.GetOrAdd(GetType(), static type => JsonNamingPolicy.SnakeCaseLower.ConvertName(type.Name));
}

// Results of the outbox effects, fed back by the grain. EffectId names the effect they complete.

public sealed record PaymentIntentCreated(int EffectId, string PaymentIntentId, string ClientSecret, string StripeStatus, long AmountMinor, string Currency) : EscrowCommand;

/// <param name="EffectId">The confirm effect whose answer this is; null when a webhook reports it.</param>
public sealed record PaymentAuthorised(string PaymentIntentId, long AmountMinor, string Currency, int? EffectId = null) : EscrowCommand;

/// <summary>
/// The card was declined (by the create's or a retry's confirm, named by <paramref name="EffectId"/>, or reported by a
/// webhook). Stripe leaves the PaymentIntent in requires_payment_method: the sender may try another card.
/// </summary>
public sealed record PaymentFailed(string Reason, int? EffectId = null, string? PaymentIntentId = null, string? ClientSecret = null) : EscrowCommand;

/// <summary>The sender tries another card on an escrow whose payment was declined (the same create, another payment method).</summary>
public sealed record RetryPayment(string PaymentMethodId) : EscrowCommand;

/// <summary>The authorisation was cancelled or expired outside our flow (Stripe's payment_intent.canceled).</summary>
/// <param name="PaymentIntentId">The PaymentIntent the event names; one that is not the escrow's own changes nothing.</param>
public sealed record AuthorisationVoided(string Reason, string? PaymentIntentId = null) : EscrowCommand;

public sealed record AcceptReply(DateTimeOffset ReceivedAt, string Source, string? ReplyText = null) : EscrowCommand;

public sealed record Captured(int EffectId, string ChargeId) : EscrowCommand;

/// <summary>Stripe refused the capture for good (e.g. the authorisation expired): an operator must decide.</summary>
public sealed record CaptureRejected(int EffectId, string Code) : EscrowCommand;

public sealed record Transferred(int EffectId, string TransferId, string DestinationAccountId, bool Adopted) : EscrowCommand;

/// <summary>
/// An effect could not be done. <paramref name="Permanent"/>: asking again cannot succeed (Stripe refused a cancel, a
/// refund or a transfer reversal for good, <see cref="StripeRefusals.IsPermanent"/>), so the effect ends and an operator
/// decides what comes next; otherwise it is tried again with backoff (<see cref="EscrowPolicy.EffectRetry"/>).
/// </summary>
/// <param name="Error">Why: the provider's code, the exception's type, or the rejection of the effect's result.</param>
public sealed record EffectFailed(int EffectId, string Error, bool Permanent) : EscrowCommand;

public sealed record TransferRejected(int EffectId, string Code, bool Permanent) : EscrowCommand;

public sealed record RecipientNotReady(int EffectId) : EscrowCommand;

/// <summary>
/// Replace the escrow's personal data with "erased", keeping ids and amounts: the subject and message (and reply texts
/// waiting to be sent) always, the sender's e-mail address too unless <paramref name="BodiesOnly"/> (the retention of
/// message bodies).
/// </summary>
public sealed record ErasePersonalData(bool BodiesOnly) : EscrowCommand;

/// <summary>An escrow waiting for payout setup asks the recipient again on its own schedule.</summary>
public sealed record PayoutCheckDue : EscrowCommand;

public sealed record RecipientPayoutsEnabled : EscrowCommand;

public sealed record PaymentIntentCancelled(int EffectId) : EscrowCommand;

public sealed record PaymentRefunded(int EffectId, string RefundId) : EscrowCommand;

public sealed record RefundPermitAnswered(int EffectId, RefundPermit Outcome) : EscrowCommand;

/// <summary>
/// Instead of a refund permit: a reply received by the reply deadline is recorded but not judged yet (its handling
/// was cut off, and the sender of the e-mail retries it). The refund waits for that retry.
/// </summary>
public sealed record ReplyAwaited(int EffectId, DateTimeOffset ReceivedAt) : EscrowCommand;

/// <summary>An effect with no result of its own (email, alert, slot release) is done.</summary>
public sealed record EffectCompleted(int EffectId) : EscrowCommand;

// Time: produced by the grain when the clock passes a stored due time (EscrowMachine.DueCommands).

public sealed record UnpaidExpired : EscrowCommand;

public sealed record DeadlinePassed : EscrowCommand;

public sealed record DeadlineReminderDue(EmailKind Reminder) : EscrowCommand;

public sealed record TransferRetryDue : EscrowCommand;

public sealed record RefundPermitRetryDue : EscrowCommand;

// Operators (audited by the API).

public sealed record OperatorRelease(string Reason) : EscrowCommand;

public sealed record OperatorRefund(string Reason) : EscrowCommand;

public sealed record OperatorRetryTransfer : EscrowCommand;

public sealed record OperatorApproveRefund : EscrowCommand;

public sealed record DisputeOpened(string DisputeId) : EscrowCommand;

/// <summary>Stripe closed the dispute (charge.dispute.closed): won keeps the money with the platform, lost returns it to the sender.</summary>
public sealed record DisputeClosed(string DisputeId, bool Won) : EscrowCommand;

public sealed record OperatorResolveDispute(string Reason) : EscrowCommand;

/// <summary>Stripe says a transfer exists in this escrow's transfer group (transfer.created).</summary>
/// <param name="RecipientAccountId">The recipient's Stripe account as the recipient knows it now (null: none): a transfer elsewhere is not the escrow's payout.</param>
public sealed record TransferReported(string TransferId, long AmountMinor, string Currency, string DestinationAccountId, string? RecipientAccountId) : EscrowCommand;

/// <summary>This service's reversal of the escrow's transfer was made (the answer of a ReverseTransfer effect).</summary>
public sealed record TransferReversalMade(int EffectId, string ReversalId) : EscrowCommand;

/// <summary>Stripe says a transfer of this escrow was reversed (transfer.reversed): by this service, or by someone else.</summary>
public sealed record TransferReversed(string TransferId, long AmountMinor) : EscrowCommand;

/// <summary>
/// Something about this escrow that an operator must see, found outside the escrow's own flow (a webhook it refused, a
/// transfer in its group it cannot adopt, a reply it could not trust): the alert goes through the escrow's outbox.
/// </summary>
/// <param name="Key">
/// What makes two reports the same finding (a transfer's or a message's id): an alert with the same kind and key is
/// raised once. Null: every report is its own.
/// </param>
public sealed record AlertRaised(AlertKind Kind, string Detail, string? Key = null) : EscrowCommand;

/// <summary>An inbound reply whose token matched was not passed on (<see cref="RefusedReplyReason"/>): an operator is alerted.</summary>
public sealed record ReplyRefused(RefusedReplyReason Reason, string MessageId, string? Why) : EscrowCommand;

/// <summary>An e-mail of the escrow bounced (<paramref name="Email"/> null: not one the escrow knows by its tag).</summary>
public sealed record EmailBounced(EmailKind? Email, string To, string Error) : EscrowCommand;
