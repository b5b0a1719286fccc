using System.Xml;
using Microsoft.Extensions.Options;

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
    public IReadOnlyList<string> EnabledCurrencies => Currencies.Count > 0 ? Currencies.Select(c => (c ?? "").Trim().ToUpperInvariant()).ToArray() : DefaultCurrencies;

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

/// <summary>The card-testing guard (section "RateLimits", beside the per-address request limits).</summary>
public sealed class CardTestingOptions
{
    public const string Section = "RateLimits";

    /// <summary>Declined cards in an hour after which a client address or sender e-mail is refused for an hour.</summary>
    public int DeclinesPerClientMax { get; set; } = 3;

    /// <summary>More declines than this across the service in ten minutes raise card_testing_suspected.</summary>
    public int DeclinesPerWindowAlert { get; set; } = 20;
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

/// <summary>Stripe (section "Stripe"). No SecretKey means the sandbox.</summary>
public sealed class StripeOptions
{
    public const string Section = "Stripe";

    /// <summary>The key the API's own sandbox accepts (so the silos of a cluster can share it).</summary>
    public const string SandboxSecretKey = "sk_test_sandbox";

    public string? SecretKey { get; set; }

    /// <summary>The platform endpoint's signing secret; several separated by commas while one is rolled.</summary>
    public string? WebhookSecret { get; set; }

    /// <summary>
    /// The Connect endpoint's signing secret (events of connected accounts, such as account.updated); several separated
    /// by commas while one is rolled. Only a signature made with it is trusted for a connected account's event.
    /// </summary>
    public string? ConnectWebhookSecret { get; set; }

    /// <summary>Where Stripe's API is; null means api.stripe.com. The sandbox sets it to its own address.</summary>
    public string? ApiBase { get; set; }

    public int WebhookToleranceSeconds { get; set; } = 300;

    /// <summary>The default country (ISO 3166 alpha-2) of a recipient's Express account.</summary>
    public string ConnectCountry { get; set; } = "FR";

    /// <summary>The platform account's country: an account elsewhere is created under the recipient service agreement.</summary>
    public string PlatformCountry { get; set; } = "FR";

    /// <summary>
    /// Stripe requests per second for the whole service, shared by its active silos. Null: 20 with a test key, 80 with a
    /// live key (Stripe allows about 25 and 100), none for the sandbox. 0: no budget.
    /// </summary>
    public int? MaxRequestsPerSecond { get; set; }

    public int EffectiveMaxRequestsPerSecond => MaxRequestsPerSecond ?? SecretKey switch
    {
        null or "" or SandboxSecretKey => 0,
        _ when SecretKey.StartsWith("sk_live_", StringComparison.Ordinal) || SecretKey.StartsWith("rk_live_", StringComparison.Ordinal) => 80,
        _ => 20,
    };

    /// <summary>Whether this is the API's own sandbox rather than Stripe.</summary>
    public bool IsSandbox => string.IsNullOrWhiteSpace(SecretKey) || SecretKey == SandboxSecretKey;

    /// <summary>The secrets of a comma-separated setting.</summary>
    public static IReadOnlyList<string> Secrets(string? setting) =>
        setting?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) ?? [];
}

/// <summary>Postmark (section "Postmark"). No ServerToken means the sandbox.</summary>
public sealed class PostmarkOptions
{
    public const string Section = "Postmark";

    public string? ServerToken { get; set; }

    public string? InboundUsername { get; set; }

    public string? InboundPassword { get; set; }

    public string InboundDomain { get; set; } = "reply.escrow.localhost";

    public string FromAddress { get; set; } = "Escrow <noreply@escrow.localhost>";

    public string ApiBase { get; set; } = "https://api.postmarkapp.com";

    public int InboundMaxBytes { get; set; } = 1_048_576;

    /// <summary>
    /// Refuse a reply whose DMARC failed, or whose SPF failed without a DKIM pass for its From domain (the receiving
    /// server's verdicts in the inbound headers). Null means: true in live mode, false with the Stripe sandbox.
    /// </summary>
    public bool? RequireAuthenticatedReplies { get; set; }
}

