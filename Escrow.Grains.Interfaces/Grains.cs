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

[Alias("escrow.IRecipientGrain")]
public interface IRecipientGrain : IGrainWithStringKey
{
    /// <summary>Creates or updates the recipient; with the profile's KeyId the change carries its audit row in the same write.</summary>
    [Alias("upsert")] Task<RecipientView> UpsertAsync(RecipientProfile profile);

    [Alias("get")] Task<RecipientView?> GetAsync();

    /// <summary>
    /// Prices the window and, if today's paid slots are below the daily limit and the recipient's unpaid escrows below
    /// their cap, counts this escrow as unpaid. Idempotent per escrow.
    /// </summary>
    [Alias("reserve")] Task<Reservation> ReserveAsync(Guid escrowId, TimeSpan responseWindow);

    /// <summary>The escrow's payment is authorised: it takes one of today's slots and no longer counts as unpaid. Idempotent.</summary>
    [Alias("take-slot")] Task TakeSlotAsync(Guid escrowId, long amountMinor, int revenueShareBps, string currency);

    [Alias("release-slot")] Task ReleaseSlotAsync(Guid escrowId);

    [Alias("onboarding-link")] Task<OnboardingLink> CreateOnboardingLinkAsync(string refreshUrl, string returnUrl);

    /// <summary>The same, asked for by <paramref name="keyId"/> (an API key's id, or who else asked): the call is audited.</summary>
    [Alias("onboarding-link-audited")] Task<OnboardingLink> CreateOnboardingLinkAsync(string refreshUrl, string returnUrl, string keyId);

    /// <summary>The connected account to pay, or null when the recipient cannot receive transfers yet.</summary>
    [Alias("payout-destination")] Task<string?> GetPayoutDestinationAsync();

    /// <summary>
    /// Remembers an escrow that waits for this recipient's payout setup; it is released when payouts are enabled.
    /// Returns true when payouts are enabled already (the escrow transfers at once instead of waiting).
    /// </summary>
    [Alias("await-payout-setup")] Task<bool> AwaitPayoutSetupAsync(Guid escrowId);

    /// <summary>Stripe says the account changed (account.updated), or a poll read it.</summary>
    [Alias("account-updated")] Task AccountUpdatedAsync(string accountId, bool payoutsEnabled);

    /// <summary>Reads the account from Stripe (the webhook can be missed) and applies it.</summary>
    [Alias("refresh-account")] Task<RecipientView?> RefreshAccountAsync();

    /// <summary>
    /// Deletes the recipient: no new escrows, and the address and name become "erased". False when there is none. The
    /// caller checks first that none of its escrows is open.
    /// </summary>
    [Alias("delete")] Task<bool> DeleteAsync();
}

/// <summary>Erases the message bodies of escrows finished longer ago than Retention:MessageBodies, daily (key 0).</summary>
[Alias("escrow.IRetentionGrain")]
public interface IRetentionGrain : IGrainWithIntegerKey
{
    /// <summary>Registers the daily reminder (idempotent); every host calls it at start.</summary>
    [Alias("ensure-scheduled")] Task EnsureScheduledAsync();

    /// <summary>Erases now; returns how many escrows' bodies it erased.</summary>
    [Alias("run")] Task<int> RunAsync();
}

/// <summary>The singleton that hands out refund permits (key 0).</summary>
[Alias("escrow.ICircuitBreakerGrain")]
public interface ICircuitBreakerGrain : IGrainWithIntegerKey
{
    /// <summary>Idempotent per escrow: asking again in the same window for the same escrow gets the same answer.</summary>
    /// <remarks>The amount's currency picks the cap it counts against (CircuitBreaker:AmountPerWindowMax:CODE).</remarks>
    [Alias("request-permit.v2")] Task<RefundPermit> RequestPermitAsync(Guid escrowId, Money amount);

    [Alias("get")] Task<CircuitBreakerView> GetAsync();

    [Alias("reset")] Task<CircuitBreakerView> ResetAsync(string resetBy);
}

