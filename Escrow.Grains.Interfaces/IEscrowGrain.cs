using System.Collections.Immutable;

namespace Escrow;

/// <summary>One escrow: a thin shell around the pure state machine. Keyed by the escrow id.</summary>
[Alias("escrow.IEscrowGrain")]
public interface IEscrowGrain : IGrainWithGuidKey
{
    /// <summary>Creates the escrow, or returns it again for the same request (same Idempotency-Key and body).</summary>
    [Alias("create")] Task<EscrowResult> CreateAsync(CreateEscrow request);

    [Alias("get")] Task<EscrowView?> GetAsync();

    [Alias("accept-reply")] Task<EscrowResult> AcceptReplyAsync(ReplyReceived reply);

    /// <summary>A fact reported by Stripe (webhook), routed here by escrow id.</summary>
    [Alias("payment-event")] Task<EscrowResult> HandlePaymentEventAsync(PaymentEvent paymentEvent);

    /// <summary>
    /// The recipient can now receive transfers. One-way: the recipient never waits on an escrow (which may be calling
    /// it), and a lost message only delays the transfer until the escrow's own periodic payout check.
    /// </summary>
    [Alias("payouts-enabled"), Orleans.Concurrency.OneWay] Task RecipientPayoutsEnabledAsync();

    [Alias("operator")] Task<EscrowResult> OperateAsync(OperatorAction action);

    /// <summary>The operator actions the escrow's status allows now, as the machine decides them (nothing is run).</summary>
    [Alias("operator-actions")] Task<ImmutableArray<OperatorActionKind>> GetOperatorActionsAsync();

    /// <summary>Looks at the stored due times and runs whatever is due or left in the outbox (what a reminder tick does).</summary>
    [Alias("wake")] Task WakeAsync();

    /// <summary>The same as <see cref="WakeAsync"/>, sent without waiting: a grain uses it to drive itself on a later turn.</summary>
    [Alias("drive"), Orleans.Concurrency.OneWay] Task DriveAsync();

    /// <summary>The reply token that the recipient's Reply-To carries; used to route inbound mail.</summary>
    [Alias("reply-context")] Task<ReplyContext?> GetReplyContextAsync();

    /// <summary>
    /// Replaces the subject and message (and, unless <paramref name="bodiesOnly"/>, the sender's address) with "erased";
    /// refused (escrow_open) while the escrow is not terminal or still has e-mails to send.
    /// </summary>
    [Alias("erase-personal-data")] Task<EscrowResult> ErasePersonalDataAsync(bool bodiesOnly);

    /// <summary>An inbound reply that was not passed on: the escrow alerts an operator (nothing is released).</summary>
    [Alias("refuse-reply")] Task<EscrowResult> RefuseReplyAsync(RefusedReply reply);

    /// <summary>One of the escrow's e-mails bounced: the escrow decides whether an operator must know.</summary>
    [Alias("email-bounced")] Task<EscrowResult> EmailBouncedAsync(BouncedEmail bounce);
}

[GenerateSerializer, Immutable, Alias("escrow.create.v1")]
public sealed record CreateEscrow(
    [property: Id(0)] string RecipientId,
    [property: Id(1)] string SenderEmail,
    [property: Id(2)] TimeSpan ResponseWindow,
    [property: Id(3)] string Subject,
    [property: Id(4)] string Message,
    [property: Id(5)] string? PaymentMethodId,
    [property: Id(6)] string RequestHash);

[GenerateSerializer, Immutable, Alias("escrow.reply-received.v1")]
/// <param name="KeyId">The id of the API key that posted the reply (the platform's), for the audit trail; null for an e-mail.</param>
public sealed record ReplyReceived(
    [property: Id(0)] DateTimeOffset ReceivedAt,
    [property: Id(1)] string Source,
    [property: Id(2)] string? ReplyText,
    [property: Id(3)] string? KeyId = null);

[GenerateSerializer, Immutable, Alias("escrow.reply-context.v1")]
public sealed record ReplyContext(
    [property: Id(0)] Guid EscrowId,
    [property: Id(1)] string ReplyTokenHash,
    [property: Id(2)] string RecipientId,
    [property: Id(3)] string Status,
    [property: Id(4)] DateTimeOffset Deadline,
    [property: Id(5)] DateTimeOffset ReplyDeadline);

