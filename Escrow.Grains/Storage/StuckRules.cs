namespace Escrow.Grains.Storage;

/// <summary>
/// When an escrow counts as stuck: too long in a status that should pass quickly. One set of rules serves the
/// admin list (<c>?stuck=true</c>), the console, the reconciliation report and the monitor's <c>escrow_stuck</c> alerts.
/// </summary>
public sealed record StuckRules(
    TimeSpan HeldPastReplyDeadline,
    TimeSpan Processing,
    TimeSpan RefundPending,
    TimeSpan PendingUserSetup,
    TimeSpan TransferFailed)
{
    public static StuckRules Default { get; } = new(
        HeldPastReplyDeadline: TimeSpan.FromMinutes(5),
        Processing: TimeSpan.FromMinutes(10),
        RefundPending: TimeSpan.FromHours(1),
        PendingUserSetup: TimeSpan.FromDays(7),
        TransferFailed: TimeSpan.FromHours(24));

    /// <summary>How long the escrow may stay as it is, counted from <see cref="Since"/>; null when its status never gets stuck.</summary>
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

    public bool IsStuck(EscrowProjection p, DateTimeOffset now) =>
        Threshold(p.Status) is { } after && (p.Status != "held" || p.ReplyDeadline is not null) && Since(p) + after < now;
}
