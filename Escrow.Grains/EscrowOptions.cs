using System.Xml;

namespace Escrow.Grains;

/// <summary>The escrow rules that come from configuration (section "Escrow"). Durations are ISO 8601 (PT15M).</summary>
public sealed class EscrowOptions
{
    public const string Section = "Escrow";

    /// <summary>Offered response windows and their price multipliers. Empty means the defaults PT24H 1.5, PT48H 1.2, PT72H 1.0.</summary>
    public List<ResponseWindowOption> ResponseWindows { get; set; } = [];

    public TimeSpan ReplyGrace { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>How long an escrow waits for its payment before it is cancelled (and stops counting against the unpaid caps).</summary>
    public TimeSpan UnpaidExpiry { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>Escrows waiting for payment that one recipient may have at once; past it a create gets 429 too_many_unpaid.</summary>
    public int UnpaidPerRecipientMax { get; set; } = 10;

    /// <summary>Escrows waiting for payment that one sender e-mail address may have at once; past it a create gets 429 too_many_unpaid.</summary>
    public int UnpaidPerSenderMax { get; set; } = 3;

    public TransferRetryOptions TransferRetry { get; set; } = new();

    /// <summary>How often a refused refund asks the circuit breaker again.</summary>
    public TimeSpan PermitRetryDelay { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>The period of an escrow's reminder while it has work left: a lost tick costs at most this much.</summary>
    public TimeSpan ReminderPeriod { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// Caps the first tick of a reminder. Null in production (the tick comes at the due time); tests that drive a
    /// fake clock set it to a second, because Orleans reminders run on the real clock.
    /// </summary>
    public TimeSpan? MaxReminderDueTime { get; set; }

    /// <summary>How often the Stripe account of a recipient with escrows waiting for payout setup is read.</summary>
    public TimeSpan PayoutSetupPollPeriod { get; set; } = TimeSpan.FromDays(1);

    /// <summary>
    /// Disputes:ReverseTransfer (its own section, set by the host): whether a dispute opened after release takes the
    /// recipient's share back.
    /// </summary>
    public bool ReverseTransferOnDispute { get; set; } = true;

    public int DefaultRevenueShareBps { get; set; } = 7_500;

    public int DefaultDailyLimit { get; set; } = 5;

    /// <summary>
    /// The currencies recipients may be priced in (ISO 4217, any case). Empty means EUR only. Each one needs a refund
    /// cap of its own (CircuitBreaker:AmountPerWindowMax:CODE); EUR has a default one.
    /// </summary>
    public List<string> Currencies { get; set; } = [];

    /// <summary>The enabled currencies, upper case, in the order configured (the first one is shown first).</summary>
    public IReadOnlyList<string> EnabledCurrencies =>
        Currencies.Count > 0 ? Currencies.Select(c => (c ?? "").Trim().ToUpperInvariant()).ToArray() : DefaultCurrencies;

    public static IReadOnlyList<string> DefaultCurrencies { get; } = ["EUR"];

    public bool IsEnabled(string currency) => EnabledCurrencies.Contains(currency.ToUpperInvariant(), StringComparer.Ordinal);

    public IReadOnlyList<ResponseWindowOption> EffectiveWindows => ResponseWindows.Count > 0 ? ResponseWindows : DefaultWindows;

    public static IReadOnlyList<ResponseWindowOption> DefaultWindows { get; } =
    [
        new() { Duration = TimeSpan.FromHours(24), PriceMultiplier = 1.5m },
        new() { Duration = TimeSpan.FromHours(48), PriceMultiplier = 1.2m },
        new() { Duration = TimeSpan.FromHours(72), PriceMultiplier = 1.0m },
    ];

    public Domain.EscrowPolicy ToPolicy() => new(
        TransferRetry: new Domain.RetryPolicy(TransferRetry.MaxAttempts, TransferRetry.FirstDelay, TransferRetry.MaxDelay),
        EffectRetry: new Domain.RetryPolicy(MaxAttempts: 10, First: TimeSpan.FromSeconds(5), Max: TimeSpan.FromMinutes(30)),
        PermitRetryDelay: PermitRetryDelay,
        AdoptTransfersAfter: TimeSpan.FromHours(24),
        PayoutCheckPeriod: PayoutSetupPollPeriod) { ReverseTransferOnDispute = ReverseTransferOnDispute };
}

public sealed class ResponseWindowOption
{
    public TimeSpan Duration { get; set; }

    public decimal PriceMultiplier { get; set; } = 1m;
}

public sealed class TransferRetryOptions
{
    public TimeSpan FirstDelay { get; set; } = TimeSpan.FromMinutes(1);

    public TimeSpan MaxDelay { get; set; } = TimeSpan.FromHours(6);

    public int MaxAttempts { get; set; } = 8;
}

public sealed class EscrowOptionsValidator : IValidateOptions<EscrowOptions>
{
    /// <summary>Card authorisations expire after 7 days; the longest window plus grace must leave a day of margin.</summary>
    public static readonly TimeSpan LongestHold = TimeSpan.FromDays(6);

    public ValidateOptionsResult Validate(string? name, EscrowOptions o)
    {
        var longest = o.EffectiveWindows.Max(w => w.Duration);
        var retry = o.TransferRetry;
        var errors = new OptionsErrors()
            .If(o.ResponseWindows.Any(w => w.Duration <= TimeSpan.Zero),
                "Escrow:ResponseWindows:N:Duration must be a positive ISO 8601 duration such as PT24H.")
            .If(o.ResponseWindows.Any(w =>
                w.PriceMultiplier <= 0), "Escrow:ResponseWindows:N:PriceMultiplier must be greater than 0, e.g. 1.5.")
            .If(o.ResponseWindows.GroupBy(w => w.Duration).Any(g => g.Count() > 1),
                "Escrow:ResponseWindows lists the same Duration twice; give each window once.")
            .If(o.ReplyGrace < TimeSpan.Zero, "Escrow:ReplyGrace must not be negative (default PT15M).")
            .If(longest + o.ReplyGrace >= LongestHold,
                $"The longest response window ({XmlConvert.ToString(longest)}) plus Escrow:ReplyGrace "
                    + $"({XmlConvert.ToString(o.ReplyGrace)}) "
                + "must be under 6 days: card authorisations expire after 7. Shorten the window or the grace.")
            .If(o.UnpaidExpiry <= TimeSpan.Zero, "Escrow:UnpaidExpiry must be positive (default PT30M).")
            .If(retry.MaxAttempts < 1 || retry.FirstDelay <= TimeSpan.Zero || retry.MaxDelay < retry.FirstDelay,
                "Escrow:TransferRetry needs MaxAttempts ≥ 1, FirstDelay > 0 and MaxDelay ≥ FirstDelay (defaults 8, PT1M, PT6H).")
            .If(o.ReminderPeriod < TimeSpan.FromSeconds(1),
                "Escrow:ReminderPeriod must be at least PT1S (default PT1M), and not below Orleans' MinimumReminderPeriod.")
            .If(o.PayoutSetupPollPeriod < TimeSpan.FromMinutes(1), "Escrow:PayoutSetupPollPeriod must be at least PT1M (default P1D).")
            .If(o.DefaultRevenueShareBps is < 0 or > Split.BasisPointsMax, "Escrow:DefaultRevenueShareBps must be 0..10000 (7500 = 75 %).")
            .If(o.DefaultDailyLimit < 1, "Escrow:DefaultDailyLimit must be at least 1.");
        for (var i = 0; i < o.Currencies.Count; i++)
        {
            errors.If(!Currency.TryParse(o.Currencies[i]?.Trim(), out _),
                $"Escrow:Currencies:{i} ('{o.Currencies[i]}') must be a three-letter ISO 4217 code such as EUR.");
        }
        return errors
            .If(o.EnabledCurrencies.GroupBy(c => c, StringComparer.Ordinal).Any(g => g.Count() > 1),
                "Escrow:Currencies lists the same currency twice; give each once.")
            .If(o.UnpaidPerRecipientMax is < 1 or > RecipientState.UnpaidMax,
                $"Escrow:UnpaidPerRecipientMax must be 1..{RecipientState.UnpaidMax} (default 10).")
            .If(o.UnpaidPerSenderMax is < 1 or > RecipientState.UnpaidMax,
                $"Escrow:UnpaidPerSenderMax must be 1..{RecipientState.UnpaidMax} (default 3).")
            .Result();
    }
}
