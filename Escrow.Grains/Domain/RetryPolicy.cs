namespace Escrow.Grains.Domain;

/// <summary>A bounded exponential backoff: First, 2×First, 4×First … capped at Max, at most MaxAttempts tries.</summary>
[GenerateSerializer, Immutable, Alias("escrow.retry-policy.v1")]
public sealed record RetryPolicy([property: Id(0)] int MaxAttempts, [property: Id(1)] TimeSpan First, [property: Id(2)] TimeSpan Max)
{
    /// <summary>The wait after the given number of failures (1 = after the first failure).</summary>
    public TimeSpan DelayAfter(int failures)
    {
        if (failures <= 1)
        {
            return First;
        }
        var exponent = Math.Min(failures - 1, 30);
        var ticks = First.Ticks * (double)(1L << exponent);
        return ticks >= Max.Ticks ? Max : TimeSpan.FromTicks((long)ticks);
    }

    public bool IsExhausted(int failures) => failures >= MaxAttempts;
}

/// <summary>The rules the machine applies that come from configuration rather than from the escrow itself.</summary>
public sealed record EscrowPolicy(
    RetryPolicy TransferRetry,
    RetryPolicy EffectRetry,
    TimeSpan PermitRetryDelay,
    TimeSpan AdoptTransfersAfter,
    TimeSpan PayoutCheckPeriod)
{
    /// <summary>
    /// How long after the reply deadline a refund waits for a timely reply that was received but not judged: Postmark
    /// retries a failed inbound delivery for about 10.5 hours (1, 5, 10, 10, 10, 15, 30 minutes, 1, 2 and 6 hours).
    /// </summary>
    public TimeSpan PendingReplyWaitMax { get; init; } = TimeSpan.FromHours(12);

    /// <summary>
    /// Disputes:ReverseTransfer: a dispute opened after the recipient was paid takes their share back, so the recipient,
    /// not the platform, carries the chargeback; a dispute won transfers it again.
    /// </summary>
    public bool ReverseTransferOnDispute { get; init; } = true;

    public static EscrowPolicy Default { get; } = new(
        TransferRetry: new RetryPolicy(MaxAttempts: 8, First: TimeSpan.FromMinutes(1), Max: TimeSpan.FromHours(6)),
        EffectRetry: new RetryPolicy(MaxAttempts: 10, First: TimeSpan.FromSeconds(5), Max: TimeSpan.FromMinutes(30)),
        PermitRetryDelay: TimeSpan.FromMinutes(1),
        AdoptTransfersAfter: TimeSpan.FromHours(24),
        PayoutCheckPeriod: TimeSpan.FromDays(1));
}
