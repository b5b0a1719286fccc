namespace Escrow.Grains;

/// <summary>How long personal texts are kept (section "Retention"). Durations are ISO 8601.</summary>
public sealed class RetentionOptions
{
    public const string Section = "Retention";

    /// <summary>Subjects, messages and inbound previews of escrows finished longer ago than this are erased.</summary>
    public TimeSpan MessageBodies { get; set; } = TimeSpan.FromDays(90);

    /// <summary>How often the retention runs.</summary>
    public TimeSpan Period { get; set; } = TimeSpan.FromDays(1);

    /// <summary>The most escrows one run erases; the rest wait for the next run.</summary>
    public int EscrowsPerRunMax { get; set; } = 10_000;
}

public sealed class RetentionOptionsValidator : IValidateOptions<RetentionOptions>
{
    public ValidateOptionsResult Validate(string? name, RetentionOptions o) => new OptionsErrors()
        .If(o.MessageBodies < TimeSpan.FromDays(1), "Retention:MessageBodies must be at least P1D (default P90D).")
        .If(o.Period < TimeSpan.FromMinutes(1) || o.Period > TimeSpan.FromDays(7), "Retention:Period must be PT1M to P7D (default P1D).")
        .If(o.EscrowsPerRunMax is < 1 or > 100_000, "Retention:EscrowsPerRunMax must be 1..100000 (default 10000).")
        .Result();
}
