namespace Escrow.Sandbox;

/// <summary>A snapshot of an emulated PaymentIntent.</summary>
public sealed record SandboxPaymentIntent
{
    public required string Id { get; init; }
    public required long Amount { get; init; }
    public long AmountCapturable { get; init; }
    public long AmountReceived { get; init; }
    public required string Currency { get; init; }
    public required string Status { get; init; }
    public required string CaptureMethod { get; init; }
    public required string ClientSecret { get; init; }
    public string? LatestCharge { get; init; }
    public string? PaymentMethod { get; init; }
    public string? TransferGroup { get; init; }
    public string? Description { get; init; }
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = SandboxDefaults.EmptyMetadata;
    public string? CancellationReason { get; init; }
    public long Created { get; init; }
    public SandboxPaymentError? LastPaymentError { get; init; }
}

/// <summary>The <c>last_payment_error</c> of a PaymentIntent.</summary>
public sealed record SandboxPaymentError(string Type, string Code, string? DeclineCode, string Message, string? PaymentMethod);

/// <summary>A snapshot of an emulated Charge.</summary>
public sealed record SandboxCharge
{
    public required string Id { get; init; }
    public required long Amount { get; init; }
    public long AmountCaptured { get; init; }
    public long AmountRefunded { get; init; }
    public bool Captured { get; init; }
    public bool Refunded { get; init; }
    public required string Currency { get; init; }
    public required string PaymentIntent { get; init; }
    public string? PaymentMethod { get; init; }
    public string Status { get; init; } = "succeeded";
    public string? TransferGroup { get; init; }
    public long Created { get; init; }
}

/// <summary>A snapshot of an emulated Transfer.</summary>
public sealed record SandboxTransfer
{
    public required string Id { get; init; }
    public required long Amount { get; init; }
    public required string Currency { get; init; }
    public required string Destination { get; init; }
    public string? SourceTransaction { get; init; }
    public string? TransferGroup { get; init; }
    public string? Description { get; init; }
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = SandboxDefaults.EmptyMetadata;
    public long Created { get; init; }
    public long AmountReversed { get; init; }
    public bool Reversed => AmountReversed >= Amount;
}

/// <summary>A snapshot of an emulated transfer reversal: money taken back from the connected account to the platform.</summary>
public sealed record SandboxTransferReversal
{
    public required string Id { get; init; }
    public required long Amount { get; init; }
    public required string Currency { get; init; }
    public required string Transfer { get; init; }
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = SandboxDefaults.EmptyMetadata;
    public long Created { get; init; }
}

/// <summary>A snapshot of an emulated dispute (chargeback) of a charge.</summary>
public sealed record SandboxDispute
{
    public required string Id { get; init; }
    public required long Amount { get; init; }
    public required string Currency { get; init; }
    public required string Charge { get; init; }
    public required string PaymentIntent { get; init; }
    /// <summary><c>needs_response</c> while open; <c>won</c> or <c>lost</c> once closed.</summary>
    public required string Status { get; init; }
    public string Reason { get; init; } = "fraudulent";
    public long Created { get; init; }
}

/// <summary>A snapshot of an emulated Refund.</summary>
public sealed record SandboxRefund
{
    public required string Id { get; init; }
    public required long Amount { get; init; }
    public required string Currency { get; init; }
    public required string Charge { get; init; }
    public required string PaymentIntent { get; init; }
    public string Status { get; init; } = "succeeded";
    public string? Reason { get; init; }
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = SandboxDefaults.EmptyMetadata;
    public long Created { get; init; }
}

/// <summary>A snapshot of an emulated Connect account.</summary>
public sealed record SandboxAccount
{
    public required string Id { get; init; }
    public string Type { get; init; } = "express";
    public string? Country { get; init; }
    public string? Email { get; init; }
    public string? BusinessType { get; init; }
    public bool ChargesEnabled { get; init; }
    public bool PayoutsEnabled { get; init; }
    public bool DetailsSubmitted { get; init; }
    public IReadOnlyDictionary<string, string> Capabilities { get; init; } = SandboxDefaults.EmptyMetadata;
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = SandboxDefaults.EmptyMetadata;
    public long Created { get; init; }

    /// <summary><c>tos_acceptance[service_agreement]</c>: <c>full</c> (the default) or <c>recipient</c>.</summary>
    public string ServiceAgreement { get; init; } = "full";

    /// <summary>What the account paid out to its bank: it is no longer in its Stripe balance to cover a reversal.</summary>
    public long PaidOut { get; init; }
}

