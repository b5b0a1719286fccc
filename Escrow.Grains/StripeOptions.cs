namespace Escrow.Grains;

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
        _ when SecretKey.StartsWith("sk_live_", StringComparison.Ordinal) || SecretKey.StartsWith("rk_live_", StringComparison.Ordinal) =>
            80,
        _ => 20,
    };

    /// <summary>Whether this is the API's own sandbox rather than Stripe.</summary>
    public bool IsSandbox => string.IsNullOrWhiteSpace(SecretKey) || SecretKey == SandboxSecretKey;

    /// <summary>The secrets of a comma-separated setting.</summary>
    public static IReadOnlyList<string> Secrets(string? setting) =>
        setting?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) ?? [];
}

public sealed class StripeOptionsValidator : IValidateOptions<StripeOptions>
{
    public ValidateOptionsResult Validate(string? name, StripeOptions o) => new OptionsErrors()
        .If(string.IsNullOrWhiteSpace(o.SecretKey),
            "Stripe:SecretKey is missing: set Stripe__SecretKey (sk_live_… or sk_test_…), or leave Stripe unconfigured in Escrow.Api to "
                + "use the sandbox.")
        .If(string.IsNullOrWhiteSpace(o.WebhookSecret) || !o.WebhookSecret.StartsWith("whsec_", StringComparison.Ordinal),
            "Stripe:WebhookSecret must be the endpoint's signing secret (whsec_…): set Stripe__WebhookSecret.")
        .If(StripeOptions.Secrets(o.ConnectWebhookSecret).Any(s => !s.StartsWith("whsec_", StringComparison.Ordinal)),
            "Stripe:ConnectWebhookSecret must be the Connect endpoint's signing secret (whsec_…; several separated by commas): "
            + "set Stripe__ConnectWebhookSecret.")
        .If(o.MaxRequestsPerSecond is < 0,
            "Stripe:MaxRequestsPerSecond must be 0 (no budget) or more; unset means 20 with a test key, 80 with a live key.")
        .If(!IsCountryCode(o.ConnectCountry) || !IsCountryCode(o.PlatformCountry),
            "Stripe:ConnectCountry and Stripe:PlatformCountry must be ISO 3166 alpha-2 codes in upper case, such as FR.")
        .If(o.WebhookToleranceSeconds is < 1 or > 3600, "Stripe:WebhookToleranceSeconds must be 1..3600 (default 300).")
        .Result();

    private static bool IsCountryCode(string? code) => code is { Length: 2 } && code.All(char.IsAsciiLetterUpper);
}
