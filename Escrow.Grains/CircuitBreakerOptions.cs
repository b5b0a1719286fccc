namespace Escrow.Grains;

/// <summary>Refund permits per window (section "CircuitBreaker").</summary>
public sealed class CircuitBreakerOptions
{
    public const string Section = "CircuitBreaker";

    public const long DefaultEurAmountPerWindowMax = 10_000;

    public int RefundsPerWindowMax { get; set; } = 50;

    /// <summary>
    /// The refunded amount allowed per window, in minor units, by currency code: one entry per enabled currency
    /// (CircuitBreaker:AmountPerWindowMax:EUR=10000). EUR defaults to 10000 when it has no entry.
    /// </summary>
    public Dictionary<string, long> AmountPerWindowMax { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// The setting of versions with one currency, still accepted while exactly one currency is enabled: it is that
    /// currency's cap. With several currencies the validator refuses it and names the keys to set instead.
    /// </summary>
    public long? RefundAmountPerWindowMaxMinor { get; set; }

    public TimeSpan Window { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>The cap of each enabled currency, or the problems that leave one without a cap (see the validator).</summary>
    public (IReadOnlyDictionary<string, long> Caps, IReadOnlyList<string> Errors) AmountCaps(IReadOnlyList<string> enabled)
    {
        var caps = new Dictionary<string, long>(StringComparer.Ordinal);
        var errors = new List<string>();
        var entries = AmountPerWindowMax.ToDictionary(e => e.Key.Trim().ToUpperInvariant(), e => e.Value, StringComparer.Ordinal);
        if (RefundAmountPerWindowMaxMinor is not null && enabled.Count > 1)
        {
            errors.Add($"CircuitBreaker:RefundAmountPerWindowMaxMinor is one cap for one currency, but Escrow:Currencies enables "
                + $"{string.Join(", ", enabled)}: "
                + $"remove it and set {string.Join(" and ", enabled.Select(c => $"CircuitBreaker:AmountPerWindowMax:{c}"))} instead.");
        }
        foreach (var currency in enabled)
        {
            if (entries.TryGetValue(currency, out var cap))
            {
                if (RefundAmountPerWindowMaxMinor is not null)
                {
                    errors.Add($"CircuitBreaker:AmountPerWindowMax:{currency} and CircuitBreaker:RefundAmountPerWindowMaxMinor are both "
                        + $"set: keep only CircuitBreaker:AmountPerWindowMax:{currency}.");
                }
            }
            else if (RefundAmountPerWindowMaxMinor is { } single)
            {
                if (single < 1)
                {
                    continue; // the validator names CircuitBreaker:RefundAmountPerWindowMaxMinor itself
                }
                cap = single;
            }
            else if (currency == "EUR")
            {
                cap = DefaultEurAmountPerWindowMax;
            }
            else
            {
                errors.Add($"CircuitBreaker:AmountPerWindowMax:{currency} is required: the most refunded in {currency} per window, in "
                    + $"minor units (Escrow:Currencies enables {currency}).");
                continue;
            }
            if (cap < 1)
            {
                errors.Add($"CircuitBreaker:AmountPerWindowMax:{currency} must be at least 1 minor unit (EUR default 10000).");
                continue;
            }
            caps[currency] = cap;
        }
        foreach (var extra in entries.Keys.Where(k => !enabled.Contains(k, StringComparer.Ordinal)))
        {
            errors.Add($"CircuitBreaker:AmountPerWindowMax:{extra} names a currency that Escrow:Currencies does not enable ({string.Join(", ", enabled)}): remove it or enable the currency.");
        }
        return (caps, errors);
    }
}

/// <summary>Checks the breaker's caps against the enabled currencies (Escrow:Currencies): one amount cap for each.</summary>
public sealed class CircuitBreakerOptionsValidator(IOptions<EscrowOptions> escrow) : IValidateOptions<CircuitBreakerOptions>
{
    public ValidateOptionsResult Validate(string? name, CircuitBreakerOptions o) => new OptionsErrors()
        .If(o.RefundsPerWindowMax < 1, "CircuitBreaker:RefundsPerWindowMax must be at least 1 (default 50).")
        .If(o.RefundAmountPerWindowMaxMinor is < 1,
            "CircuitBreaker:RefundAmountPerWindowMaxMinor must be at least 1 minor unit (better: "
                + "CircuitBreaker:AmountPerWindowMax:EUR=10000).")
        .AddRange(o.AmountCaps(escrow.Value.EnabledCurrencies).Errors)
        .If(o.Window <= TimeSpan.Zero, "CircuitBreaker:Window must be a positive ISO 8601 duration (default PT10M).")
        .Result();
}