public sealed class EscrowOptionsValidator : IValidateOptions<EscrowOptions>
{
    /// <summary>Card authorisations expire after 7 days; the longest window plus grace must leave a day of margin.</summary>
    public static readonly TimeSpan LongestHold = TimeSpan.FromDays(6);

    public ValidateOptionsResult Validate(string? name, EscrowOptions o)
    {
        var errors = new List<string>();
        if (o.ResponseWindows.Any(w => w.Duration <= TimeSpan.Zero))
        {
            errors.Add("Escrow:ResponseWindows:N:Duration must be a positive ISO 8601 duration such as PT24H.");
        }
        if (o.ResponseWindows.Any(w => w.PriceMultiplier <= 0))
        {
            errors.Add("Escrow:ResponseWindows:N:PriceMultiplier must be greater than 0, e.g. 1.5.");
        }
        if (o.ResponseWindows.GroupBy(w => w.Duration).Any(g => g.Count() > 1))
        {
            errors.Add("Escrow:ResponseWindows lists the same Duration twice; give each window once.");
        }
        if (o.ReplyGrace < TimeSpan.Zero)
        {
            errors.Add("Escrow:ReplyGrace must not be negative (default PT15M).");
        }
        var longest = o.EffectiveWindows.Max(w => w.Duration);
        if (longest + o.ReplyGrace >= LongestHold)
        {
            errors.Add($"The longest response window ({XmlConvert.ToString(longest)}) plus Escrow:ReplyGrace ({XmlConvert.ToString(o.ReplyGrace)}) must be under 6 days: card authorisations expire after 7. Shorten the window or the grace.");
        }
        if (o.UnpaidExpiry <= TimeSpan.Zero)
        {
            errors.Add("Escrow:UnpaidExpiry must be positive (default PT30M).");
        }
        if (o.TransferRetry.MaxAttempts < 1 || o.TransferRetry.FirstDelay <= TimeSpan.Zero || o.TransferRetry.MaxDelay < o.TransferRetry.FirstDelay)
        {
            errors.Add("Escrow:TransferRetry needs MaxAttempts ≥ 1, FirstDelay > 0 and MaxDelay ≥ FirstDelay (defaults 8, PT1M, PT6H).");
        }
        if (o.ReminderPeriod < TimeSpan.FromSeconds(1))
        {
            errors.Add("Escrow:ReminderPeriod must be at least PT1S (default PT1M), and not below Orleans' MinimumReminderPeriod.");
        }
        if (o.PayoutSetupPollPeriod < TimeSpan.FromMinutes(1))
        {
            errors.Add("Escrow:PayoutSetupPollPeriod must be at least PT1M (default P1D).");
        }
        if (o.DefaultRevenueShareBps is < 0 or > Split.BasisPointsMax)
        {
            errors.Add("Escrow:DefaultRevenueShareBps must be 0..10000 (7500 = 75 %).");
        }
        if (o.DefaultDailyLimit < 1)
        {
            errors.Add("Escrow:DefaultDailyLimit must be at least 1.");
        }
        for (var i = 0; i < o.Currencies.Count; i++)
        {
            if (!Currency.TryParse(o.Currencies[i]?.Trim(), out _))
            {
                errors.Add($"Escrow:Currencies:{i} ('{o.Currencies[i]}') must be a three-letter ISO 4217 code such as EUR.");
            }
        }
        if (o.EnabledCurrencies.GroupBy(c => c, StringComparer.Ordinal).Any(g => g.Count() > 1))
        {
            errors.Add("Escrow:Currencies lists the same currency twice; give each once.");
        }
        if (o.UnpaidPerRecipientMax is < 1 or > RecipientState.UnpaidMax)
        {
            errors.Add($"Escrow:UnpaidPerRecipientMax must be 1..{RecipientState.UnpaidMax} (default 10).");
        }
        if (o.UnpaidPerSenderMax is < 1 or > RecipientState.UnpaidMax)
        {
            errors.Add($"Escrow:UnpaidPerSenderMax must be 1..{RecipientState.UnpaidMax} (default 3).");
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