public enum RefundPermit
{
    Granted = 0,
    Denied = 1,
    NeedsApproval = 2,
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

[GenerateSerializer, Immutable, Alias("escrow.recipient-profile.v1")]
public sealed record RecipientProfile(
    [property: Id(0)] string Email,
    [property: Id(1)] string DisplayName,
    [property: Id(2)] long BasePriceMinor,
    [property: Id(3)] string Currency,
    [property: Id(4)] int? RevenueShareBps,
    [property: Id(5)] int? DailyLimit,
    [property: Id(6)] string? Country = null,
    [property: Id(7)] string? KeyId = null);

[GenerateSerializer, Immutable, Alias("escrow.recipient-view.v1")]
public sealed record RecipientView(
    [property: Id(0)] string Id,
    [property: Id(1)] string Email,
    [property: Id(2)] string DisplayName,
    [property: Id(3)] long BasePriceMinor,
    [property: Id(4)] string Currency,
    [property: Id(5)] int RevenueShareBps,
    [property: Id(6)] int DailyLimit,
    [property: Id(7)] string? StripeAccountId,
    [property: Id(8)] bool PayoutsEnabled,
    [property: Id(9)] int EscrowsAwaitingPayoutSetup,
    [property: Id(10)] string? Country = null);

/// <param name="New">The slot was taken by this call, not one the escrow already held.</param>
[GenerateSerializer, Immutable, Alias("escrow.reservation.v1")]
public sealed record Reservation(
    [property: Id(0)] bool Reserved,
    [property: Id(7)] Rejection? Rejection,
    [property: Id(3)] long AmountMinor,
    [property: Id(4)] string Currency,
    [property: Id(5)] int RevenueShareBps,
    [property: Id(6)] bool New = false)
{
    /// <summary>The rejection's wire name, for logs and test messages; compare <see cref="Rejection"/> itself.</summary>
    public string? RejectionCode => Rejection?.Code;
}

[GenerateSerializer, Immutable, Alias("escrow.onboarding-link.v1")]
public sealed record OnboardingLink([property: Id(0)] string AccountId, [property: Id(1)] string Url);

/// <param name="RefundAmountInWindowMinor">In the first enabled currency (Escrow:Currencies); every currency is in <paramref name="Currencies"/>.</param>
/// <param name="RefundAmountPerWindowMaxMinor">The first enabled currency's cap.</param>
/// <param name="State">"open" while the count cap or any currency's amount cap is reached.</param>
[GenerateSerializer, Immutable, Alias("escrow.breaker-view.v1")]
public sealed record CircuitBreakerView(
    [property: Id(0)] string State,
    [property: Id(1)] DateTimeOffset? WindowStartedAt,
    [property: Id(2)] int RefundsInWindow,
    [property: Id(3)] long RefundAmountInWindowMinor,
    [property: Id(4)] int RefundsPerWindowMax,
    [property: Id(5)] long RefundAmountPerWindowMaxMinor,
    [property: Id(6)] TimeSpan Window,
    [property: Id(7)] int Trips,
    [property: Id(8)] ImmutableArray<CircuitBreakerCurrencyView> Currencies);

/// <summary>One enabled currency's amount in the window and its cap; "open" once the cap (or the count cap) is reached.</summary>
[GenerateSerializer, Immutable, Alias("escrow.breaker-currency-view.v1")]
public sealed record CircuitBreakerCurrencyView(
    [property: Id(0)] string Currency,
    [property: Id(1)] string State,
    [property: Id(2)] long RefundAmountInWindowMinor,
    [property: Id(3)] long RefundAmountPerWindowMaxMinor);

/// <summary>The daily three-way check of escrows, the ledger and Stripe (key 0).</summary>
[Alias("escrow.IReconciliationGrain")]
public interface IReconciliationGrain : IGrainWithIntegerKey
{
    /// <summary>Reconciles one UTC day, stores the report, raises an alert per finding, and returns the report.</summary>
    [Alias("run")] Task<ReconciliationReport> RunAsync(DateOnly date, string triggeredBy);

    /// <summary>Registers the daily reminder (idempotent); every host calls it at start.</summary>
    [Alias("ensure-scheduled")] Task EnsureScheduledAsync();
}

[GenerateSerializer, Immutable, Alias("escrow.reconciliation-report.v1")]
public sealed record ReconciliationReport(
    [property: Id(0)] DateOnly Date,
    [property: Id(1)] DateTimeOffset GeneratedAt,
    [property: Id(2)] string TriggeredBy,
    [property: Id(3)] ImmutableArray<ReconciliationCount> Counts,
    [property: Id(4)] ImmutableArray<ReconciliationIssue> Issues,
    [property: Id(5)] ImmutableArray<ReconciliationFinding> Findings,
    [property: Id(6)] int EscrowsChecked,
    [property: Id(7)] int PaymentIntentsChecked);

[GenerateSerializer, Immutable, Alias("escrow.reconciliation-count.v1")]
public sealed record ReconciliationCount([property: Id(0)] string Status, [property: Id(1)] string Currency, [property: Id(2)] long Count, [property: Id(3)] long AmountMinor);

[GenerateSerializer, Immutable, Alias("escrow.reconciliation-issue.v1")]
public sealed record ReconciliationIssue([property: Id(0)] string Kind, [property: Id(1)] long Count, [property: Id(2)] string Detail);

[GenerateSerializer, Immutable, Alias("escrow.reconciliation-finding.v1")]
public sealed record ReconciliationFinding([property: Id(0)] string Kind, [property: Id(1)] Guid? EscrowId, [property: Id(2)] string Detail);
