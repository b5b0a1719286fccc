namespace Escrow.Grains;

/// <summary>Reconciliation settings (section "Reconciliation").</summary>
public sealed class ReconciliationOptions
{
    public const string Section = "Reconciliation";

    /// <summary>When the previous UTC day is reconciled, as a time of day in UTC.</summary>
    public TimeSpan RunAtUtc { get; set; } = TimeSpan.FromHours(2);

    /// <summary>The most escrows one run looks at; beyond it the report says it was truncated.</summary>
    public int EscrowsPerRunMax { get; set; } = 10_000;

    /// <summary>A refund rate above this (refunded ÷ released + refunded) is reported as an issue.</summary>
    public double RefundRateIssueAbove { get; set; } = 0.30;
}

public sealed class ReconciliationOptionsValidator : IValidateOptions<ReconciliationOptions>
{
    public ValidateOptionsResult Validate(string? name, ReconciliationOptions o) => new OptionsErrors()
        .If(o.RunAtUtc < TimeSpan.Zero || o.RunAtUtc >= TimeSpan.FromDays(1),
            "Reconciliation:RunAtUtc must be a time of day in UTC, 00:00:00 to 23:59:59.")
        .If(o.EscrowsPerRunMax is < 1 or > 1_000_000, "Reconciliation:EscrowsPerRunMax must be 1..1000000.")
        .Result();
}
