namespace Escrow.Grains.Storage;

/// <summary>
/// When an escrow counts as stuck: too long in a status that should pass quickly, a failed transfer nothing will try
/// again, or an effect waiting too long in its outbox. One set of rules serves the admin list (<c>?stuck=true</c>),
/// the console, the reconciliation report and the monitor's <c>escrow_stuck</c> alerts (PostgresEscrowStore's
/// query states the same conditions in SQL; the store contract tests hold both to them).
/// </summary>
public sealed record StuckRules(
    TimeSpan HeldPastReplyDeadline,
    TimeSpan Processing,
    TimeSpan RefundPending,
    TimeSpan PendingUserSetup,
    TimeSpan TransferFailed,
    TimeSpan EffectWaiting)
{
    /// <summary>The condition of a failed transfer whose retries are used up (stuck from the moment they are).</summary>
    public const string TransferRetriesExhausted = "transfer_retries_exhausted";

    /// <summary>The condition of an effect waiting in the outbox longer than <see cref="EffectWaiting"/>.</summary>
    public const string EffectWaitingCondition = "effect_waiting";

    public static StuckRules Default { get; } = new(
        HeldPastReplyDeadline: TimeSpan.FromMinutes(5),
        Processing: TimeSpan.FromMinutes(10),
        RefundPending: TimeSpan.FromHours(1),
        PendingUserSetup: TimeSpan.FromDays(7),
        TransferFailed: TimeSpan.FromHours(24),
        EffectWaiting: TimeSpan.FromHours(1));

    /// <summary>How long the escrow may stay in a status, counted from <see cref="Since"/>; null when its status never gets stuck.</summary>
    public TimeSpan? Threshold(string status) => status switch
    {
        "held" => HeldPastReplyDeadline,
        "processing" => Processing,
        "refund_pending" => RefundPending,
        "pending_user_setup" => PendingUserSetup,
        "transfer_failed" => TransferFailed,
        _ => null,
    };

    /// <summary>A held escrow is counted from its reply deadline, any other from its last status change.</summary>
    public static DateTimeOffset Since(EscrowProjection p) =>
        p.Status == "held" && p.ReplyDeadline is { } reply ? reply : p.StatusChangedAt;

    /// <summary>
    /// Every way the escrow is stuck at <paramref name="now"/>. A condition's <see cref="StuckCondition.Name"/> is the
    /// status for the status rules; with <see cref="StuckCondition.Since"/> it names one episode, alerted once.
    /// </summary>
    public IReadOnlyList<StuckCondition> Conditions(EscrowProjection p, DateTimeOffset now)
    {
        var found = new List<StuckCondition>();
        if (Threshold(p.Status) is { } after && (p.Status != "held" || p.ReplyDeadline is not null) && Since(p) + after < now)
        {
            found.Add(new StuckCondition(p.Status, Since(p), $"{p.Status} since {Since(p):u}, longer than {after}"));
        }
        if (p.Status == "transfer_failed" && p.TransferRetriesExhausted)
        {
            found.Add(new StuckCondition(TransferRetriesExhausted, p.StatusChangedAt,
                $"transfer_failed since {p.StatusChangedAt:u} with its retries exhausted: nothing tries the transfer again"));
        }
        if (p.EffectWaitingSince is { } waiting && waiting + EffectWaiting < now)
        {
            found.Add(new StuckCondition(EffectWaitingCondition, waiting,
                $"an effect has waited in the outbox since {waiting:u}, longer than {EffectWaiting}"));
        }
        return found;
    }

    public bool IsStuck(EscrowProjection p, DateTimeOffset now) => Conditions(p, now).Count > 0;
}

/// <summary>One way an escrow is stuck: which rule, since when, and a sentence for the alert.</summary>
public sealed record StuckCondition(string Name, DateTimeOffset Since, string Description);