/// <summary>An emulated account link: single-use, short-lived.</summary>
public sealed record SandboxAccountLink
{
    public required string Id { get; init; }
    public required string Account { get; init; }
    public required string RefreshUrl { get; init; }
    public required string ReturnUrl { get; init; }
    public long Created { get; init; }
    public long ExpiresAt { get; init; }

    /// <summary>Whether its onboarding page was shown once: any later visit is sent to <see cref="RefreshUrl"/>.</summary>
    public bool Used { get; init; }
}

/// <summary>An emulated webhook endpoint of the account (what <c>GET /v1/webhook_endpoints</c> lists).</summary>
public sealed record SandboxWebhookEndpoint
{
    public required string Id { get; init; }
    public required string Url { get; init; }
    public required string ApiVersion { get; init; }
    public IReadOnlyList<string> EnabledEvents { get; init; } = [];

    /// <summary>A Connect endpoint receives the events of connected accounts.</summary>
    public bool Connect { get; init; }

    public string Status { get; init; } = "enabled";
    public long Created { get; init; }
}

/// <summary>What <c>GET /_sandbox/stripe/stats</c> answers: the emulated API's requests, in calendar-second buckets.</summary>
public sealed record SandboxStripeStats(long Requests, long RateLimited, int MaxRequestsInOneSecond);

/// <summary>An emulated event; <see cref="Json"/> is exactly the payload that is delivered.</summary>
public sealed record SandboxEvent
{
    public required string Id { get; init; }
    public required string Type { get; init; }
    public required string ObjectId { get; init; }

    /// <summary>The connected account an event belongs to (top-level <c>account</c>), null for the platform's own.</summary>
    public string? Account { get; init; }

    public string? IdempotencyKey { get; init; }
    public long Created { get; init; }
    public required string Json { get; init; }
}

/// <summary>One request the Stripe emulator answered.</summary>
public sealed record SandboxRequest(
    string Method,
    string Path,
    string? IdempotencyKey,
    int StatusCode,
    string? Operation = null,
    bool Replayed = false);

/// <summary>One webhook delivery attempt. <see cref="StatusCode"/> is null when the request threw.</summary>
public sealed record SandboxWebhookAttempt(
    string EventId,
    int Attempt,
    int? StatusCode,
    string? Error,
    DateTimeOffset At)
{
    public bool Succeeded => StatusCode is >= 200 and < 300;
}

/// <summary>Kinds of injectable Stripe faults.</summary>
public enum SandboxFaultKind
{
    /// <summary>
    /// 500 api_error; nothing performed, but the 500 is saved under the idempotency key and replayed to every retry
    /// with that key, as Stripe does once a request has started executing.
    /// </summary>
    ServerError,
    /// <summary>
    /// The operation is performed (and its result stored for the key), then the answer is lost (500 is answered). A
    /// retry with the same key that would be answered from the stored result loses that answer too.
    /// </summary>
    LostResponse,
    /// <summary>429 rate_limit_error with Retry-After: 1; nothing performed.</summary>
    RateLimited,
    /// <summary>500 api_error before the request started executing: nothing performed, nothing saved for the key.</summary>
    ServerErrorBeforeExecution,
    /// <summary>
    /// 400 invalid_request_error with the operation's usual refusal for good (a cancel: payment_intent_unexpected_state;
    /// a refund: charge_already_refunded; a capture: charge_expired_for_capture; a transfer reversal: balance_insufficient;
    /// otherwise resource_missing); nothing
    /// performed, and the answer saved under the idempotency key and replayed, as Stripe does.
    /// </summary>
    Refused,
}

/// <summary>Operation names accepted by fault injection.</summary>
public static class SandboxOperations
{
    public const string PaymentIntentsCreate = "payment_intents.create";
    public const string PaymentIntentsConfirm = "payment_intents.confirm";
    public const string PaymentIntentsCapture = "payment_intents.capture";
    public const string PaymentIntentsCancel = "payment_intents.cancel";
    public const string TransfersCreate = "transfers.create";
    public const string RefundsCreate = "refunds.create";
    public const string TransferReversalsCreate = "transfer_reversals.create";
    public const string AccountsCreate = "accounts.create";
    public const string AccountLinksCreate = "account_links.create";

    public static IReadOnlyList<string> All { get; } =
    [
        PaymentIntentsCreate, PaymentIntentsConfirm, PaymentIntentsCapture, PaymentIntentsCancel,
        TransfersCreate, RefundsCreate, AccountsCreate, AccountLinksCreate, TransferReversalsCreate,
    ];
}

internal static class SandboxDefaults
{
    public static readonly IReadOnlyDictionary<string, string> EmptyMetadata =
        new System.Collections.ObjectModel.ReadOnlyDictionary<string, string>(new Dictionary<string, string>());
}