public enum PaymentEventKind
{
    Authorised = 0,
    Failed = 1,
    Voided = 2,
    DisputeOpened = 3,
    TransferReversed = 4,
    TransferCreated = 5,
    /// <summary>charge.dispute.closed; the reason is Stripe's final status, won or lost.</summary>
    DisputeClosed = 6,
}

[GenerateSerializer, Immutable, Alias("escrow.payment-event.v1")]
public sealed record PaymentEvent(
    [property: Id(0)] PaymentEventKind Kind,
    [property: Id(1)] string ObjectId,
    [property: Id(2)] long AmountMinor,
    [property: Id(3)] string? Currency,
    [property: Id(4)] string? Reason,
    [property: Id(5)] string? DestinationAccountId = null,
    [property: Id(6)] string? EventId = null);

public enum OperatorActionKind
{
    Release = 0,
    Refund = 1,
    RetryTransfer = 2,
    ApproveRefund = 3,
    ResolveDispute = 4,
}

[GenerateSerializer, Immutable, Alias("escrow.operator-action.v1")]
public sealed record OperatorAction(
    [property: Id(0)] OperatorActionKind Kind,
    [property: Id(1)] string Reason,
    [property: Id(2)] string KeyId);

/// <summary>A view of the escrow, or the name of the rule that refused the command.</summary>
[GenerateSerializer, Immutable, Alias("escrow.result.v1")]
public sealed record EscrowResult(
    [property: Id(0)] EscrowView? View,
    [property: Id(3)] Rejection? Rejection)
{
    public bool Accepted => Rejection is null;

    /// <summary>The rejection's wire name, for logs and test messages; compare <see cref="Rejection"/> itself.</summary>
    public string? RejectionCode => Rejection?.Code;
}

/// <remarks>
/// <see cref="AccessToken"/> is empty except in the answer to a create (the escrow keeps only the token's hash,
/// <see cref="AccessTokenHash"/>, against which a presented token is checked).
/// </remarks>
[GenerateSerializer, Immutable, Alias("escrow.view.v1")]
public sealed record EscrowView(
    [property: Id(0)] Guid Id,
    [property: Id(1)] string Status,
    [property: Id(2)] string RecipientId,
    [property: Id(3)] long AmountMinor,
    [property: Id(4)] string Currency,
    [property: Id(5)] long RecipientShareMinor,
    [property: Id(6)] long PlatformFeeMinor,
    [property: Id(7)] TimeSpan ResponseWindow,
    [property: Id(8)] DateTimeOffset CreatedAt,
    [property: Id(9)] DateTimeOffset ExpiresAt,
    [property: Id(10)] DateTimeOffset ReplyDeadline,
    [property: Id(11)] string? PaymentIntentId,
    [property: Id(12)] string? ClientSecret,
    [property: Id(13)] string AccessToken,
    [property: Id(14)] string? TransferId,
    [property: Id(15)] ImmutableArray<EscrowHistoryItem> History,
    [property: Id(16)] string? ChargeId,
    [property: Id(17)] bool DisputeOpen,
    [property: Id(18)] bool NeedsOperator,
    [property: Id(19)] int TransferFailures,
    [property: Id(20)] DateTimeOffset? NextTransferAttemptAt,
    [property: Id(21)] bool RefundAwaitingApproval,
    [property: Id(22)] string SenderEmail,
    [property: Id(23)] int PendingEffects,
    [property: Id(24)] string? LastPaymentError = null,
    [property: Id(25)] string? DisputeId = null,
    [property: Id(26)] string? DisputeStatus = null,
    [property: Id(27)] bool ShareReversed = false,
    [property: Id(28)] string AccessTokenHash = "");

[GenerateSerializer, Immutable, Alias("escrow.history-item.v1")]
public sealed record EscrowHistoryItem(
    [property: Id(0)] string Status,
    [property: Id(1)] DateTimeOffset At,
    [property: Id(2)] string Event,
    [property: Id(3)] long? AmountMinor,
    [property: Id(4)] string? Detail);
