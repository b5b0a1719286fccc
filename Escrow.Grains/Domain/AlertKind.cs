namespace Escrow.Grains.Domain;

/// <summary>
/// What an operator is alerted about, with how urgent it is. <see cref="Name"/> is the wire name the alerts API and the
/// alert webhooks show; <see cref="Severity"/> is <c>critical</c> when money may be wrong or an escrow waits for a
/// person, <c>warning</c> otherwise.
/// </summary>
[GenerateSerializer, Immutable, Alias("escrow.alert-kind.v1")]
public sealed record AlertKind([property: Id(0)] string Name, [property: Id(1)] string Severity)
{
    public const string Critical = "critical";
    public const string Warning = "warning";

    // Raised by the escrow machine through the escrow's outbox.
    public static readonly AlertKind TransferRetriesExhausted = new("transfer_retries_exhausted", Critical);
    public static readonly AlertKind MoneyEffectRejected = new("money_effect_rejected", Critical);
    public static readonly AlertKind DisputeOpened = new("dispute_opened", Critical);
    public static readonly AlertKind DisputeLost = new("dispute_lost", Critical);
    public static readonly AlertKind DisputeWon = new("dispute_won", Warning);
    public static readonly AlertKind TransferReversed = new("transfer_reversed", Critical);
    public static readonly AlertKind AuthorisationVoided = new("authorisation_voided", Critical);
    public static readonly AlertKind RefundNotMade = new("refund_not_made", Critical);
    public static readonly AlertKind TransferAfterRefund = new("transfer_after_refund", Critical);
    public static readonly AlertKind DuplicateTransfer = new("duplicate_transfer", Critical);
    public static readonly AlertKind TransferMismatch = new("transfer_mismatch", Critical);
    public static readonly AlertKind PaymentMismatch = new("payment_mismatch", Critical);
    public static readonly AlertKind RefundNeedsApproval = new("refund_needs_approval", Warning);
    public static readonly AlertKind EmailFailed = new("email_failed", Warning);
    public static readonly AlertKind EmailRejected = new("email_rejected", Warning);
    public static readonly AlertKind EffectRetrying = new("effect_retrying", Warning);
    public static readonly AlertKind ReplyFromUnknownSender = new("reply_from_unknown_sender", Warning);
    public static readonly AlertKind ReplyNotAuthenticated = new("reply_not_authenticated", Warning);
    public static readonly AlertKind RecipientUnreachable = new("recipient_unreachable", Warning);

    // Raised by the grains and services that watch over many escrows, and for Stripe events that name no escrow.
    public static readonly AlertKind DisputeClosed = new("dispute_closed", Warning);
    public static readonly AlertKind EscrowStuck = new("escrow_stuck", Warning);
    public static readonly AlertKind CircuitBreakerTripped = new("circuit_breaker_tripped", Critical);
    public static readonly AlertKind CardTestingSuspected = new("card_testing_suspected", Critical);
    public static readonly AlertKind WebhookEndpointMisconfigured = new("webhook_endpoint_misconfigured", Warning);

    /// <summary>A reconciliation finding (<c>reconciliation_</c> and the finding's kind): money may be wrong.</summary>
    public static AlertKind Reconciliation(string finding) => new($"reconciliation_{finding}", Critical);

    /// <summary>
    /// Every kind an escrow's outbox can hold, by wire name: an alert effect stored before effects carried their kind
    /// kept it as "kind|text" in its detail, and is read back through this table.
    /// </summary>
    private static readonly Dictionary<string, AlertKind> ByName = new[]
    {
        TransferRetriesExhausted, MoneyEffectRejected, DisputeOpened, DisputeLost, DisputeWon, TransferReversed,
        AuthorisationVoided, RefundNotMade, TransferAfterRefund, DuplicateTransfer, TransferMismatch, PaymentMismatch,
        RefundNeedsApproval, EmailFailed, EmailRejected, EffectRetrying, ReplyFromUnknownSender, ReplyNotAuthenticated,
        RecipientUnreachable,
    }.ToDictionary(k => k.Name, StringComparer.Ordinal);

    /// <summary>The kind and text of an alert effect; one stored before effects carried their kind is read from its detail.</summary>
    public static (AlertKind Kind, string Text) Of(PendingEffect e)
    {
        if (e.Alert is { } kind)
        {
            return (kind, e.Detail ?? "");
        }
        var detail = e.Detail ?? "";
        var split = detail.IndexOf('|', StringComparison.Ordinal);
        var name = split < 0 ? detail : detail[..split];
        var text = split < 0 ? "" : detail[(split + 1)..];
        return (ByName.TryGetValue(name, out var known) ? known : new AlertKind(name, Warning), text);
    }
}
