namespace Escrow.Grains;

/// <summary>The stuck-escrow monitor's settings (section "Monitor"); the thresholds are the one set of <see cref="StuckRules"/>.</summary>
public sealed class MonitorOptions
{
    public const string Section = "Monitor";

    public TimeSpan Period { get; set; } = TimeSpan.FromMinutes(5);

    public TimeSpan HeldPastReplyDeadlineStuckAfter { get; set; } = StuckRules.Default.HeldPastReplyDeadline;

    public TimeSpan ProcessingStuckAfter { get; set; } = StuckRules.Default.Processing;

    public TimeSpan RefundPendingStuckAfter { get; set; } = StuckRules.Default.RefundPending;

    public TimeSpan PendingUserSetupStuckAfter { get; set; } = StuckRules.Default.PendingUserSetup;

    public TimeSpan TransferFailedStuckAfter { get; set; } = StuckRules.Default.TransferFailed;

    /// <summary>How long an effect (a Stripe call, an e-mail, an alert...) may wait in an escrow's outbox.</summary>
    public TimeSpan EffectStuckAfter { get; set; } = StuckRules.Default.EffectWaiting;

    /// <summary>The most stuck escrows one check alerts about; the rest wait for the next check.</summary>
    public int EscrowsPerCheckMax { get; set; } = 1_000;

    public StuckRules Rules() =>
        new(HeldPastReplyDeadlineStuckAfter, ProcessingStuckAfter, RefundPendingStuckAfter, PendingUserSetupStuckAfter,
            TransferFailedStuckAfter, EffectStuckAfter);
}

public sealed class MonitorOptionsValidator : IValidateOptions<MonitorOptions>
{
    public ValidateOptionsResult Validate(string? name, MonitorOptions o)
    {
        var errors = new OptionsErrors().If(o.Period < TimeSpan.FromSeconds(1) || o.Period > TimeSpan.FromDays(1),
            "Monitor:Period must be 1 second to 1 day (default PT5M).");
        foreach (var (key, value) in new[]
        {
            ("HeldPastReplyDeadlineStuckAfter", o.HeldPastReplyDeadlineStuckAfter), ("ProcessingStuckAfter", o.ProcessingStuckAfter),
            ("RefundPendingStuckAfter", o.RefundPendingStuckAfter), ("PendingUserSetupStuckAfter", o.PendingUserSetupStuckAfter),
            ("TransferFailedStuckAfter", o.TransferFailedStuckAfter), ("EffectStuckAfter", o.EffectStuckAfter),
        })
        {
            errors.If(value <= TimeSpan.Zero, $"Monitor:{key} must be a positive duration.");
        }
        return errors.If(o.EscrowsPerCheckMax is < 1 or > 100_000, "Monitor:EscrowsPerCheckMax must be 1..100000.").Result();
    }
}
